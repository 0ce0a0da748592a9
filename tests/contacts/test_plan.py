"""The full sync's diff: pure, no database, no API."""

from __future__ import annotations

import os
from typing import Any

import pytest

from django_sendflare.contacts import plan as plan_module
from django_sendflare.contacts.adapter import Contact
from django_sendflare.contacts.plan import SyncPlan, plan, prune_refusal
from django_sendflare.contacts.remote import RemoteContact
from django_sendflare.contacts.remote_index import RemoteIndex

FIELDS = ("firstName", "lastName")


@pytest.fixture(autouse=True, params=[1, 2, 1000], ids=lambda n: f"chunk{n}")
def plan_chunk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Every plan test runs with users compared one, two and a thousand at a time: a conflict or
    a match across two chunks must come out as within one."""
    monkeypatch.setattr(plan_module, "PLAN_CHUNK", request.param)
    return int(request.param)


def local(key: str, email: str, status: str = "Confirmed", **data: str) -> tuple[str, Contact]:
    values = {"firstName": "", "lastName": "", **data}
    return key, Contact(email, status, values)


def remote(email: str, status: str = "Confirmed", **data: Any) -> RemoteContact:
    return RemoteContact.from_api({"emailAddress": email, "status": status, **data}, FIELDS)


def test_unchanged_contacts_cost_nothing() -> None:
    result = plan(
        [local("1", "a@example.com", firstName="Ada")],
        [remote("a@example.com", firstName="Ada", lastName=None, phoneNumber="123")],
    )
    assert result.unchanged == 1
    assert result.calls == 0
    assert not result.extras


def test_addresses_match_trimmed_and_case_insensitively() -> None:
    result = plan([local("1", " Ada@Example.com ")], [remote("ada@EXAMPLE.com")])
    assert result.unchanged == 1
    assert result.calls == 0


def test_creates_updates_and_extras() -> None:
    result = plan(
        [
            local("1", "new@example.com", firstName="New"),
            local("2", "changed@example.com", firstName="After"),
            local("3", "same@example.com"),
        ],
        [
            remote("Changed@example.com", firstName="Before", lastName="Kept?"),
            remote("same@example.com"),
            remote("gone@example.com"),
        ],
    )
    assert [c.contact.email for c in result.creates] == ["new@example.com"]
    assert result.creates[0].contact.filled_data() == {"firstName": "New"}
    [update] = result.updates
    assert update.remote.email == "Changed@example.com"  # the address the API knows
    assert update.changes == (("firstName", "Before", "After"), ("lastName", "Kept?", ""))
    assert [e.email for e in result.extras] == ["gone@example.com"]
    assert result.unchanged == 1
    assert result.calls == 2


def test_two_users_with_one_address_are_a_conflict_and_neither_is_synced() -> None:
    result = plan(
        [
            local("1", "dup@example.com", firstName="One"),
            local("2", "solo@example.com"),
            local("3", " DUP@example.com", firstName="Three"),
            local("4", "dup@example.com"),
        ],
        [remote("dup@example.com", firstName="Remote")],
    )
    assert result.conflicts == {"dup@example.com": ["1", "3", "4"]}
    assert [c.contact.email for c in result.creates] == ["solo@example.com"]
    assert result.updates == []
    # The contact of a conflicting address is not an extra: it is never pruned.
    assert result.extras == []


def test_a_conflict_found_after_an_unchanged_user_is_not_counted_unchanged() -> None:
    result = plan(
        [local("1", "dup@example.com"), local("2", "dup@example.com")],
        [remote("dup@example.com")],
    )
    assert result.unchanged == 0
    assert list(result.conflicts) == ["dup@example.com"]


def test_status_differences_are_reported_not_changed() -> None:
    result = plan(
        [local("1", "a@example.com", status="Confirmed", firstName="Ada")],
        [remote("a@example.com", status="Unsubscribed", firstName="Ada")],
    )
    [difference] = result.status_differences
    assert (difference.remote_status, difference.local_status) == ("Unsubscribed", "Confirmed")
    assert result.calls == 0
    assert result.recreates == []


def test_status_differences_are_recreated_only_when_asked() -> None:
    result = plan(
        [local("1", "a@example.com", status="Unsubscribed")],
        [remote("a@example.com", status="Confirmed")],
        recreate_to_change_status=True,
    )
    assert [r.contact.status for r in result.recreates] == ["Unsubscribed"]
    assert result.calls == 2  # a delete and a create


def test_remote_values_are_compared_as_the_api_returns_them() -> None:
    fields = ("birthday", "vipLevel", "amount")
    ours = Contact("a@example.com", data={"birthday": "01/12", "vipLevel": "1", "amount": "100.00"})
    theirs = RemoteContact.from_api(
        # The documented example: a full date and a numeric vipLevel.
        {
            "emailAddress": "a@example.com",
            "status": "Confirmed",
            "birthday": "1990-12-01",
            "vipLevel": 1,
            "amount": "100.00",
        },
        fields,
    )
    result = plan([("1", ours)], [theirs])
    assert result.unchanged == 1


def test_a_contact_listed_twice_counts_once() -> None:
    result = plan([], [remote("a@example.com"), remote("A@example.com")])
    assert [e.email for e in result.extras] == ["a@example.com"]
    assert result.remote_count == 2


def test_prune_refusal() -> None:
    small = SyncPlan(extras=[remote("x@example.com")], remote_count=10)
    assert prune_refusal(small, complete=True, force=False) is None
    big = SyncPlan(extras=[remote(f"{i}@example.com") for i in range(2)], remote_count=10)
    assert "more than 10%" in (prune_refusal(big, complete=True, force=False) or "")
    assert prune_refusal(big, complete=True, force=True) is None
    # A partial list never prunes, not even with --force.
    assert "could not be read" in (prune_refusal(small, complete=False, force=True) or "")
    assert prune_refusal(SyncPlan(), complete=True, force=False) is None
    assert prune_refusal(SyncPlan(), complete=False, force=False)  # unread pages may hold extras


def test_the_remote_list_lives_in_a_file_that_is_deleted_after() -> None:
    index = RemoteIndex()
    index.add([remote("a@example.com", firstName="Ada"), remote("A@example.com ", firstName="X")])
    index.add([remote("b@example.com")])
    directory = index._directory.name
    result = plan([local("1", "a@example.com", firstName="Ada")], index)
    assert (index.count, result.remote_count) == (3, 3)
    assert result.unchanged == 1  # the first of two listings of one address wins
    assert [e.email for e in result.extras] == ["b@example.com"]
    index.close()
    assert not os.path.exists(directory)
