"""The full sync against a fake API: reads, diffs, calls only for what differs, prunes safely."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone

from django_sendflare.contacts import full_sync
from django_sendflare.contacts.adapter import ContactAdapter
from django_sendflare.contacts.state import set_do_not_sync
from django_sendflare.exceptions import (
    SendflareAuthenticationError,
    SendflareServerError,
)
from django_sendflare.models import ContactChange, ContactSyncState

from .fakes import FakeClient


@pytest.fixture
def users(make_user: Any) -> list[Any]:
    made = [make_user(f"u{i}@example.com", first_name=f"U{i}") for i in range(10)]
    ContactChange.objects.all().delete()  # the full sync does not need the outbox
    return made


def seed_remote(fake_api: FakeClient, users: list[Any]) -> None:
    for user in users:
        fake_api.add(user.email, firstName=user.first_name, lastName=user.last_name)


def test_unchanged_contacts_cost_no_call(users: list[Any], fake_api: FakeClient) -> None:
    seed_remote(fake_api, users)
    report = full_sync.run_sync(page_size=3)
    assert [c.method for c in fake_api.calls] == ["list"] * 4  # 10 contacts, pages of 3
    assert report.plan.unchanged == 10
    assert report.ok


def test_only_differences_are_sent(users: list[Any], fake_api: FakeClient) -> None:
    seed_remote(fake_api, users[1:])
    fake_api.get("u2@example.com")["firstName"] = "Stale"  # type: ignore[index]
    fake_api.add("stranger@example.com")
    report = full_sync.run_sync()
    assert [(c.method, c.email) for c in fake_api.writes()] == [
        ("save", "u0@example.com"),
        ("save", "u2@example.com"),
    ]
    assert fake_api.get("u2@example.com")["firstName"] == "U2"  # type: ignore[index]
    # Reported, kept: no --prune.
    assert [e.email for e in report.plan.extras] == ["stranger@example.com"]
    assert fake_api.get("stranger@example.com") is not None
    assert report.applied is not None and report.applied.calls == 2
    # The sync state is recorded, so the outbox knows these contacts.
    state = ContactSyncState.objects.get(user_key=str(users[0].pk))
    assert state.synced_email == "u0@example.com" and state.synced_at is not None


def test_dry_run_changes_nothing(users: list[Any], fake_api: FakeClient) -> None:
    report = full_sync.run_sync(dry_run=True, prune=True)
    assert fake_api.writes() == []
    assert len(report.plan.creates) == 10
    assert report.applied is None


def test_updates_keep_the_contacts_status(users: list[Any], fake_api: FakeClient) -> None:
    seed_remote(fake_api, users)
    contact = fake_api.get("u3@example.com")
    assert contact is not None
    contact.update(status="Unsubscribed", firstName="Old")
    report = full_sync.run_sync()
    [save] = fake_api.writes()
    assert (save.email, save.status) == ("u3@example.com", "Unsubscribed")
    [difference] = report.plan.status_differences
    assert difference.remote_status == "Unsubscribed"
    assert ContactSyncState.objects.get(user_key=str(users[3].pk)).remote_status == ("Unsubscribed")


class NewsletterAdapter(ContactAdapter):
    """u3 turned the newsletter off in the app: Unsubscribed."""

    def get_status(self, user: Any) -> str:
        return "Unsubscribed" if user.email == "u3@example.com" else "Confirmed"


def test_recreate_to_change_status_only_when_the_setting_asks(
    users: list[Any], fake_api: FakeClient, settings: Any
) -> None:
    seed_remote(fake_api, users)
    settings.SENDFLARE = {
        **settings.SENDFLARE,
        "CONTACT_ADAPTER": "tests.contacts.test_sync.NewsletterAdapter",
    }
    full_sync.run_sync()
    assert fake_api.writes() == []
    settings.SENDFLARE = {**settings.SENDFLARE, "CONTACTS_RECREATE_TO_CHANGE_STATUS": True}
    full_sync.run_sync()
    assert [(c.method, c.email) for c in fake_api.writes()] == [
        ("delete", "u3@example.com"),
        ("save", "u3@example.com"),
    ]
    assert fake_api.get("u3@example.com")["status"] == "Unsubscribed"  # type: ignore[index]


def test_recreate_never_resubscribes(users: list[Any], fake_api: FakeClient, settings: Any) -> None:
    # I1: an Unsubscribed contact is never re-created Confirmed, whatever the setting.
    seed_remote(fake_api, users)
    fake_api.get("u3@example.com")["status"] = "Unsubscribed"  # type: ignore[index]
    settings.SENDFLARE = {**settings.SENDFLARE, "CONTACTS_RECREATE_TO_CHANGE_STATUS": True}
    full_sync.run_sync()
    assert fake_api.writes() == []
    assert fake_api.get("u3@example.com")["status"] == "Unsubscribed"  # type: ignore[index]


def test_prune_deletes_extras(users: list[Any], fake_api: FakeClient) -> None:
    seed_remote(fake_api, users)
    fake_api.add("stranger@example.com")
    report = full_sync.run_sync(prune=True)
    assert [(c.method, c.email) for c in fake_api.writes()] == [("delete", "stranger@example.com")]
    assert report.ok


def test_prune_refuses_more_than_ten_percent_without_force(
    users: list[Any], fake_api: FakeClient
) -> None:
    seed_remote(fake_api, users)
    for i in range(3):
        fake_api.add(f"stranger{i}@example.com")
    report = full_sync.run_sync(prune=True)
    assert fake_api.writes() == []
    assert report.prune_refused and "3 of 13" in report.prune_refused
    assert not report.ok
    fake_api.reset_calls()
    report = full_sync.run_sync(prune=True, force=True)
    assert len(fake_api.writes()) == 3
    assert report.ok


def test_nothing_is_pruned_when_a_page_failed(users: list[Any], fake_api: FakeClient) -> None:
    seed_remote(fake_api, users)
    fake_api.add("stranger@example.com")
    fake_api.fail_on = lambda call: (
        SendflareServerError("HTTP 502") if call.method == "list" and call.page == 2 else None
    )
    report = full_sync.run_sync(prune=True, force=True, page_size=4)
    assert not report.listing.complete and "after 4 contact(s)" in report.listing.error
    assert report.prune_refused and "could not be read" in report.prune_refused
    assert all(c.method != "delete" for c in fake_api.calls)
    # The users whose contacts were not read are saved again (an update: harmless).
    assert {c.email for c in fake_api.writes()} == {f"u{i}@example.com" for i in range(4, 10)}
    assert not report.ok


def test_a_list_that_cannot_be_read_aborts_before_any_call(
    users: list[Any], fake_api: FakeClient
) -> None:
    fake_api.down = True
    with pytest.raises(full_sync.SyncAborted):
        full_sync.run_sync()
    assert fake_api.writes() == []


def test_an_account_level_error_stops_the_run(users: list[Any], fake_api: FakeClient) -> None:
    fake_api.fail_on = lambda call: (
        SendflareAuthenticationError("bad token") if call.method == "save" else None
    )
    report = full_sync.run_sync()
    assert len(fake_api.writes()) == 1
    assert report.applied is not None
    assert report.applied.account_error
    assert sum(1 for r in report.applied.results if r.skipped) == 9
    assert not report.ok


def test_do_not_sync_users_and_inactive_users_are_left_out(
    users: list[Any], fake_api: FakeClient
) -> None:
    set_do_not_sync([str(users[0].pk)], True)
    users[1].is_active = False
    users[1].save()
    report = full_sync.run_sync()
    emails = {c.email for c in fake_api.writes()}
    assert "u0@example.com" not in emails and "u1@example.com" not in emails
    assert report.plan.local_count == 8


def test_since_takes_recent_users_and_refuses_prune(users: list[Any], fake_api: FakeClient) -> None:
    old = timezone.now() - datetime.timedelta(days=30)
    type(users[0]).objects.exclude(pk=users[0].pk).update(date_joined=old)
    report = full_sync.run_sync(since=timezone.now() - datetime.timedelta(days=1))
    assert report.plan.local_count == 1
    assert [c.email for c in fake_api.writes()] == ["u0@example.com"]
    with pytest.raises(ValueError, match="--since"):
        full_sync.run_sync(since=old, prune=True)


def test_conflicts_are_reported_and_not_synced(make_user: Any, fake_api: FakeClient) -> None:
    make_user("dup@example.com")
    other = make_user("x@example.com")
    other.email = "Dup@Example.com"
    other.save()
    report = full_sync.run_sync()
    assert list(report.plan.conflicts) == ["dup@example.com"]
    # Neither is saved; the old address of the second user may exist: deleted.
    assert [(c.method, c.email) for c in fake_api.writes()] == [("delete", "x@example.com")]
