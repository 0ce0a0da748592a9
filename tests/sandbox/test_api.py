"""The documented endpoints, validation and auth, over real HTTP to the standalone server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from django_sendflare.sandbox.server import RunningSandbox
from tests.sandbox.conftest import TOKEN, assert_envelope

MESSAGE = {"from": "from@example.com", "to": "to@example.com", "subject": "Hi", "body": "Hello"}
CONTACT = {"appId": "app-1", "emailAddress": "john.doe@example.com", "status": "Confirmed"}


@pytest.fixture
def server(make_server: Callable[..., RunningSandbox]) -> RunningSandbox:
    return make_server()


def send(http: requests.Session, server: RunningSandbox, **changes: Any) -> requests.Response:
    payload = {**MESSAGE, **changes}
    return http.post(f"{server.url}/v1/send", json=payload, timeout=5)


def test_send_records_the_message(http: requests.Session, server: RunningSandbox) -> None:
    response = send(http, server)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert_envelope(body, 0)
    assert body["data"] is None
    [message] = server.sandbox.messages()
    assert message["requestId"] == body["requestId"]
    assert (message["from"], message["to"], message["subject"], message["body"]) == (
        "from@example.com",
        "to@example.com",
        "Hi",
        "Hello",
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"from": ""},
        {"to": None},
        {"subject": "   "},
        {"body": 42},
        {"from": "not-an-address"},
        {"to": "a@example.com, b@example.com"},
        {"to": ["to@example.com"]},
        {"from": "Name <from@example.com>"},
        {"cc": "x@example.com"},
        {"cc": None},
        {"bcc": ["not-an-address"]},
        {"replyTo": [1]},
        {"bcc": {"0": "x@example.com"}},
        {"headers": {"X-A": "1"}},
    ],
)
def test_send_validation(
    http: requests.Session, server: RunningSandbox, changes: dict[str, Any]
) -> None:
    response = send(http, server, **changes)
    assert response.status_code == 400
    assert_envelope(response.json(), 100033)
    assert server.sandbox.messages() == []


def test_send_missing_field_and_bad_json(http: requests.Session, server: RunningSandbox) -> None:
    missing = http.post(f"{server.url}/v1/send", json={"from": "a@example.com"}, timeout=5)
    assert_envelope(missing.json(), 100033)
    broken = http.post(f"{server.url}/v1/send", data=b"{not json", timeout=5)
    assert broken.status_code == 400
    assert_envelope(broken.json(), 100033)
    listed = http.post(f"{server.url}/v1/send", json=[MESSAGE], timeout=5)
    assert_envelope(listed.json(), 100033)


def test_too_large(http: requests.Session, make_server: Callable[..., RunningSandbox]) -> None:
    server = make_server(max_message_size=200)
    response = send(http, server, body="x" * 200)
    assert response.status_code == 413
    assert_envelope(response.json(), 100023)
    assert send(http, server, body="small").json()["code"] == 0


def test_unknown_sender(http: requests.Session, make_server: Callable[..., RunningSandbox]) -> None:
    server = make_server(allowed_senders=("Sender@Example.com",))
    refused = send(http, server, **{"from": "other@example.com"})
    assert refused.status_code == 403
    assert_envelope(refused.json(), 100048)
    assert send(http, server, **{"from": "sender@example.com"}).json()["code"] == 0


def test_daily_quota_per_token(
    http: requests.Session, make_server: Callable[..., RunningSandbox]
) -> None:
    server = make_server(daily_quota=2, token=None)
    assert [send(http, server).json()["code"] for _ in range(2)] == [0, 0]
    refused = send(http, server)
    assert refused.status_code == 403
    assert_envelope(refused.json(), 100031)
    other = http.post(
        f"{server.url}/v1/send",
        json=MESSAGE,
        headers={"Authorization": "Bearer another-account"},
        timeout=5,
    )
    assert other.json()["code"] == 0
    assert len(server.sandbox.messages()) == 3


def test_errors_as_http_200(
    http: requests.Session, make_server: Callable[..., RunningSandbox]
) -> None:
    server = make_server(errors_as_http_200=True)
    response = send(http, server, to="nobody")
    assert response.status_code == 200
    assert_envelope(response.json(), 100033)


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer ", "Bearer wrong", f"Basic {TOKEN}", TOKEN],
)
def test_auth_with_a_configured_token(server: RunningSandbox, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = requests.post(f"{server.url}/v1/send", json=MESSAGE, headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_envelope(response.json(), 100029)
    assert server.sandbox.messages() == []


def test_any_token_without_a_configured_token(
    make_server: Callable[..., RunningSandbox],
) -> None:
    server = make_server(token=None)
    ok = requests.post(
        f"{server.url}/v1/send", json=MESSAGE, headers={"Authorization": "bearer x"}, timeout=5
    )
    assert ok.json()["code"] == 0
    empty = requests.post(
        f"{server.url}/v1/send", json=MESSAGE, headers={"Authorization": "Bearer  "}, timeout=5
    )
    assert empty.status_code == 401


def test_unknown_path_and_method(http: requests.Session, server: RunningSandbox) -> None:
    missing = http.get(f"{server.url}/v1/nothing", timeout=5)
    assert missing.status_code == 404
    assert_envelope(missing.json(), 100033)
    wrong = http.get(f"{server.url}/v1/send", timeout=5)
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "POST"


def save(http: requests.Session, server: RunningSandbox, **changes: Any) -> requests.Response:
    return http.post(f"{server.url}/v1/contact", json={**CONTACT, **changes}, timeout=5)


def list_contacts(
    http: requests.Session, server: RunningSandbox, **params: Any
) -> requests.Response:
    return http.get(f"{server.url}/v1/contact", params=params, timeout=5)


def test_contact_create_list_update_delete(http: requests.Session, server: RunningSandbox) -> None:
    created = save(http, server, data={"firstName": "John", "vipLevel": 1, "birthday": "01/12"})
    assert_envelope(created.json(), 0)
    assert created.json()["data"] is None

    # An update never changes status or the address's spelling; data keys merge.
    updated = save(
        http,
        server,
        emailAddress="JOHN.DOE@example.com",
        status="Unsubscribed",
        data={"lastName": "Doe", "vipLevel": "2", "birthday": "1990-01-01"},
    )
    assert updated.json()["code"] == 0

    listed = list_contacts(http, server, appId="app-1")
    assert listed.status_code == 200
    body = listed.json()
    assert_envelope(body, 0)
    assert {k: body["data"][k] for k in ("total", "totalCount", "page", "pageSize")} == {
        "total": 1,
        "totalCount": 1,
        "page": 1,
        "pageSize": 500,
    }
    [contact] = body["data"]["list"]
    assert contact["emailAddress"] == "john.doe@example.com"
    assert contact["status"] == "Confirmed"
    assert contact["firstName"] == "John"
    assert contact["lastName"] == "Doe"
    assert contact["vipLevel"] == 2
    assert contact["birthday"] == "1990-01-01"
    assert set(contact) >= {
        "language",
        "phoneNumber",
        "company",
        "amount",
        "registerDate",
        "source",
        "subscriptionExpireTime",
        "lastActiveTime",
    }

    deleted = http.delete(
        f"{server.url}/v1/contact",
        params={"appId": "app-1", "emailAddress": "John.Doe@example.com"},
        timeout=5,
    )
    assert_envelope(deleted.json(), 0)
    assert list_contacts(http, server, appId="app-1").json()["data"]["total"] == 0
    # Deleting again (a retry) still succeeds.
    again = http.delete(
        f"{server.url}/v1/contact",
        params={"appId": "app-1", "emailAddress": "john.doe@example.com"},
        timeout=5,
    )
    assert again.json()["code"] == 0


def test_contacts_are_kept_per_app_id(http: requests.Session, server: RunningSandbox) -> None:
    save(http, server, appId="a")
    save(http, server, appId="b", status="Unsubscribed")
    assert [c["status"] for c in server.sandbox.contacts("a")] == ["Confirmed"]
    assert [c["status"] for c in server.sandbox.contacts("b")] == ["Unsubscribed"]
    assert list_contacts(http, server, appId="c").json()["data"]["list"] == []


def test_contact_pages_keep_insertion_order(http: requests.Session, server: RunningSandbox) -> None:
    for index in range(5):
        assert save(http, server, emailAddress=f"u{index}@example.com").json()["code"] == 0
    page2 = list_contacts(http, server, appId="app-1", page=2, pageSize=2).json()["data"]
    assert [c["emailAddress"] for c in page2["list"]] == ["u2@example.com", "u3@example.com"]
    assert (page2["total"], page2["page"], page2["pageSize"]) == (5, 2, 2)
    page4 = list_contacts(http, server, appId="app-1", page=4, pageSize=2).json()["data"]
    assert page4["list"] == []


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"appId": ""},
        {"appId": "a", "page": "-1"},
        {"appId": "a", "page": "x"},
        {"appId": "a", "pageSize": "501"},
        {"appId": "a", "pageSize": "-5"},
        {"appId": ["a", "b"]},
    ],
)
def test_list_validation(
    http: requests.Session, server: RunningSandbox, params: dict[str, Any]
) -> None:
    response = list_contacts(http, server, **params)
    assert response.status_code == 400
    assert_envelope(response.json(), 100033)


@pytest.mark.parametrize(
    "changes",
    [
        {"appId": ""},
        {"emailAddress": "nope"},
        {"status": "Subscribed"},
        {"status": None},
        {"data": "x"},
        {"data": {"nickname": "J"}},
        {"data": {"firstName": 1}},
        {"data": {"vipLevel": "gold"}},
        {"data": {"vipLevel": True}},
        {"data": {"birthday": "31/02"}},
        {"data": {"birthday": "1990-13-01"}},
        {"data": {"birthday": "Dec 1"}},
        {"extra": 1},
    ],
)
def test_contact_validation(
    http: requests.Session, server: RunningSandbox, changes: dict[str, Any]
) -> None:
    response = save(http, server, **changes)
    assert response.status_code == 400
    assert_envelope(response.json(), 100033)
    assert server.sandbox.app_ids() == []


@pytest.mark.parametrize("params", [{}, {"appId": "a"}, {"emailAddress": "a@example.com"}])
def test_delete_validation(
    http: requests.Session, server: RunningSandbox, params: dict[str, str]
) -> None:
    response = http.delete(f"{server.url}/v1/contact", params=params, timeout=5)
    assert response.status_code == 400
    assert_envelope(response.json(), 100033)


def test_keep_alive_connection_is_reused(http: requests.Session, server: RunningSandbox) -> None:
    first = send(http, server)
    second = send(http, server)
    assert first.json()["code"] == second.json()["code"] == 0
    assert first.headers.get("Connection", "").lower() != "close"
    assert len(server.sandbox.requests()) == 2


# What the official SDKs send where the documents say otherwise (tests/sandbox/test_sdk_contract.py
# replays their requests one by one).


def test_zero_page_parameters_are_the_documented_defaults(
    http: requests.Session, server: RunningSandbox
) -> None:
    for index in range(3):
        save(http, server, emailAddress=f"u{index}@example.com")
    for params in ({"page": "0", "pageSize": "0"}, {"page": "", "pageSize": ""}, {}):
        data = list_contacts(http, server, appId="app-1", **params).json()["data"]
        assert (data["page"], data["pageSize"], data["total"]) == (1, 500, 3)
        assert len(data["list"]) == 3


def test_a_save_without_status_creates_a_confirmed_contact_marked_as_defaulted(
    http: requests.Session, server: RunningSandbox
) -> None:
    created = http.post(
        f"{server.url}/v1/contact",
        json={"appId": "app-1", "emailAddress": "ann@example.com"},
        timeout=5,
    )
    assert_envelope(created.json(), 0)
    save(http, server, emailAddress="bob@example.com", status="Unsubscribed")
    listed = list_contacts(http, server, appId="app-1").json()["data"]["list"]
    assert [(c["emailAddress"], c["status"]) for c in listed] == [
        ("ann@example.com", "Confirmed"),
        ("bob@example.com", "Unsubscribed"),
    ]
    assert "statusDefaulted" not in listed[0]  # the API's answer stays the documented one
    # The inspection API and page say which status was the sandbox's own default.
    inspected = requests.get(
        f"{server.url}/_sandbox/api/contacts", params={"appId": "app-1"}, timeout=5
    ).json()["contacts"]
    assert [c["statusDefaulted"] for c in inspected] == [True, False]
    page = requests.get(f"{server.url}/_sandbox/contacts", timeout=5).text
    assert page.count("(default: the save sent no status)") == 1


def test_cc_bcc_and_reply_to_are_recorded_and_empty_lists_ignored(
    http: requests.Session, server: RunningSandbox
) -> None:
    assert send(http, server, cc=[], bcc=[]).json()["code"] == 0
    copied = send(
        http,
        server,
        cc=["c1@example.com", "c2@example.com"],
        bcc=["b@example.com"],
        replyTo=["r@example.com"],
    )
    assert_envelope(copied.json(), 0)
    plain, full = server.sandbox.messages()
    assert (plain["cc"], plain["bcc"], plain["replyTo"]) == ([], [], [])
    assert (full["cc"], full["bcc"], full["replyTo"]) == (
        ["c1@example.com", "c2@example.com"],
        ["b@example.com"],
        ["r@example.com"],
    )
    assert full["to"] == "to@example.com"  # still one message, to one recipient
    inbox = requests.get(f"{server.url}/_sandbox/", timeout=5).text
    assert "Cc: c1@example.com, c2@example.com; Bcc: b@example.com" in inbox
    page = requests.get(f"{server.url}/_sandbox/messages/{full['id']}", timeout=5).text
    assert "<th>Reply-To</th><td>r@example.com" in page
    assert "recorded only" in page


def test_status_stays_strict_when_it_is_given(
    http: requests.Session, server: RunningSandbox
) -> None:
    for status in ("confirmed", "", 1, None):
        assert save(http, server, status=status).json()["code"] == 100033
    assert server.sandbox.app_ids() == []
