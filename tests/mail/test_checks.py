"""System checks of queued sending."""

from __future__ import annotations

import pytest

from django_sendflare import task_hooks, tasks
from django_sendflare.checks import check_queued_sending

from ..conftest import HAS_MAILERS

QUEUED = "django_sendflare.backends.QueuedEmailBackend"


def ids() -> list[str]:
    return [message.id for message in check_queued_sending()]


def test_nothing_to_report_by_default():
    assert ids() == []


def test_e110_the_task_setting_without_the_tasks_framework(settings, monkeypatch):
    settings.SENDFLARE = {**settings.SENDFLARE, "MAIL_ENQUEUE_TASK": True}
    assert ids() == ([] if tasks.UNAVAILABLE is None else ["sendflare.E110"])
    monkeypatch.setattr(task_hooks, "_unavailable", "no tasks here")
    assert ids() == ["sendflare.E110"]


@pytest.mark.skipif(not HAS_MAILERS, reason="MAILERS is new in Django 6.1")
@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("sendflare", []),
        ("missing", ["sendflare.E111"]),
        ("other_queue", ["sendflare.E111"]),
    ],
)
def test_e111_a_queued_mailer_must_name_a_delivering_entry(settings, target, expected):
    settings.MAILERS = {
        "default": {"BACKEND": QUEUED, "OPTIONS": {"mailer": target}},
        "other_queue": {"BACKEND": QUEUED, "OPTIONS": {"mailer": "sendflare"}},
        "sendflare": {
            "BACKEND": "django_sendflare.backends.EmailBackend",
            "OPTIONS": {"api_token": "t"},
        },
    }
    assert ids() == expected
