"""Signals -> outbox -> delivery: nothing is called during a save, nothing is lost after it."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
import responses
from django.db import transaction
from django.utils import timezone

from django_sendflare.contacts import outbox, services
from django_sendflare.contacts.outbox import Outcome
from django_sendflare.exceptions import (
    SendflareAmbiguousError,
    SendflareAuthenticationError,
    SendflareBadParameters,
)
from django_sendflare.models import ContactChange, ContactSyncState

from .conftest import failed, pending
from .fakes import FakeClient


def state_of(user: Any) -> ContactSyncState:
    return ContactSyncState.objects.get(user_key=str(user.pk))


# Recording.


def test_a_save_records_a_change_and_calls_nothing(make_user: Any) -> None:
    with responses.RequestsMock() as mocked:  # any HTTP request would fail the test
        user = make_user("a@example.com")
        user.first_name = "Ada"
        user.save()
        assert len(mocked.calls) == 0
    rows = pending()
    assert [(r.user_key, r.kind, r.email) for r in rows] == [
        (str(user.pk), "save", "a@example.com"),
        (str(user.pk), "save", "a@example.com"),
    ]


def test_a_rollback_leaves_nothing_behind(make_user: Any) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        make_user("a@example.com")
        raise Boom
    assert ContactChange.objects.count() == 0


def test_a_login_records_nothing(make_user: Any) -> None:
    user = make_user("a@example.com")
    ContactChange.objects.all().delete()
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    assert ContactChange.objects.count() == 0


def test_an_email_change_records_the_previous_address(make_user: Any) -> None:
    user = make_user("old@example.com")
    ContactChange.objects.all().delete()
    user.email = "new@example.com"
    user.save()
    [row] = pending()
    assert (row.email, row.previous_email) == ("new@example.com", "old@example.com")


def test_a_deletion_records_the_address_the_user_had(make_user: Any) -> None:
    user = make_user("gone@example.com")
    key = str(user.pk)
    ContactChange.objects.all().delete()
    user.delete()
    [row] = pending()
    assert (row.user_key, row.kind, row.email) == (key, "delete", "gone@example.com")


@pytest.mark.parametrize(
    "overrides", [{"SYNC_CONTACTS": False}, {"APP_ID": None}], ids=["sync-off", "no-app-id"]
)
def test_nothing_is_recorded_when_contacts_are_off(
    make_user: Any, settings: Any, overrides: dict[str, Any]
) -> None:
    settings.SENDFLARE = {**settings.SENDFLARE, **overrides}
    make_user("a@example.com").delete()
    assert ContactChange.objects.count() == 0


def test_a_missing_token_does_not_break_a_save_nor_drop_the_change(
    make_user: Any, settings: Any
) -> None:
    settings.SENDFLARE = {k: v for k, v in settings.SENDFLARE.items() if k != "API_TOKEN"}
    make_user("a@example.com")
    assert len(pending()) == 1


# Delivery.


def test_several_changes_of_one_user_become_one_call(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    user = make_user("a@example.com")
    for name in ("A", "Ad", "Ada"):
        user.first_name = name
        user.save()
    report = deliver()
    assert [(c.method, c.email, c.data) for c in fake_api.calls] == [
        ("save", "a@example.com", {"firstName": "Ada"})
    ]
    assert report.count(Outcome.SAVED) == 1
    assert ContactChange.objects.count() == 0
    state = state_of(user)
    assert (state.synced_email, state.synced_data) == ("a@example.com", {"firstName": "Ada"})


def test_a_save_that_changes_nothing_costs_no_call(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    user = make_user("a@example.com", first_name="Ada")
    deliver()
    fake_api.reset_calls()
    user.is_staff = True
    user.save()
    report = deliver()
    assert fake_api.calls == []
    assert report.count(Outcome.UNCHANGED) == 1
    assert ContactChange.objects.count() == 0


def test_a_cleared_field_is_sent_empty(make_user: Any, fake_api: FakeClient, deliver: Any) -> None:
    user = make_user("a@example.com", first_name="Ada", last_name="L")
    deliver()
    user.last_name = ""
    user.save()
    fake_api.reset_calls()
    deliver()
    assert [c.data for c in fake_api.calls] == [{"firstName": "Ada", "lastName": ""}]


def test_inactive_users_are_not_synced(make_user: Any, fake_api: FakeClient, deliver: Any) -> None:
    make_user("a@example.com", is_active=False)
    report = deliver()
    assert fake_api.calls == []
    assert report.count(Outcome.SKIPPED) == 1
    assert ContactChange.objects.count() == 0


def test_deleting_a_user_deletes_its_contact(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    user = make_user("a@example.com")
    deliver()
    key = str(user.pk)
    user.delete()
    deliver()
    assert [(c.method, c.email) for c in fake_api.calls] == [
        ("save", "a@example.com"),
        ("delete", "a@example.com"),
    ]
    assert fake_api.contacts == {}
    assert not ContactSyncState.objects.filter(user_key=key).exists()


def test_a_user_deleted_after_an_undelivered_email_change_loses_the_synced_address(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    user = make_user("old@example.com")
    deliver()
    user.email = "new@example.com"
    user.save()
    user.delete()
    fake_api.reset_calls()
    deliver()
    # The contact is at the old address: that one is deleted. The new one was never created by
    # us, but another user deleted meanwhile may have left its contact to this user (I3): it
    # is deleted too (a call that finds nothing here).
    assert [(c.method, c.email) for c in fake_api.writes()] == [
        ("delete", "old@example.com"),
        ("delete", "new@example.com"),
    ]
    assert fake_api.contacts == {}


def test_created_then_deleted_before_delivery(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    make_user("brief@example.com").delete()
    report = deliver()
    assert [(c.method, c.email) for c in fake_api.calls] == [("delete", "brief@example.com")]
    assert report.ok
    assert ContactChange.objects.count() == 0


# Email change.


def test_email_change_creates_the_new_address_then_deletes_the_old(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    user = make_user("old@example.com", first_name="Ada")
    deliver()
    # The contact unsubscribed in Sendflare; a full sync saw it.
    fake_api.get("old@example.com")["status"] = "Unsubscribed"  # type: ignore[index]
    ContactSyncState.objects.filter(user_key=str(user.pk)).update(remote_status="Unsubscribed")
    fake_api.reset_calls()
    user.email = "new@example.com"
    user.save()
    deliver()
    assert [(c.method, c.email, c.status) for c in fake_api.writes()] == [
        ("save", "new@example.com", "Unsubscribed"),  # keeps the status the contact had
        ("delete", "old@example.com", ""),
    ]
    assert list(fake_api.contacts) == ["new@example.com"]
    state = state_of(user)
    assert (state.synced_email, state.stale_emails) == ("new@example.com", [])


def test_email_change_of_a_contact_this_package_never_saw(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    fake_api.add("old@example.com")
    user = make_user("old@example.com")
    ContactChange.objects.all().delete()  # e.g. created before the app was installed
    user.email = "new@example.com"
    user.save()
    deliver()
    assert [(c.method, c.email) for c in fake_api.writes()] == [
        ("save", "new@example.com"),
        ("delete", "old@example.com"),
    ]


def test_email_change_when_the_create_fails_keeps_the_old_contact(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    user = make_user("old@example.com")
    deliver()
    user.email = "new@example.com"
    user.save()
    fake_api.fail_next = [SendflareAmbiguousError("timeout")]
    report = deliver()
    assert report.count(Outcome.RETRY) == 1
    assert list(fake_api.contacts) == ["old@example.com"]  # no contact lost
    fake_api.reset_calls()
    deliver()
    assert [(c.method, c.email) for c in fake_api.writes()] == [
        ("save", "new@example.com"),
        ("delete", "old@example.com"),
    ]
    assert list(fake_api.contacts) == ["new@example.com"]


def test_email_change_when_the_delete_fails_leaves_no_orphan(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    user = make_user("old@example.com")
    deliver()
    user.email = "new@example.com"
    user.save()
    fake_api.fail_on = lambda call: (
        SendflareAmbiguousError("timeout") if call.method == "delete" else None
    )
    report = deliver()
    assert report.count(Outcome.RETRY) == 1
    assert sorted(fake_api.contacts) == ["new@example.com", "old@example.com"]
    assert state_of(user).stale_emails == ["old@example.com"]
    fake_api.fail_on = None
    fake_api.reset_calls()
    deliver()
    # The new address exists already: only the old one is deleted.
    assert [(c.method, c.email) for c in fake_api.writes()] == [("delete", "old@example.com")]
    assert list(fake_api.contacts) == ["new@example.com"]


def test_a_conflict_is_parked_as_failed_and_never_synced(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    make_user("same@example.com")
    other = make_user("x@example.com")
    other.email = " SAME@example.com "
    other.save()
    report = deliver()
    # Neither address is saved; the address the second user had before may exist: deleted.
    assert [(c.method, c.email) for c in fake_api.writes()] == [("delete", "x@example.com")]
    assert report.count(Outcome.FAILED) == 2
    assert all("Conflict" in row.last_error for row in failed())


# Failures.


def test_the_api_down_while_users_are_saved_then_back_loses_nothing(
    make_user: Any, fake_api: FakeClient
) -> None:
    fake_api.down = True
    users = [make_user(f"u{i}@example.com", first_name=f"U{i}") for i in range(5)]
    users[0].last_name = "Changed"
    users[0].save()
    users[4].delete()
    report = outbox.deliver_pending(client=fake_api)  # type: ignore[arg-type]
    assert report.count(Outcome.RETRY) == 5
    rows = pending()
    assert len(rows) == 7 and all(r.attempts == 1 for r in rows)
    assert all(r.next_attempt_at > timezone.now() for r in rows)  # backing off
    assert "Could not connect" in rows[0].last_error
    # Not due yet: a run now does nothing.
    assert outbox.deliver_pending(client=fake_api).results == []  # type: ignore[arg-type]

    fake_api.down = False
    ContactChange.objects.update(next_attempt_at=timezone.now())
    report = outbox.deliver_pending(client=fake_api)  # type: ignore[arg-type]
    assert report.ok
    assert sorted(fake_api.contacts) == [f"u{i}@example.com" for i in range(4)]
    assert fake_api.get("u0@example.com")["lastName"] == "Changed"  # type: ignore[index]
    assert ContactChange.objects.count() == 0


def test_a_permanent_error_parks_the_change_at_once(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    make_user("a@example.com")
    fake_api.fail_next = [SendflareBadParameters("bad request parameters", code=100033)]
    report = deliver()
    assert report.count(Outcome.FAILED) == 1
    [row] = failed()
    assert row.attempts == 1 and "bad request parameters" in row.last_error
    # Failed rows are not retried by themselves...
    fake_api.reset_calls()
    deliver()
    assert fake_api.calls == []
    # ...until someone retries them (the admin's Retry, or --retry-failed).
    assert services.retry_changes([row.id]) == 1
    deliver()
    assert [c.method for c in fake_api.calls] == ["save"]
    assert ContactChange.objects.count() == 0


def test_transient_errors_park_the_change_after_max_attempts(
    make_user: Any, fake_api: FakeClient, deliver: Any, settings: Any
) -> None:
    settings.SENDFLARE = {**settings.SENDFLARE, "CONTACTS_MAX_ATTEMPTS": 3}
    make_user("a@example.com")
    fake_api.down = True
    outcomes = [deliver().results[0].outcome for _ in range(3)]
    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.FAILED]
    assert failed()[0].attempts == 3


def test_a_transient_failure_waits_for_the_backoff(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    make_user("a@example.com")
    fake_api.down = True
    before = timezone.now()
    deliver()
    row = pending()[0]
    # The queue's first backoff: 15-30 s (retry.backoff_delay with base 30 s).
    assert before + datetime.timedelta(seconds=15) <= row.next_attempt_at
    assert row.next_attempt_at <= timezone.now() + datetime.timedelta(seconds=30)


def test_an_account_level_error_stops_the_run(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    for i in range(3):
        make_user(f"u{i}@example.com")
    fake_api.fail_next = [SendflareAuthenticationError("bad token", status_code=401)]
    report = deliver()
    assert len(fake_api.calls) == 1  # not one failing call per user
    assert report.account_error and not report.ok
    assert len(pending()) == 3  # nothing parked: fixing the token is enough


def test_an_adapter_bug_parks_the_change_and_the_run_goes_on(
    make_user: Any, fake_api: FakeClient, deliver: Any, settings: Any
) -> None:
    settings.SENDFLARE = {
        **settings.SENDFLARE,
        "CONTACT_ADAPTER": "tests.contacts.test_outbox.BrokenAdapter",
    }
    make_user("broken@example.com")
    make_user("fine@example.com")
    report = deliver()
    assert report.count(Outcome.FAILED) == 1 and report.count(Outcome.SAVED) == 1
    assert "ZeroDivisionError" in failed()[0].last_error


from django_sendflare.contacts.adapter import ContactAdapter  # noqa: E402


class BrokenAdapter(ContactAdapter):
    def get_data(self, user: Any) -> dict[str, Any]:
        if user.email.startswith("broken"):
            raise ZeroDivisionError("adapter bug")
        return super().get_data(user)


def test_a_busy_user_is_left_to_the_worker_that_holds_it(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    user = make_user("a@example.com")
    ContactSyncState.objects.create(
        user_key=str(user.pk),
        lease_until=timezone.now() + datetime.timedelta(minutes=5),
        lease_token="other-worker",
    )
    report = deliver()
    assert report.count(Outcome.BUSY) == 1
    assert fake_api.calls == []
    assert len(pending()) == 1
    # A lease whose worker died expires.
    ContactSyncState.objects.update(lease_until=timezone.now() - datetime.timedelta(seconds=1))
    assert deliver().count(Outcome.SAVED) == 1


# The optional task.


def _tasks_missing() -> str | None:
    from django_sendflare.task_hooks import tasks_available

    return tasks_available()


def test_the_task_is_enqueued_on_commit_only(
    make_user: Any,
    fake_api: FakeClient,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    missing = _tasks_missing()
    if missing:
        pytest.skip(missing)
    settings.SENDFLARE = {**settings.SENDFLARE, "CONTACTS_ENQUEUE_TASK": True}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        make_user("a@example.com")
    assert fake_api.calls == []  # nothing during the save
    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()
    # Django's default ImmediateBackend ran the task: the change is delivered.
    assert [c.method for c in fake_api.calls] == ["save"]
    assert ContactChange.objects.count() == 0


def test_no_task_is_enqueued_on_rollback(
    make_user: Any, fake_api: FakeClient, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.SENDFLARE = {**settings.SENDFLARE, "CONTACTS_ENQUEUE_TASK": True}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                make_user("a@example.com")
                raise RuntimeError
        except RuntimeError:
            pass
    assert callbacks == []
    assert fake_api.calls == []


def test_a_broken_task_queue_fails_no_save_and_keeps_the_change(
    make_user: Any,
    fake_api: FakeClient,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django_sendflare import task_hooks

    settings.SENDFLARE = {**settings.SENDFLARE, "CONTACTS_ENQUEUE_TASK": True}

    class BrokenTask:
        def enqueue(self, *args: Any, **kwargs: Any) -> None:
            raise ConnectionError("queue down")

    # The task ready() installed, replaced by one whose queue is down.
    monkeypatch.setitem(task_hooks._tasks, task_hooks.CONTACTS, BrokenTask())
    with django_capture_on_commit_callbacks(execute=True):
        make_user("a@example.com")
    assert fake_api.calls == []
    assert len(pending()) == 1
