"""Regression tests of the six defects of issue 8, one plain scenario each (see the docs page
docs/explanation/contact-invariants.rst for the invariants I1-I6 they break)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_sendflare.contacts import full_sync, outbox, services
from django_sendflare.contacts.outbox import Outcome
from django_sendflare.exceptions import SendflareServerError
from django_sendflare.models import ContactChange, ContactSyncState
from django_sendflare.queue import LEASE_SECONDS

from .conftest import failed, pending
from .fakes import Call, FakeClient

UNSUBSCRIBED = "Unsubscribed"


def _unsubscribe_at_sendflare(api: FakeClient, email: str) -> None:
    contact = api.get(email)
    assert contact is not None
    contact["status"] = UNSUBSCRIBED


def _addresses(api: FakeClient) -> set[str]:
    return set(api.contacts)


# 1. An email change re-subscribes someone who unsubscribed.


def test_1_an_email_change_keeps_an_unsubscribe_made_at_sendflare(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    user = make_user("old@example.com")
    deliver()
    _unsubscribe_at_sendflare(fake_api, "old@example.com")
    user.email = "new@example.com"
    user.save()
    deliver()
    assert fake_api.get("new@example.com")["status"] == UNSUBSCRIBED  # type: ignore[index]
    assert fake_api.get("old@example.com") is None


def test_1_a_failed_live_read_is_a_transient_failure_never_confirmed(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    user = make_user("old@example.com")
    deliver()
    _unsubscribe_at_sendflare(fake_api, "old@example.com")
    user.email = "new@example.com"
    user.save()
    fake_api.fail_on = lambda call: (
        SendflareServerError("503 (fake)", status_code=503) if call.method == "list" else None
    )
    report = deliver()
    assert report.count(Outcome.RETRY) == 1
    assert fake_api.get("new@example.com") is None  # not created as Confirmed
    assert pending() and not failed()
    fake_api.fail_on = None
    deliver()
    assert fake_api.get("new@example.com")["status"] == UNSUBSCRIBED  # type: ignore[index]


def test_1_one_listing_read_per_batch_stopping_when_every_address_is_found(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    users = [make_user(f"u{i}@example.com") for i in range(3)]
    deliver()
    for i in range(1200):  # three pages of 500 after the users' contacts
        fake_api.add(f"other{i}@example.com")
    for i, user in enumerate(users):
        user.email = f"moved{i}@example.com"
        user.save()
    fake_api.reset_calls()
    report = deliver()
    assert report.count(Outcome.SAVED) == 3
    assert [c.page for c in fake_api.calls if c.method == "list"] == [1]


def test_1_the_adapters_status_is_only_the_status_of_a_new_person(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    user = make_user("old@example.com")
    deliver()
    _unsubscribe_at_sendflare(fake_api, "old@example.com")
    # A data change, then an email change: the cached status (Confirmed) is not trusted.
    user.first_name = "Ann"
    user.save()
    deliver()
    user.email = "new@example.com"
    user.save()
    deliver()
    assert fake_api.get("new@example.com")["status"] == UNSUBSCRIBED  # type: ignore[index]


# 2. A partial listing overwrites known facts.


def test_2_a_failed_page_leaves_the_recorded_status_as_it_was(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    fake_api.add("first@example.com")
    fake_api.add("second@example.com")
    user = make_user("mine@example.com")
    deliver()
    _unsubscribe_at_sendflare(fake_api, "mine@example.com")
    assert full_sync.run_sync(client=fake_api, page_size=2).ok  # type: ignore[arg-type]
    key = str(user.pk)
    assert ContactSyncState.objects.get(user_key=key).remote_status == UNSUBSCRIBED
    # The page that holds the user's contact (page 2) fails this time.
    fake_api.fail_on = lambda call: (
        SendflareServerError("503 (fake)", status_code=503)
        if call.method == "list" and call.page == 2
        else None
    )
    report = full_sync.run_sync(client=fake_api, page_size=2)  # type: ignore[arg-type]
    assert not report.ok
    assert ContactSyncState.objects.get(user_key=key).remote_status == UNSUBSCRIBED


def test_2_a_change_parked_by_an_outage_then_a_full_sync_keeps_the_unsubscribe(
    make_user: Any, fake_api: FakeClient, deliver: Any, settings: Any
) -> None:
    settings.SENDFLARE = {**settings.SENDFLARE, "CONTACTS_MAX_ATTEMPTS": 2}
    user = make_user("old@example.com")
    deliver()
    _unsubscribe_at_sendflare(fake_api, "old@example.com")
    user.email = "new@example.com"
    user.save()
    fake_api.down = True
    deliver()
    deliver()
    assert failed()  # parked after CONTACTS_MAX_ATTEMPTS
    fake_api.down = False
    full_sync.run_sync(client=fake_api)  # type: ignore[arg-type]
    assert fake_api.get("new@example.com")["status"] == UNSUBSCRIBED  # type: ignore[index]


# 3. A running full sync undoes deletes.


def test_3_a_full_sync_does_not_recreate_what_was_deleted_while_it_ran(
    make_user: Any, fake_api: FakeClient
) -> None:
    first = make_user("a@example.com")
    deleted = make_user("b@example.com")
    admin_deleted = make_user("c@example.com")
    deactivated = make_user("d@example.com")
    ContactChange.objects.all().delete()
    done: list[str] = []

    def meanwhile(call: Call) -> None:
        # While the sync creates the first contact, the others are deleted or deactivated.
        if call.method == "save" and call.email == first.email and not done:
            done.append("yes")
            fake_api.on_call = None
            deleted.delete()
            services.delete_user_contacts([admin_deleted], client=fake_api)  # type: ignore[arg-type]
            deactivated.is_active = False
            deactivated.save()

    fake_api.on_call = meanwhile
    full_sync.run_sync(client=fake_api)  # type: ignore[arg-type]
    assert done
    assert _addresses(fake_api) == {"a@example.com"}
    outbox.deliver_pending(client=fake_api, include_not_due=True)  # type: ignore[arg-type]
    assert _addresses(fake_api) == {"a@example.com"}


# 4. Orphans.


def test_4_a_create_whose_answer_was_lost_leaves_no_orphan(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    user = make_user("a@example.com")
    deliver()
    user.email = "b@example.com"
    user.save()
    fake_api.lose_answer_on = lambda call: call.method == "save" and call.email == "b@example.com"
    assert deliver().count(Outcome.RETRY) == 1
    fake_api.lose_answer_on = None
    assert "b@example.com" in fake_api.contacts  # it was created: only the answer was lost
    user.email = "c@example.com"
    user.save()
    deliver()
    assert _addresses(fake_api) == {"c@example.com"}
    assert not pending() and not failed()


# 5. A shared-limiter outage parks changes as failed.


class FakeRedisConnectionError(Exception):
    """Stands for redis.exceptions.ConnectionError: a third-party exception, not ours."""


def test_5_a_limiter_outage_is_transient_and_never_reaches_the_caller_raw(
    make_user: Any, fake_api: FakeClient, deliver: Any, settings: Any
) -> None:
    settings.SENDFLARE = {**settings.SENDFLARE, "CONTACTS_MAX_ATTEMPTS": 3}
    make_user("a@example.com")
    fake_api.fail_on = lambda call: FakeRedisConnectionError("Error 111 connecting to redis")
    assert deliver().count(Outcome.RETRY) == 1
    assert pending() and not failed()
    ContactChange.objects.update(next_attempt_at=timezone.now())
    with pytest.raises(CommandError) as raised:
        call_command("sync_contacts", "--pending", "--batch-size", "10")
    assert "1 user(s) not delivered" in str(raised.value)
    assert pending() and not failed()  # attempt 2 of 3: still pending
    with pytest.raises(CommandError) as raised:
        call_command("sync_contacts")
    assert not isinstance(raised.value.__cause__, FakeRedisConnectionError)
    assert pending() and not failed()
    fake_api.fail_on = None
    deliver()
    assert "a@example.com" in fake_api.contacts


def test_5_an_admin_action_reports_a_limiter_outage_as_a_retry(
    make_user: Any, fake_api: FakeClient
) -> None:
    user = make_user("a@example.com")
    fake_api.fail_on = lambda call: FakeRedisConnectionError("Error 111 connecting to redis")
    (result,) = services.sync_users([user], client=fake_api).results  # type: ignore[arg-type]
    assert result.outcome is Outcome.RETRY
    assert pending() and not failed()


# 6. A killed worker blocks users for 10 minutes.


def test_6_a_worker_holds_only_the_user_it_delivers_and_only_briefly(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    users = [make_user(f"u{i}@example.com") for i in range(5)]
    seen: list[list[tuple[str, datetime.datetime]]] = []

    def snapshot(call: Call) -> None:
        # What a SIGKILL at this moment would leave behind.
        seen.append(
            list(
                ContactSyncState.objects.filter(lease_until__isnull=False).values_list(
                    "user_key", "lease_until"
                )
            )
        )

    fake_api.on_call = snapshot
    deliver()
    assert len(seen) == 5
    limit = timezone.now() + datetime.timedelta(seconds=60)
    for leases in seen:
        assert len(leases) == 1  # only the user being delivered
        assert leases[0][1] <= limit
    assert LEASE_SECONDS <= 60
    assert {key for leases in seen for key, _ in leases} == {str(u.pk) for u in users}


# Found by the model test (tests/contacts/model/).


def test_an_email_change_into_a_conflict_deletes_the_old_address(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    make_user("bob@example.com")
    user = make_user("dan@example.com")
    deliver()
    user.email = "bob@example.com"  # another user's address: neither is synced
    user.save()
    deliver()
    assert "dan@example.com" not in fake_api.contacts  # not the user's address any more (I3)
    full_sync.run_sync(client=fake_api)  # type: ignore[arg-type]
    assert "dan@example.com" not in fake_api.contacts


def test_a_deactivation_during_the_create_leaves_no_contact(
    make_user: Any, fake_api: FakeClient
) -> None:
    user = make_user("bob@example.com")
    ContactChange.objects.all().delete()

    def deactivate_meanwhile(call: Call) -> None:
        # The deactivation lands while the create is in flight, after the re-read.
        if call.method == "save":
            fake_api.on_call = None
            user.is_active = False
            user.save()

    fake_api.on_call = deactivate_meanwhile
    full_sync.run_sync(client=fake_api)  # type: ignore[arg-type]
    assert fake_api.contacts == {}  # I2: work planned before the deactivation is undone


def test_an_admin_delete_then_sync_keeps_an_unsubscribe_it_never_listed(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    user = make_user("ann@example.com")
    deliver()
    _unsubscribe_at_sendflare(fake_api, "ann@example.com")
    # The delete reads the live status before it deletes the evidence (I1).
    services.delete_user_contacts([user], client=fake_api)  # type: ignore[arg-type]
    assert fake_api.contacts == {}
    services.sync_users([user], client=fake_api)  # type: ignore[arg-type]
    assert fake_api.get("ann@example.com")["status"] == UNSUBSCRIBED  # type: ignore[index]


@pytest.mark.django_db(transaction=True)
def test_6_a_worker_does_not_report_users_another_worker_holds(
    make_user: Any, fake_api: FakeClient
) -> None:
    import threading

    from django_sendflare.contacts.watch import run_watch

    user = make_user("a@example.com")
    ContactSyncState.objects.create(
        user_key=str(user.pk),
        lease_until=timezone.now() + datetime.timedelta(seconds=30),
        lease_token="another-worker",
    )
    stop = threading.Event()
    reports: list[Any] = []

    def on_report(report: Any) -> None:
        reports.append(report)

    def stop_soon(call: Call) -> None:
        stop.set()

    fake_api.on_call = stop_soon
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    try:
        run_watch(stop, interval=0.1, client=fake_api, on_report=on_report)  # type: ignore[arg-type]
    finally:
        timer.cancel()
    assert reports == []  # "busy" is no news: nothing printed every poll
    assert fake_api.calls == [] and pending()


def test_an_address_kept_for_another_user_is_read_before_it_is_forgotten(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    # Found by the model test: two users share an address that is Unsubscribed at Sendflare;
    # the first one's contact is "deleted" (kept: the other has it), then the other's is
    # deleted; syncing the first again must not create the address Confirmed (I1).
    first = make_user("eve@example.com")
    deliver()
    _unsubscribe_at_sendflare(fake_api, "eve@example.com")
    second = make_user("other@example.com")
    deliver()
    second.email = "eve@example.com"  # a conflict: neither is synced
    second.save()
    deliver()
    services.delete_user_contacts([first], client=fake_api)  # type: ignore[arg-type]
    assert "eve@example.com" in fake_api.contacts  # kept: the second user has it
    services.delete_user_contacts([second], client=fake_api)  # type: ignore[arg-type]
    assert fake_api.contacts == {}
    services.sync_users([first], client=fake_api)  # type: ignore[arg-type]
    assert fake_api.get("eve@example.com")["status"] == UNSUBSCRIBED  # type: ignore[index]


def test_an_unsubscribed_person_moving_to_an_existing_confirmed_address_stays_unsubscribed(
    make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    # Found by the model test: the new address existed Confirmed (left by another user); a
    # save keeps a contact's status, so it is re-created Unsubscribed (I1, I6).
    fake_api.add("eve@example.com")  # Confirmed, nobody's any more
    user = make_user("bob@example.com")
    deliver()
    _unsubscribe_at_sendflare(fake_api, "bob@example.com")
    user.email = "eve@example.com"
    user.save()
    deliver()
    assert fake_api.get("eve@example.com")["status"] == UNSUBSCRIBED  # type: ignore[index]
    assert "bob@example.com" not in fake_api.contacts
