"""sendflare_status: the figures, each health rule both ways, each exit status, --json."""

from __future__ import annotations

import datetime
import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from django_sendflare import exceptions as exc
from django_sendflare import status
from django_sendflare.models import ContactChange, QueuedMessage, QueuedRecipient
from django_sendflare.ratelimit import RedisRateLimiter
from django_sendflare.records import (
    StatusRecord,
    hold_account,
    record_full_sync,
    release_account,
)

pytestmark = pytest.mark.django_db


def message(*states: str, mailer: str = "", due_ago: float = 0.0, **fields) -> QueuedMessage:
    """A message with one recipient per state, due ``due_ago`` seconds ago."""
    msg = QueuedMessage.objects.create(
        mailer=mailer,
        from_email="f@example.com",
        subject="S",
        next_attempt_at=timezone.now() - datetime.timedelta(seconds=due_ago),
        **fields,
    )
    for i, state in enumerate(states):
        QueuedRecipient.objects.create(message=msg, position=i, email=f"r{i}@x.org", state=state)
    return msg


def run_status(*args: str) -> tuple[int, str]:
    """The command's exit status and output."""
    from io import StringIO

    out = StringIO()
    try:
        call_command("sendflare_status", *args, stdout=out)
    except SystemExit as stop:
        return int(stop.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_an_empty_house_is_healthy_and_exits_0():
    code, out = run_status()
    assert code == 0
    assert "healthy" in out and "last full sync: none recorded" in out


def test_the_figures_count_recipients_per_state_and_what_is_due():
    message("sent", "failed", "unknown", due_ago=10, state="done")
    message("queued", "queued", due_ago=120)
    message("queued", due_ago=-600)  # waiting out a backoff: pending, not due
    ContactChange.objects.create(user_key="1", kind="save", email="a@x.org")
    ContactChange.objects.create(user_key="2", kind="save", email="b@x.org", state="failed")
    figures = status.collect()
    assert figures.mail.recipients == {
        "queued": 3,
        "sending": 0,
        "sent": 1,
        "failed": 1,
        "unknown": 1,
        "discarded": 0,
    }
    assert (figures.mail.pending_messages, figures.mail.due_messages) == (2, 1)
    assert 119 <= figures.mail.oldest_due_age < 180
    assert (figures.contacts.pending, figures.contacts.failed) == (1, 1)
    assert figures.contacts.oldest_pending_age is not None
    assert figures.mail.mailers == []  # one mailer: no breakdown


def test_several_mailers_are_broken_down():
    message("queued", due_ago=30)
    message("queued", mailer="bulk", due_ago=60)
    figures = status.collect(check_limiter=False)
    assert [(q.mailer, q.due_messages) for q in figures.mail.mailers] == [("", 1), ("bulk", 1)]
    assert figures.mail.oldest_due_age >= 60


def test_mail_waiting_longer_than_the_setting_exits_3(settings):
    message("queued", due_ago=16 * 60)
    code, out = run_status()
    assert code == status.EXIT_MAIL_WAITS
    assert "is a worker running?" in out
    settings.SENDFLARE = {**settings.SENDFLARE, "MAIL_MAX_DUE_AGE": 3600}
    assert run_status()[0] == 0


def test_a_held_account_exits_4_until_a_send_releases_it():
    error = exc.SendflareSubscriptionExpired("Subscription expired", code=40005)
    hold_account("", error)
    first = StatusRecord.objects.get().since
    hold_account("", error)  # held again: since stays
    code, out = run_status("--json")
    data = json.loads(out)
    assert code == status.EXIT_ACCOUNT_HELD and data["exit_code"] == 4
    assert data["held"][0]["since"] == first.isoformat()
    assert data["held"][0]["error_code"] == 40005
    assert "expired" in data["held"][0]["error"]
    release_account("")
    assert run_status()[0] == 0


def test_an_unreachable_shared_limiter_exits_5(settings):
    settings.SENDFLARE = {
        **settings.SENDFLARE,
        "RATE_LIMIT": 5,
        "RATE_LIMITER": "django_sendflare.ratelimit.RedisRateLimiter",
        # Nothing listens on port 1 of loopback: refused at once.
        "RATE_LIMITER_OPTIONS": {"url": "redis://127.0.0.1:1/0", "timeout": 0.2},
    }
    pytest.importorskip("redis")
    code, out = run_status()
    assert code == status.EXIT_LIMITER_UNREACHABLE
    assert "UNREACHABLE" in out and RedisRateLimiter.__name__ in out


def test_the_first_rule_that_holds_gives_the_exit_status():
    message("queued", due_ago=3600)
    hold_account("", exc.SendflareAuthenticationError("Invalid token", code=40001))
    code, out = run_status("--json")
    data = json.loads(out)
    assert code == 3
    assert [p["rule"] for p in data["problems"]] == ["mail_waits", "account_held"]


def test_the_last_full_sync_is_reported():
    started = timezone.now() - datetime.timedelta(minutes=5)
    record_full_sync(started, "incomplete", "Sync incomplete: 2 call(s) failed.")
    data = json.loads(run_status("--json")[1])
    sync = data["contacts"]["last_full_sync"]
    assert sync["outcome"] == "incomplete"
    assert sync["started_at"] == started.isoformat()
    assert "2 call(s) failed" in sync["detail"]


def test_invalid_settings_exit_2(settings):
    from django.core.management.base import CommandError

    settings.SENDFLARE = {**settings.SENDFLARE, "MAIL_MAX_DUE_AGE": -1}
    with pytest.raises(CommandError) as raised:
        call_command("sendflare_status")
    assert raised.value.returncode == 2


def test_the_json_is_one_object_and_secrets_stay_out(settings):
    _, out = run_status("--json")
    data = json.loads(out)
    assert set(data) >= {"mail", "contacts", "held", "limiters", "healthy", "problems"}
    assert settings.SENDFLARE["API_TOKEN"] not in out


def test_the_figures_cost_few_queries(django_assert_max_num_queries):
    message("queued", "sent", due_ago=5)
    message("queued", mailer="bulk", due_ago=5)
    with django_assert_max_num_queries(4):
        status.collect()


def test_a_reachable_shared_limiter_is_healthy(settings):
    from django.conf import settings as django_settings

    if not django_settings.REDIS_URL:
        pytest.skip("needs Redis: set REDIS_URL=redis://...")
    settings.SENDFLARE = {
        **settings.SENDFLARE,
        "RATE_LIMIT": 5,
        "RATE_LIMITER": "django_sendflare.ratelimit.RedisRateLimiter",
        "RATE_LIMITER_OPTIONS": {"url": django_settings.REDIS_URL, "prefix": "sendflare:ops:"},
    }
    code, out = run_status("--json")
    limiter = json.loads(out)["limiters"][0]
    assert (code, limiter["shared"], limiter["reachable"]) == (0, True, True)
