"""Every answer shape the documents or the official SDKs show, read by the client and the sync.

The document lists contacts as ``data.{total, page, pageSize, list}``; the SDKs read
``totalCount`` (and the Go and C# models ``data`` as the list itself); ``vipLevel`` is a number in
the document's example and a string in the SDKs' models; the envelope suggests errors under
HTTP 200, the SDKs raise on HTTP >= 400. One test per shape (docs/explanation/sandbox-fidelity.rst).
"""

from __future__ import annotations

from typing import Any

import pytest
import responses

from django_sendflare import exceptions as exc
from django_sendflare.client import SendflareClient
from django_sendflare.contacts.adapter import Contact
from django_sendflare.contacts.listing import ListingScan
from django_sendflare.contacts.remote import RemoteContact

from .envelopes import envelope

URL = "https://api.test.invalid"
CONTACT = URL + "/v1/contact"
SEND = URL + "/v1/send"
FIELDS = ("firstName", "vipLevel", "amount", "birthday")
ANN = {"emailAddress": "ann@example.com", "status": "Confirmed"}
BOB = {"emailAddress": "bob@example.com", "status": "Unsubscribed"}
CARL = {"emailAddress": "carl@example.com", "status": "Confirmed"}


@pytest.fixture
def client() -> SendflareClient:
    return SendflareClient("token", api_url=URL, app_id="app-1", sleep=lambda _: None)


def emails(client: SendflareClient, page_size: int = 2) -> list[str]:
    return [c["emailAddress"] for c in client.iter_contacts(page_size=page_size)]


# The list ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "count",
    [{"total": 3}, {"totalCount": 3}, {"total": None, "totalCount": 3}, {"total": "3"},
     {"totalCount": " 3 "}, {"total": 3.0}],
    ids=["total", "totalCount", "null-total-then-totalCount", "total-string",
         "totalCount-string", "total-float"],
)  # fmt: skip
@responses.activate
def test_the_count_under_either_name_as_a_number_or_a_string(
    client: SendflareClient, count: dict[str, Any]
) -> None:
    responses.get(
        CONTACT, json=envelope(data={"page": 1, "pageSize": 2, "list": [ANN, BOB], **count})
    )
    responses.get(CONTACT, json=envelope(data={"page": 2, "pageSize": 2, "list": [CARL], **count}))
    assert emails(client) == ["ann@example.com", "bob@example.com", "carl@example.com"]
    assert client.list_contacts(page_size=2).total == 3


@responses.activate
def test_the_list_as_data_itself(client: SendflareClient) -> None:
    responses.get(CONTACT, json=envelope(data=[ANN, BOB]))
    responses.get(CONTACT, json=envelope(data=[]))
    # No count: a full page asks for the next one, and an empty page ends the list.
    assert emails(client) == ["ann@example.com", "bob@example.com"]
    assert [call.request.params["page"] for call in responses.calls] == ["1", "2"]
    assert client.list_contacts(page_size=2).total is None


@responses.activate
def test_the_list_without_a_count_ends_at_a_short_page(client: SendflareClient) -> None:
    responses.get(CONTACT, json=envelope(data={"list": [ANN, BOB]}))
    responses.get(CONTACT, json=envelope(data={"list": [CARL]}))
    assert len(emails(client)) == 3
    assert len(responses.calls) == 2


def listed(**data: Any) -> dict[str, Any]:
    return {**ANN, **data}


@pytest.mark.parametrize(
    "entry",
    [
        listed(vipLevel=2, amount="9.50", firstName="Ann", birthday="1990-12-01"),
        listed(vipLevel="2", amount="9.50", firstName="Ann", birthday="01/12"),
        listed(vipLevel=2.0, amount=9.5, firstName="Ann", birthday="01/12"),
        listed(vipLevel="02", amount="9.5", firstName=" Ann ", birthday="1990-12-01"),
    ],
    ids=["document-numbers", "sdk-strings", "json-floats", "padded-strings"],
)
def test_a_listed_entry_with_numbers_or_strings_matches_the_same_local_contact(
    entry: dict[str, Any],
) -> None:
    local = Contact(
        "ann@example.com", data={"firstName": "Ann", "vipLevel": 2, "amount": "9.50",
                                 "birthday": "01/12"},
    )  # fmt: skip
    remote = RemoteContact.from_api(entry, FIELDS)
    assert remote.key == local.key
    assert remote.changes(local) == ()


def test_a_different_number_is_still_a_change() -> None:
    local = Contact("ann@example.com", data={"vipLevel": 3, "amount": "9.50"})
    remote = RemoteContact.from_api(listed(vipLevel="2", amount=9.51), FIELDS)
    assert [name for name, _, _ in remote.changes(local)] == ["amount", "vipLevel"]


def test_a_huge_exponent_is_compared_as_text_not_expanded() -> None:
    remote = RemoteContact.from_api(listed(amount="1e999999999"), FIELDS)
    assert remote.value("amount") == "1e999999999"


@responses.activate
def test_the_sync_finds_contacts_in_the_go_and_csharp_shape(client: SendflareClient) -> None:
    responses.get(CONTACT, json=envelope(data=[listed(vipLevel="2"), {**BOB, "vipLevel": 5}]))
    scan = ListingScan(client, app_id="app-1", fields=FIELDS, page_size=500)
    facts = scan.lookup(["ann@example.com", "bob@example.com", "carl@example.com"])
    assert (
        facts["ann@example.com"] is not None and facts["ann@example.com"].value("vipLevel") == "2"
    )
    assert (
        facts["bob@example.com"] is not None and facts["bob@example.com"].status == "Unsubscribed"
    )
    assert facts["carl@example.com"] is None  # the whole list was read: known absent


# Errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 400, 403, 500])
@responses.activate
def test_a_service_error_is_the_same_error_under_any_http_status(
    client: SendflareClient, status: int
) -> None:
    responses.post(SEND, json=envelope(code=100048, message="no such sender"), status=status)
    with pytest.raises(exc.SendflareUnknownSender) as raised:
        client.send(from_email="a@example.com", to="b@example.com", subject="S", body="B")
    assert (raised.value.code, raised.value.status_code) == (100048, status)


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(400, exc.SendflareBadResponse), (401, exc.SendflareAuthenticationError),
     (429, exc.SendflareRateLimited), (503, exc.SendflareServerError)],
)  # fmt: skip
@responses.activate
def test_an_http_error_without_an_envelope_is_classified_by_its_status(
    client: SendflareClient, status: int, error_class: type[Exception]
) -> None:
    responses.get(CONTACT, body="Error", status=status)
    with pytest.raises(error_class):
        client.list_contacts()


@responses.activate
def test_success_false_under_code_0_is_not_taken_for_success(client: SendflareClient) -> None:
    responses.post(SEND, json={**envelope(code=0), "success": False}, status=200)
    with pytest.raises(exc.SendflareAPIError):
        client.send(from_email="a@example.com", to="b@example.com", subject="S", body="B")
