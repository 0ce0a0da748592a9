"""What one email change and a full sync cost in database queries (issue 17).

An email change delivered by ``sync_contacts --pending`` reads the user's facts once per step
and writes the state once per step: at most 15 queries for its 3 API calls (a read of the
listing for the old address's status, the save of the new address, the delete of the old).
A full sync costs a constant number of queries per user, however long the list.
"""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_sendflare.models import ContactSyncState

from .fakes import FakeClient

#: The issue's target for one email change (it cost 43 before).
EMAIL_CHANGE_QUERIES = 15


def deliver_an_email_change(make_user: Any, fake_api: FakeClient) -> CaptureQueriesContext:
    user = make_user("old@example.com", first_name="Ada")
    call_command("sync_contacts", "--pending", stdout=StringIO())
    user.email = "new@example.com"
    user.save()
    fake_api.reset_calls()
    with CaptureQueriesContext(connection) as queries:
        call_command("sync_contacts", "--pending", stdout=StringIO())
    assert [(c.method, c.email) for c in fake_api.calls] == [
        ("list", ""),
        ("save", "new@example.com"),
        ("delete", "old@example.com"),
    ]
    state = ContactSyncState.objects.get(user_key=str(user.pk))
    assert (state.synced_email, state.stale_emails) == ("new@example.com", [])
    return queries


def describe(queries: CaptureQueriesContext) -> str:
    return "\n".join(q["sql"] for q in queries.captured_queries)


@pytest.mark.django_db(transaction=True)
def test_an_email_change_costs_at_most_15_queries_and_3_calls(
    make_user: Any, fake_api: FakeClient
) -> None:
    queries = deliver_an_email_change(make_user, fake_api)
    assert len(queries) <= EMAIL_CHANGE_QUERIES, describe(queries)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_email_change_costs_at_most_15_queries_on_postgresql(
    make_user: Any, fake_api: FakeClient
) -> None:
    queries = deliver_an_email_change(make_user, fake_api)
    assert len(queries) <= EMAIL_CHANGE_QUERIES, describe(queries)


def full_sync_queries(make_user: Any, fake_api: FakeClient, users: int, offset: int) -> int:
    """The queries of a full sync that updates ``users`` new users' contacts."""
    for number in range(offset, offset + users):
        make_user(f"user{number}@example.com", first_name="Before")
        fake_api.add(f"user{number}@example.com", firstName="Old")
    with CaptureQueriesContext(connection) as queries:
        call_command("sync_contacts", stdout=StringIO())
    assert sum(c.method == "save" for c in fake_api.calls) >= users
    fake_api.reset_calls()
    return len(queries)


@pytest.mark.django_db(transaction=True)
def test_a_full_sync_costs_a_constant_number_of_queries_per_user(
    make_user: Any, fake_api: FakeClient
) -> None:
    # Each new user's contact differs (an update): each is brought up to date by its step. The
    # users of the runs before are unchanged by then, and cost nothing but their share of the
    # plan's chunked reads.
    ten = full_sync_queries(make_user, fake_api, 10, offset=0)
    twenty = full_sync_queries(make_user, fake_api, 20, offset=100)
    thirty = full_sync_queries(make_user, fake_api, 30, offset=200)
    per_user = (twenty - ten) / 10
    # Linear: each ten more users cost the same, on top of the same constant part.
    assert thirty - twenty == twenty - ten, (ten, twenty, thirty)
    assert per_user <= 16, (ten, twenty, thirty)  # it was 19 before issue 17
    # The constant part: the listing, the plan's reads, and the command's one upsert of the
    # last full sync for sendflare_status (BEGIN, INSERT ... ON CONFLICT, COMMIT on SQLite).
    assert ten - 10 * per_user <= 8, (ten, twenty, thirty)
