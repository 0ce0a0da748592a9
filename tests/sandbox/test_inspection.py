"""The inspection API and pages under /_sandbox/ (standalone server)."""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser

import pytest
import requests

from django_sendflare.sandbox.server import RunningSandbox
from django_sendflare.sandbox.validation import parse_contact

EVIL = "<script>alert('x')</script><b onmouseover=\"steal()\">bold</b>"


@pytest.fixture
def server(make_server: Callable[..., RunningSandbox]) -> RunningSandbox:
    return make_server()


def _send(http: requests.Session, server: RunningSandbox, **changes: str) -> str:
    payload = {"from": "a@example.com", "to": "b@example.com", "subject": "S", "body": "B"}
    response = http.post(f"{server.url}/v1/send", json={**payload, **changes}, timeout=5)
    assert response.json()["code"] == 0
    return str(response.json()["requestId"])


def _contact(http: requests.Session, server: RunningSandbox, app_id: str, email: str) -> None:
    payload = {"appId": app_id, "emailAddress": email, "status": "Confirmed"}
    assert http.post(f"{server.url}/v1/contact", json=payload, timeout=5).json()["code"] == 0


def test_messages_json(http: requests.Session, server: RunningSandbox) -> None:
    request_id = _send(http, server, subject="first")
    _send(http, server, subject="second")
    api = f"{server.url}/_sandbox/api/messages"
    listed = requests.get(api, timeout=5).json()  # no token needed
    assert listed["count"] == 2
    assert [m["subject"] for m in listed["messages"]] == ["first", "second"]
    one = requests.get(f"{api}/{request_id}", timeout=5).json()
    assert one["subject"] == "first"
    assert requests.get(f"{api}/nope", timeout=5).status_code == 404
    assert requests.delete(api, timeout=5).json() == {"deleted": 2}
    assert requests.get(api, timeout=5).json()["count"] == 0


def test_contacts_json(http: requests.Session, server: RunningSandbox) -> None:
    _contact(http, server, "a", "x@example.com")
    _contact(http, server, "b", "y@example.com")
    api = f"{server.url}/_sandbox/api/contacts"
    one = requests.get(api, params={"appId": "a"}, timeout=5).json()
    assert (one["appId"], one["count"]) == ("a", 1)
    assert one["contacts"][0]["emailAddress"] == "x@example.com"
    every = requests.get(api, timeout=5).json()["apps"]
    assert sorted(every) == ["a", "b"]
    assert requests.delete(api, params={"appId": "a"}, timeout=5).json() == {"deleted": 1}
    assert sorted(requests.get(api, timeout=5).json()["apps"]) == ["b"]
    assert requests.delete(api, timeout=5).json() == {"deleted": 1}


def test_request_log_and_reset(http: requests.Session, server: RunningSandbox) -> None:
    _send(http, server)
    http.get(f"{server.url}/v1/contact", timeout=5)  # 400: no appId
    log = requests.get(f"{server.url}/_sandbox/api/requests", timeout=5).json()
    assert log["count"] == 2
    assert [(e["method"], e["path"], e["status"], e["code"]) for e in log["requests"]] == [
        ("POST", "/v1/send", 200, 0),
        ("GET", "/v1/contact", 400, 100033),
    ]
    _contact(http, server, "a", "x@example.com")
    server.sandbox.queue_faults(["500"])
    reset = requests.post(
        f"{server.url}/_sandbox/api/reset", headers={"X-Sendflare-Sandbox": "1"}, timeout=5
    )
    assert reset.json() == {"reset": True}
    assert server.sandbox.messages() == []
    assert server.sandbox.app_ids() == []
    assert server.sandbox.requests() == []
    assert server.sandbox.faults()["queue"] == []
    assert requests.get(f"{server.url}/_sandbox/api/reset", timeout=5).status_code == 405


def test_index_and_unknown(server: RunningSandbox) -> None:
    index = requests.get(f"{server.url}/_sandbox/api/", timeout=5).json()
    assert index["config"]["tokenRequired"] is True
    assert "messages" in index["endpoints"]
    assert requests.get(f"{server.url}/_sandbox/api/nothing", timeout=5).status_code == 404
    root = requests.get(f"{server.url}/", timeout=5)
    assert root.url.endswith("/_sandbox/")


class _Scripts(HTMLParser):
    """Collects what a browser would execute or render as elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.iframes: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag == "iframe":
            self.iframes.append(dict(attrs))


def test_inbox_and_message_page_escape_the_body(
    http: requests.Session, server: RunningSandbox
) -> None:
    request_id = _send(http, server, subject="<script>alert(1)</script>", body=EVIL)
    inbox = requests.get(f"{server.url}/_sandbox/", timeout=5)
    assert inbox.status_code == 200
    assert "default-src 'none'" in inbox.headers["Content-Security-Policy"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in inbox.text
    parsed = _Scripts()
    parsed.feed(inbox.text)
    assert "script" not in parsed.tags

    page = requests.get(f"{server.url}/_sandbox/messages/{request_id}", timeout=5)
    assert page.status_code == 200
    parsed = _Scripts()
    parsed.feed(page.text)
    assert "script" not in parsed.tags
    assert "b" not in parsed.tags
    assert not any(name.startswith("on") for name, _ in parsed.attrs)
    [frame] = parsed.iframes
    assert frame["sandbox"] == ""  # unique origin, no scripts
    assert frame["srcdoc"] == EVIL  # rendered only inside the sandboxed frame
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page.text  # the source view


def test_contacts_page(http: requests.Session, server: RunningSandbox) -> None:
    _contact(http, server, "app<1>", "x@example.com")
    page = requests.get(f"{server.url}/_sandbox/contacts", timeout=5)
    assert "appId app&lt;1&gt;" in page.text
    assert "x@example.com" in page.text
    filtered = requests.get(f"{server.url}/_sandbox/contacts", params={"appId": "z"}, timeout=5)
    assert "x@example.com" not in filtered.text
    assert requests.get(f"{server.url}/_sandbox/messages/nope", timeout=5).status_code == 404


def test_unsubscribe_and_delete_made_at_sendflare(
    http: requests.Session, server: RunningSandbox
) -> None:
    """What a recipient or Sendflare's dashboard does to a contact, outside the API."""
    _contact(http, server, "a", "Ann@example.com")
    _contact(http, server, "a", "bob@example.com")
    api = f"{server.url}/_sandbox/api/contacts"
    unsubscribe = requests.post(
        f"{api}/unsubscribe", json={"appId": "a", "emailAddress": "ann@EXAMPLE.com"}, timeout=5
    )
    assert unsubscribe.json() == {"unsubscribed": True}
    listed = http.get(f"{server.url}/v1/contact", params={"appId": "a"}, timeout=5).json()
    statuses = {c["emailAddress"]: c["status"] for c in listed["data"]["list"]}
    assert statuses == {"Ann@example.com": "Unsubscribed", "bob@example.com": "Confirmed"}
    # A later save through the API keeps the status (it applies on create only).
    _contact(http, server, "a", "ann@example.com")
    assert server.sandbox.contacts("a")[0]["status"] == "Unsubscribed"

    missing = requests.post(
        f"{api}/unsubscribe", json={"appId": "a", "emailAddress": "nobody@example.com"}, timeout=5
    )
    assert missing.status_code == 404
    assert requests.post(f"{api}/unsubscribe", json={"appId": "a"}, timeout=5).status_code == 400

    one = {"appId": "a", "emailAddress": "BOB@example.com"}
    assert requests.delete(api, params=one, timeout=5).json() == {"deleted": 1}
    assert requests.delete(api, params=one, timeout=5).json() == {"deleted": 0}
    assert [c["emailAddress"] for c in server.sandbox.contacts("a")] == ["Ann@example.com"]
    no_app = requests.delete(api, params={"emailAddress": "x@example.com"}, timeout=5)
    assert no_app.status_code == 400
    # Neither is an API request: they are not logged and never get a fault.
    assert all(r["path"] == "/v1/contact" for r in server.sandbox.requests())
    assert len(server.sandbox.requests()) == 4


def test_the_contacts_page_of_a_huge_app_shows_its_first_rows(
    http: requests.Session, server: RunningSandbox
) -> None:
    from django_sendflare.sandbox import pages

    for index in range(pages.MAX_CONTACT_ROWS + 5):
        payload = {"appId": "big", "emailAddress": f"u{index}@example.com"}
        server.sandbox._save_contact(parse_contact(payload))  # no HTTP: 1,005 saves
    page = requests.get(f"{server.url}/_sandbox/contacts", timeout=5).text
    assert "appId big (1,005)" in page
    assert "The first 1,000 of 1,005" in page
    assert "u999@example.com" in page and "u1000@example.com" not in page
    api = requests.get(f"{server.url}/_sandbox/api/contacts", params={"appId": "big"}, timeout=5)
    assert api.json()["count"] == 1005
