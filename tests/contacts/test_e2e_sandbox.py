"""End to end: the real client over HTTP against the sandbox's standalone server."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from django_sendflare.contacts import full_sync, outbox
from django_sendflare.contacts.outbox import Outcome
from django_sendflare.models import ContactChange

pytest.importorskip("django_sendflare.sandbox.pytest_plugin")

APP_ID = "test-app"


@pytest.fixture
def sandbox(sendflare_sandbox_settings: Any, settings: Any) -> Any:
    """The sandbox, with no client retries and short timeouts: failures show at once."""
    settings.SENDFLARE = {
        **settings.SENDFLARE,
        "MAX_RETRIES": 0,
        "TIMEOUT": (1.0, 0.3),
        "APP_ID": APP_ID,
    }
    return sendflare_sandbox_settings


def writes(sandbox: Any) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in sandbox.requests() if r["method"] != "GET"]


def emails(sandbox: Any) -> list[str]:
    return sorted(c["emailAddress"] for c in sandbox.contacts(APP_ID))


def test_full_sync_calls_only_for_differences(sandbox: Any, make_user: Any) -> None:
    users = [make_user(f"u{i}@example.com", first_name=f"U{i}") for i in range(30)]
    ContactChange.objects.all().delete()
    report = full_sync.run_sync(page_size=7)
    assert report.ok and len(report.plan.creates) == 30
    assert len(sandbox.contacts(APP_ID)) == 30

    # Change two users behind the signals' back: the next sync finds and sends only them.
    before = len(sandbox.requests())
    type(users[0]).objects.filter(pk__in=[users[3].pk, users[9].pk]).update(last_name="Changed")
    report = full_sync.run_sync(page_size=7)
    log = sandbox.requests()[before:]
    assert [r["method"] for r in log if r["method"] != "GET"] == ["POST", "POST"]
    assert sum(r["method"] == "GET" for r in log) == 5  # 30 contacts in pages of 7
    assert report.plan.unchanged == 28


def test_the_api_down_then_back_loses_nothing(sandbox: Any, make_user: Any) -> None:
    sandbox.set_faults(rates={"503": 1.0})
    with_name = make_user("a@example.com", first_name="Ada")
    make_user("b@example.com")
    with_name.last_name = "Lovelace"
    with_name.save()
    report = outbox.deliver_pending()
    assert report.count(Outcome.RETRY) == 2
    assert sandbox.contacts(APP_ID) == []

    sandbox.clear_faults()
    ContactChange.objects.update(next_attempt_at=timezone.now())
    report = outbox.deliver_pending()
    assert report.ok and report.count(Outcome.SAVED) == 2
    assert emails(sandbox) == ["a@example.com", "b@example.com"]
    [ada] = [c for c in sandbox.contacts(APP_ID) if c["emailAddress"] == "a@example.com"]
    assert (ada["firstName"], ada["lastName"]) == ("Ada", "Lovelace")
    assert ContactChange.objects.count() == 0


def test_a_hanging_api_delays_delivery_and_never_a_save(sandbox: Any, make_user: Any) -> None:
    sandbox.set_faults(rates={"latency": 1.0}, slow=1.0)  # slower than the 0.3 s read timeout
    started = timezone.now()
    make_user("a@example.com")
    assert (timezone.now() - started).total_seconds() < 0.5  # the save did not wait
    report = outbox.deliver_pending()
    assert report.count(Outcome.RETRY) == 1
    assert "may have been processed" in ContactChange.objects.get().last_error
    sandbox.clear_faults()
    ContactChange.objects.update(next_attempt_at=timezone.now())
    assert outbox.deliver_pending().count(Outcome.SAVED) == 1
    assert emails(sandbox) == ["a@example.com"]


def test_email_change_and_delete_end_to_end(sandbox: Any, make_user: Any) -> None:
    user = make_user("old@example.com")
    outbox.deliver_pending()
    user.email = "new@example.com"
    user.save()
    outbox.deliver_pending()
    assert emails(sandbox) == ["new@example.com"]
    user.delete()
    outbox.deliver_pending()
    assert emails(sandbox) == []
    assert writes(sandbox) == [
        ("POST", "/v1/contact"),
        ("POST", "/v1/contact"),
        ("DELETE", "/v1/contact"),
        ("DELETE", "/v1/contact"),
    ]
