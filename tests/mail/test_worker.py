"""The one worker, in this process: mail first, contacts second, --once, SIGTERM, purge."""

from __future__ import annotations

import datetime
import os
import signal
import threading

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from django_sendflare.mail.purge import purge_sent_mail
from django_sendflare.models import QueuedMessage, QueuedRecipient
from django_sendflare.worker import Worker

from ..conftest import HAS_MAILERS
from .conftest import queued_for

pytestmark = pytest.mark.django_db(transaction=True)

APP = "worker-app"


@pytest.fixture
def app_sandbox(sandbox, settings):
    settings.SENDFLARE = {**settings.SENDFLARE, "APP_ID": APP}
    return sandbox


def paths(sandbox) -> list[str]:
    return [r["path"] for r in sandbox.requests()]


def test_committed_mail_is_sent_once_and_rolled_back_mail_never(sandbox):
    with transaction.atomic():
        mail.send_mail("kept", "B", "f@example.com", ["a@example.com"])
    with pytest.raises(RuntimeError), transaction.atomic():
        mail.send_mail("rolled back", "B", "f@example.com", ["b@example.com"])
        raise RuntimeError
    Worker(contacts=False).run_once()
    Worker(contacts=False).run_once()
    assert [(m["subject"], m["to"]) for m in sandbox.messages()] == [("kept", "a@example.com")]


def test_mail_goes_before_contact_changes(app_sandbox):
    User = get_user_model()
    for i in range(3):
        User.objects.create_user(username=f"u{i}", email=f"u{i}@example.com")
    mail.send_mail("reset", "B", "f@example.com", ["a@example.com", "b@example.com"])
    report = Worker(threads=1).run_once()
    assert report.mail.sent == 2
    assert len(report.contacts.results) == 3
    assert paths(app_sandbox) == ["/v1/send"] * 2 + ["/v1/contact"] * 3


def test_once_exits_non_zero_when_mail_failed_permanently(sandbox, settings):
    sandbox.queue_faults("lost_response")
    mail.send_mail("S", "B", "f@example.com", ["a@example.com"])
    with pytest.raises(CommandError, match="could not be delivered"):
        call_command("sendflare_worker", "--once", "--no-contacts")
    assert QueuedRecipient.objects.get().state == "unknown"
    # Nothing left to do: a second run succeeds and sends nothing more.
    call_command("sendflare_worker", "--once", "--no-contacts")
    assert len(sandbox.messages()) == 1


def test_once_exits_zero_when_everything_was_sent(sandbox, capsys):
    mail.send_mail("S", "B", "f@example.com", ["a@example.com", "b@example.com"])
    call_command("sendflare_worker", "--once", "--no-contacts")
    assert "2 sent" in capsys.readouterr().out


def test_transient_failures_stay_queued_and_once_is_not_a_failure(sandbox, settings):
    settings.SENDFLARE = {**settings.SENDFLARE, "API_URL": "http://127.0.0.1:9"}
    mail.send_mail("S", "B", "f@example.com", ["a@example.com"])
    call_command("sendflare_worker", "--once", "--no-contacts")
    assert QueuedRecipient.objects.get().state == "queued"


def test_the_worker_runs_until_sigterm_and_finishes_what_is_in_flight(sandbox):
    sandbox.set_faults(latency=0.3)
    for i in range(3):
        mail.send_mail(f"S{i}", "B", "f@example.com", [f"r{i}@example.com"])
    # SIGTERM while the first requests are in flight (they take 0.3 s).
    threading.Timer(0.15, os.kill, (os.getpid(), signal.SIGTERM)).start()
    call_command("sendflare_worker", "--no-contacts", "--threads", "2", "--interval", "0.1")
    states = list(QueuedRecipient.objects.values_list("state", flat=True))
    assert "sending" not in states  # nothing left in flight
    assert states.count("sent") == len(sandbox.messages()) >= 1
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_purge_deletes_only_fully_sent_mail_past_the_retention(sandbox, settings):
    settings.SENDFLARE = {**settings.SENDFLARE, "MAIL_RETENTION_DAYS": 7}
    sandbox.queue_faults("ok", "ok", "lost_response")
    mail.send_mail("old sent", "B", "f@example.com", ["a@example.com"])
    mail.send_mail("new sent", "B", "f@example.com", ["b@example.com"])
    mail.send_mail("old unknown", "B", "f@example.com", ["c@example.com"])
    mail.send_mail("queued", "B", "f@example.com", ["d@example.com"])
    queued = QueuedMessage.objects.get(subject="queued")
    QueuedMessage.objects.filter(pk=queued.pk).update(
        next_attempt_at=timezone.now() + datetime.timedelta(days=1)
    )
    Worker(contacts=False, threads=1, purge=False).run_once()
    old = timezone.now() - datetime.timedelta(days=8)
    QueuedMessage.objects.exclude(subject="new sent").update(updated_at=old)
    assert purge_sent_mail(dry_run=True) == 1
    assert purge_sent_mail() == 1
    assert sorted(QueuedMessage.objects.values_list("subject", flat=True)) == [
        "new sent",
        "old unknown",
        "queued",
    ]
    settings.SENDFLARE = {**settings.SENDFLARE, "MAIL_RETENTION_DAYS": None}
    QueuedMessage.objects.update(updated_at=old)
    assert purge_sent_mail() == 0
    call_command("purge_sendflare_mail", "--days", "1")
    assert QueuedMessage.objects.count() == 2


@pytest.mark.skipif(not HAS_MAILERS, reason="MAILERS is new in Django 6.1")
def test_the_worker_delivers_with_the_configuration_the_mailer_names(sandbox, settings):
    settings.MAILERS = queued_for("transactional", api_url=sandbox.url, api_token=sandbox.token)
    # settings.SENDFLARE points elsewhere: only the named entry can deliver it.
    settings.SENDFLARE = {**settings.SENDFLARE, "API_URL": "http://127.0.0.1:9"}
    mail.send_mail("S", "B", "f@example.com", ["a@example.com"])
    assert QueuedMessage.objects.get().mailer == "transactional"
    Worker(contacts=False).run_once()
    assert [m["to"] for m in sandbox.messages()] == ["a@example.com"]
    # A mailer that is gone keeps the mail queued, and says why.
    mail.send_mail("S2", "B", "f@example.com", ["b@example.com"])
    del settings.MAILERS["transactional"]
    settings.MAILERS = {"default": {"BACKEND": "django_sendflare.backends.QueuedEmailBackend"}}
    report = Worker(contacts=False).run_once()
    assert "transactional" in report.summary()
    assert QueuedRecipient.objects.get(email="b@example.com").state == "queued"


@pytest.mark.skipif(not HAS_MAILERS, reason="MAILERS is new in Django 6.1")
def test_the_worker_needs_no_sendflare_token_when_every_token_is_in_mailers(
    sandbox, settings, capsys
):
    settings.MAILERS = queued_for("transactional", api_url=sandbox.url, api_token=sandbox.token)
    # No API_TOKEN in settings.SENDFLARE: the worker's own settings do not need one.
    settings.SENDFLARE = {"RATE_LIMIT": 0, "MAIL_MAX_ATTEMPTS": 3}
    mail.send_mail("S", "B", "f@example.com", ["a@example.com"])
    call_command("sendflare_worker", "--once")
    assert [m["to"] for m in sandbox.messages()] == ["a@example.com"]
    assert "1 sent" in capsys.readouterr().out
    # Mail of settings.SENDFLARE itself does need the token: kept queued, and the run says why.
    message = QueuedMessage.objects.create(from_email="f@example.com", subject="S", body="B")
    QueuedRecipient.objects.create(message=message, email="b@example.com")
    with pytest.raises(CommandError, match="could not be delivered"):
        call_command("sendflare_worker", "--once")
    assert "API_TOKEN" in capsys.readouterr().out
    assert QueuedRecipient.objects.get(email="b@example.com").state == "queued"


@pytest.mark.parametrize("args", [["--threads", "0"], ["--interval", "0"]])
def test_bad_worker_options_are_refused(args):
    with pytest.raises(CommandError) as excinfo:
        call_command("sendflare_worker", "--once", *args)
    assert excinfo.value.returncode == 2


def test_purge_command_says_when_retention_is_off(settings, capsys):
    settings.SENDFLARE = {**settings.SENDFLARE, "MAIL_RETENTION_DAYS": None}
    call_command("purge_sendflare_mail")
    assert "nothing purged" in capsys.readouterr().out


def test_the_worker_refuses_invalid_settings_with_a_clear_error(settings):
    settings.SENDFLARE = {**settings.SENDFLARE, "MAIL_MAX_ATTEMPTS": 0}
    with pytest.raises(CommandError, match="MAIL_MAX_ATTEMPTS"):
        call_command("sendflare_worker", "--once")
