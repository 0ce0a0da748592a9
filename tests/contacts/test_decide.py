"""decide(): the one decision, pure (these tests touch no database and no API)."""

from __future__ import annotations

import datetime

from django_sendflare.contacts import decide as d
from django_sendflare.contacts.adapter import Contact
from django_sendflare.contacts.remote import RemoteContact
from django_sendflare.contacts.snapshot import LocalUser, Snapshot, StateFacts

NOW = datetime.datetime(2026, 12, 4, tzinfo=datetime.timezone.utc)


def snapshot(
    email: str | None = "new@example.com", status: str = "Confirmed", **state: object
) -> Snapshot:
    user = None
    if email is not None:
        user = LocalUser(None, email, Contact(email, status, {"firstName": "Ada"}))
    return Snapshot("1", user, StateFacts(**state))  # type: ignore[arg-type]


def listed(email: str, status: str = "Confirmed") -> RemoteContact:
    return RemoteContact(email, status, (("firstName", "Ada"),))


def test_an_email_change_reads_the_old_address_then_creates_the_new_one() -> None:
    facts = snapshot(synced_email="old@example.com", synced_at=NOW, remote_status="Confirmed")
    assert d.decide(facts) == d.LiveRead(("old@example.com",))
    facts.remote["old@example.com"] = listed("old@example.com")
    step = d.decide(facts)
    assert isinstance(step, d.Save)
    assert (step.contact.email, step.status, step.new_address) == (
        "new@example.com",
        "Confirmed",
        True,
    )


def test_an_old_address_unsubscribed_is_learned_before_the_new_one_is_created() -> None:
    facts = snapshot(synced_email="old@example.com", synced_at=NOW)
    facts.remote["old@example.com"] = listed("old@example.com", "Unsubscribed")
    assert d.decide(facts) == d.LearnUnsubscribed("old@example.com")
    facts.state = StateFacts(synced_email="old@example.com", synced_at=NOW, unsubscribed_at=NOW)
    # The new address may exist Confirmed (a save would keep that): it is read first.
    assert d.decide(facts) == d.LiveRead(("new@example.com",))
    facts.remote["new@example.com"] = None
    step = d.decide(facts)
    assert isinstance(step, d.Save) and step.status == "Unsubscribed"  # I1, never Confirmed


def test_a_deleted_user_gets_deletes_only_after_asking_who_keeps_the_address() -> None:
    facts = snapshot(None, synced_email="ann@example.com", stale_emails=("x@example.com",))
    assert d.decide(facts) == d.FindKeepers("ann@example.com")
    facts.keepers["ann@example.com"] = ()
    assert d.decide(facts) == d.Delete("ann@example.com")
    facts.gone.add("ann@example.com")
    facts.keepers["x@example.com"] = ("7",)
    assert d.decide(facts) == d.HandOver("x@example.com", ("7",))
    facts.gone.add("x@example.com")
    assert d.decide(facts) == d.ForgetUser()


def test_a_user_marked_do_not_sync_is_never_saved() -> None:
    facts = snapshot(do_not_sync=True, synced_email="new@example.com", synced_at=NOW)
    facts.remote["new@example.com"] = listed("new@example.com")
    assert d.decide(facts) == d.FindKeepers("new@example.com")
    facts.gone.add("new@example.com")
    assert d.decide(facts) == d.Done(synced=False)


def test_two_users_with_one_address_are_a_conflict() -> None:
    facts = snapshot()
    facts.others = ("2",)
    assert d.decide(facts) == d.NoteStale("new@example.com")
    facts.state = StateFacts(stale_emails=("new@example.com",))
    assert d.decide(facts) == d.Conflict("new@example.com", ("2",))


def test_an_unsubscribe_learned_recreates_a_confirmed_contact_never_the_other_way() -> None:
    facts = snapshot(
        synced_email="new@example.com",
        synced_at=NOW,
        remote_status="Confirmed",
        unsubscribed_at=NOW,
        synced_data={"firstName": "Ada"},
    )
    facts.remote["new@example.com"] = listed("new@example.com")
    assert d.decide(facts) == d.FindKeepers("new@example.com")
    unsubscribed = snapshot(
        status="Confirmed",
        synced_email="new@example.com",
        synced_at=NOW,
        remote_status="Unsubscribed",
        unsubscribed_at=NOW,
        synced_data={"firstName": "Ada"},
    )
    unsubscribed.remote["new@example.com"] = listed("new@example.com", "Unsubscribed")
    assert d.decide(unsubscribed) == d.Done()  # nothing of ours re-subscribes anyone


def test_a_contact_missing_from_a_complete_listing_was_deleted_at_sendflare() -> None:
    facts = snapshot(synced_email="new@example.com", synced_at=NOW)
    facts.remote["new@example.com"] = None
    assert d.decide(facts) == d.LearnRemoteDelete("new@example.com")
