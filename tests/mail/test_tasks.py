"""MAIL_ENQUEUE_TASK: a committed message enqueues its delivery task; the queue stays the truth."""

from __future__ import annotations

import importlib.util

import pytest
from django.core import mail
from django.db import transaction

from django_sendflare import tasks
from django_sendflare.models import QueuedRecipient
from django_sendflare.worker import Worker

from .processes import start_command

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(tasks.deliver_queued_mail is None, reason=str(tasks.UNAVAILABLE)),
]

HAS_DB_BACKEND = importlib.util.find_spec("django_tasks_db") is not None


@pytest.fixture
def with_tasks(sandbox, settings):
    settings.SENDFLARE = {**settings.SENDFLARE, "MAIL_ENQUEUE_TASK": True}
    return sandbox


def test_the_task_runs_on_commit_only(with_tasks, settings):
    import django

    settings.TASKS = {
        "default": {
            "BACKEND": "django.tasks.backends.immediate.ImmediateBackend"
            if django.VERSION >= (6, 0)
            else "django_tasks.backends.immediate.ImmediateBackend"
        }
    }
    with transaction.atomic():
        mail.send_mail("S", "B", "f@example.com", ["a@example.com"])
        assert with_tasks.messages() == []  # not before the commit
    assert [m["to"] for m in with_tasks.messages()] == ["a@example.com"]
    with pytest.raises(RuntimeError), transaction.atomic():
        mail.send_mail("S", "B", "f@example.com", ["b@example.com"])
        raise RuntimeError
    assert len(with_tasks.messages()) == 1
    assert QueuedRecipient.objects.get().state == "sent"


def test_a_task_backend_that_fails_loses_nothing(with_tasks, settings, caplog):
    settings.TASKS = {"default": {"BACKEND": "no.such.Backend"}}
    mail.send_mail("S", "B", "f@example.com", ["a@example.com"])
    assert "stays queued" in caplog.text
    assert QueuedRecipient.objects.get().state == "queued"
    Worker(contacts=False).run_once()
    assert QueuedRecipient.objects.get().state == "sent"


@pytest.mark.postgres
@pytest.mark.skipif(not HAS_DB_BACKEND, reason="needs django-tasks-db (the test extra)")
def test_a_real_db_worker_delivers_duplicated_tasks_once_and_lost_ones_fall_to_the_worker(
    with_tasks, settings
):
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    for address in ("a@example.com", "b@example.com", "lost@example.com"):
        with transaction.atomic():
            mail.send_mail("S", "B", "f@example.com", [address])
    assert DBTaskResult.objects.count() == 3
    first = QueuedRecipient.objects.get(email="a@example.com").message_id
    tasks.deliver_queued_mail.enqueue(first)  # a duplicated task
    lost = QueuedRecipient.objects.get(email="lost@example.com").message_id
    DBTaskResult.objects.filter(args_kwargs__args=[lost]).delete()  # a lost task
    assert DBTaskResult.objects.count() == 3

    worker = start_command("db_worker", "--batch", "--no-startup-delay", SENDFLARE_TEST_TASKS="db")
    output, _ = worker.communicate(timeout=120)
    assert worker.returncode == 0, output
    assert sorted(m["to"] for m in with_tasks.messages()) == ["a@example.com", "b@example.com"]
    assert QueuedRecipient.objects.get(email="lost@example.com").state == "queued"

    Worker(contacts=False).run_once()  # the queue, not the task, is the source of truth
    assert sorted(m["to"] for m in with_tasks.messages()) == [
        "a@example.com",
        "b@example.com",
        "lost@example.com",
    ]
