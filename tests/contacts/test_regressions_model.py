"""Counterexamples found by the stateful model test (tests/contacts/model/), as plain scenarios.

Each test is the shortest sequence of the model's steps that broke an invariant, replayed through
the real code against the sandbox. While a defect is not fixed, its test is marked
``xfail(strict=True)`` (it turns into an error, XPASS, the day the fix lands, and the mark goes).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from django_sendflare.contacts import full_sync, outbox, services

APP_ID = "model-app"
CONFIRMED = "Confirmed"
UNSUBSCRIBED = "Unsubscribed"


@pytest.fixture
def sandbox(sendflare_sandbox_settings: Any, settings: Any) -> Any:
    """The sandbox, with no client retries and short timeouts: failures show at once."""
    settings.SENDFLARE = {
        **settings.SENDFLARE,
        "MAX_RETRIES": 0,
        "TIMEOUT": (1.0, 0.25),
        "APP_ID": APP_ID,
        "SYNC_CONTACTS": True,
        "RATE_LIMIT": 0,
    }
    return sendflare_sandbox_settings


def statuses(sandbox: Any) -> dict[str, str]:
    return {c["emailAddress"]: c["status"] for c in sandbox.contacts(APP_ID)}


@pytest.mark.django_db
def test_admin_delete_then_admin_sync_keeps_an_unsubscribe_made_at_sendflare(
    sandbox: Any,
) -> None:
    """I1: the admin's delete read the status first (it once deleted the only record of it)."""
    user = get_user_model().objects.create_user(username="ann", email="ann@example.com")
    services.sync_users([user])
    assert statuses(sandbox) == {"ann@example.com": CONFIRMED}
    sandbox.unsubscribe(APP_ID, "ann@example.com")  # the recipient clicks "unsubscribe"

    services.delete_user_contacts([user])  # the admin: "Delete Sendflare contact"
    assert statuses(sandbox) == {}
    services.sync_users([user])  # ... and later: "Sync to Sendflare"

    # The person unsubscribed: no action of ours may make them Confirmed again.
    assert statuses(sandbox) == {"ann@example.com": UNSUBSCRIBED}


@pytest.mark.django_db
def test_a_user_deactivated_while_a_full_sync_applies_its_plan_is_not_created(
    sandbox: Any,
) -> None:
    """I2: the full sync re-reads each user before its call (here: after the plan was made)."""
    first = get_user_model().objects.create_user(username="a", email="a@example.com")
    second = get_user_model().objects.create_user(username="b", email="b@example.com")
    calls: list[str] = []

    class DeactivateAfterTheFirstWrite:
        """The real client; once the sync's first write is answered, `second` is deactivated."""

        def __init__(self, client: Any) -> None:
            self._client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def save_contact(self, **kwargs: Any) -> Any:
            answer = self._client.save_contact(**kwargs)
            calls.append(kwargs["email"])
            if len(calls) == 1:
                second.is_active = False
                second.save()
            return answer

    from django_sendflare.client import get_client

    full_sync.run_sync(client=DeactivateAfterTheFirstWrite(get_client()), page_size=2)  # type: ignore[arg-type]
    assert calls == ["a@example.com"]
    assert set(statuses(sandbox)) == {"a@example.com"}
    outbox.deliver_pending(include_not_due=True)
    assert set(statuses(sandbox)) == {"a@example.com"}
    assert first.is_active


@pytest.mark.django_db
def test_an_email_change_into_a_conflict_still_deletes_the_old_address(sandbox: Any) -> None:
    """I3: the old address of a user whose new one is shared is deleted (it was left behind)."""
    users = get_user_model().objects
    kept = users.create_user(username="kept", email="dan@example.com")
    moving = users.create_user(username="moving", email="cat@example.com")
    outbox.deliver_pending()
    assert set(statuses(sandbox)) == {"dan@example.com", "cat@example.com"}

    moving.email = "dan@example.com"  # now two users share dan@: neither is synced
    moving.save()
    outbox.deliver_pending(include_not_due=True)
    full_sync.run_sync()

    # Nobody has cat@ any more: it must go without --prune (dan@ stays as it is: a conflict).
    assert set(statuses(sandbox)) == {"dan@example.com"}
    assert kept.email == "dan@example.com"


@pytest.mark.django_db
def test_a_contact_kept_for_a_user_sharing_its_address_is_deleted_with_the_last_of_them(
    sandbox: Any,
) -> None:
    """I3: the admin's delete keeps a contact another synced user also has; once neither user
    is left, the contact must go (without --prune)."""
    users = get_user_model().objects
    first = users.create_user(username="first", email="eve@example.com")
    second = users.create_user(username="second", email="ann@example.com")
    outbox.deliver_pending()
    second.email = "eve@example.com"  # a conflict: neither is synced now
    second.save()
    outbox.deliver_pending(include_not_due=True)

    services.delete_user_contacts([first])  # kept: `second` has the address too
    second.delete()
    outbox.deliver_pending(include_not_due=True)
    first.delete()
    outbox.deliver_pending(include_not_due=True)
    full_sync.run_sync()

    assert statuses(sandbox) == {}


@pytest.mark.django_db
def test_a_contact_kept_for_the_next_user_of_its_address_is_deleted_when_they_move_on(
    sandbox: Any,
) -> None:
    users = get_user_model().objects
    moving = users.create_user(username="moving", email="dan@example.com")
    leaving = users.create_user(username="leaving", email="bob@example.com")
    outbox.deliver_pending()
    moving.email = "bob@example.com"  # for a moment two users have bob@
    moving.save()
    sandbox.queue_faults("503")  # the change waits for its retry (its listing read failed)
    outbox.deliver_pending()
    leaving.delete()
    outbox.deliver_pending()  # bob@ is kept: `moving` has it now
    assert set(statuses(sandbox)) == {"dan@example.com", "bob@example.com"}
    moving.email = "dan@example.com"  # ... and moves back before bob@ was ever theirs
    moving.save()
    outbox.deliver_pending()
    outbox.deliver_pending(include_not_due=True)
    full_sync.run_sync()

    assert set(statuses(sandbox)) == {"dan@example.com"}


@pytest.mark.django_db
def test_the_next_user_of_an_unsubscribed_address_stays_unsubscribed_when_they_move(
    sandbox: Any,
) -> None:
    """I1, around a contact kept from a deleted user for the next user of its address (a
    simplification of a longer counterexample the model found, which this does not reproduce:
    see docs/topics/model-test.rst)."""
    users = get_user_model().objects
    leaving = users.create_user(username="leaving", email="ann@example.com")
    outbox.deliver_pending()
    sandbox.unsubscribe(APP_ID, "ann@example.com")
    staying = users.create_user(username="staying", email="ann@example.com")  # a conflict
    outbox.deliver_pending()
    leaving.delete()
    outbox.deliver_pending(include_not_due=True)  # ann@ is kept: `staying` has it
    assert statuses(sandbox) == {"ann@example.com": UNSUBSCRIBED}

    staying.email = "bob@example.com"  # the person who unsubscribed at ann@ moves
    staying.save()
    outbox.deliver_pending(include_not_due=True)

    assert statuses(sandbox).get("bob@example.com") == UNSUBSCRIBED


@pytest.mark.django_db
def test_a_user_sharing_an_unsubscribed_address_stays_unsubscribed_when_the_other_goes(
    sandbox: Any,
) -> None:
    users = get_user_model().objects
    leaving = users.create_user(username="leaving", email="ann@example.com")
    outbox.deliver_pending()
    sandbox.unsubscribe(APP_ID, "ann@example.com")
    full_sync.run_sync()  # the unsubscribe is recorded (for `leaving`)
    staying = users.create_user(username="staying", email="ann@example.com")  # a conflict
    outbox.deliver_pending()

    leaving.delete()
    staying.email = "bob@example.com"  # the person who unsubscribed at ann@ moves
    staying.save()
    outbox.deliver_pending(include_not_due=True)
    full_sync.run_sync()

    assert statuses(sandbox) == {"bob@example.com": UNSUBSCRIBED}


@pytest.mark.django_db
def test_a_contact_kept_for_a_user_who_moves_on_before_any_delivery_is_deleted(
    sandbox: Any,
) -> None:
    """I3, the same hand-over when the user that gets the contact was never delivered at that
    address: its outbox rows are its only record of it."""
    users = get_user_model().objects
    moving = users.create_user(username="moving", email="dan@example.com")
    leaving = users.create_user(username="leaving", email="bob@example.com")
    outbox.deliver_pending()
    leaving.delete()
    moving.email = "bob@example.com"
    moving.save()
    outbox.deliver_pending(limit=1)  # `leaving` only: bob@ is kept, `moving` has it
    assert set(statuses(sandbox)) == {"dan@example.com", "bob@example.com"}
    moving.email = "cat@example.com"  # ... and moves on before being delivered at bob@
    moving.save()
    outbox.deliver_pending()

    assert set(statuses(sandbox)) == {"cat@example.com"}


@pytest.mark.django_db
def test_an_unsubscribed_address_deleted_with_its_user_is_read_first_by_the_next_user(
    sandbox: Any,
) -> None:
    """I1: the user deleted first must not delete, unread, an address the other user's rows
    name: that user's email change reads its status (it would find nothing)."""
    users = get_user_model().objects
    leaving = users.create_user(username="leaving", email="ann@example.com")
    outbox.deliver_pending()
    leaving.delete()  # delivered first below
    staying = users.create_user(username="staying", email="ann@example.com")
    sandbox.unsubscribe(APP_ID, "ann@example.com")
    staying.email = "bob@example.com"  # never delivered at ann@
    staying.save()
    outbox.deliver_pending()  # `leaving` first: ann@ is left to `staying`, who reads it

    assert statuses(sandbox) == {"bob@example.com": UNSUBSCRIBED}


@pytest.mark.django_db
def test_a_contact_left_to_an_admin_deleted_user_by_its_pending_change_is_deleted(
    sandbox: Any,
) -> None:
    users = get_user_model().objects
    first = users.create_user(username="first", email="dan@example.com")
    outbox.deliver_pending()
    second = users.create_user(username="second", email="dan@example.com")  # a conflict
    outbox.deliver_pending(include_not_due=True)
    services.delete_user_contacts([first])  # kept: `second` has dan@ too
    second.delete()
    first.first_name = "Renamed"  # a change of `first`, pending, names dan@
    first.save()
    outbox.deliver_pending(include_not_due=True)  # `second` first: dan@ is left to `first`
    full_sync.run_sync()

    assert statuses(sandbox) == {}


@pytest.mark.django_db
def test_an_unsubscribe_of_a_shared_address_is_kept_for_a_user_marked_do_not_sync(
    sandbox: Any,
) -> None:
    """I1 (found at 5x the CI budget, issue 17): the last user to delete a shared address read
    it Unsubscribed, learned it for itself only, and deleted it; the other user that had the
    address (marked do-not-sync, so not a keeper) was later synced again under a new address,
    found nothing to read, and was created Confirmed. Now the unsubscribe is recorded for every
    user that has the address before it is deleted."""
    users = get_user_model().objects
    eve = users.create_user(username="eve", email="eve@example.com")
    dan = users.create_user(username="dan", email="dan@example.com")
    outbox.deliver_pending()
    services.delete_user_contacts([dan])  # the admin deletes dan's contact ...
    services.sync_users([dan])  # ... and syncs it again
    eve.email = "dan@example.com"  # eve takes dan's address: a conflict
    eve.save()
    outbox.deliver_pending()
    services.delete_user_contacts([dan])  # dan@ is left to eve, who has it
    assert statuses(sandbox) == {"dan@example.com": CONFIRMED}
    sandbox.unsubscribe(APP_ID, "dan@example.com")  # the person behind dan@ unsubscribes

    services.delete_user_contacts([eve])  # nobody keeps dan@ now: it is deleted
    assert statuses(sandbox) == {}
    dan.email = "ann@example.com"
    dan.save()
    services.sync_users([dan])

    assert statuses(sandbox) == {"ann@example.com": UNSUBSCRIBED}
