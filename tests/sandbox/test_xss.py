"""Stored XSS: what a request stores comes back escaped on every sandbox page (issue 22).

Each field a request can put into the sandbox carries a payload; every page that shows it must
show it as text. A page is parsed like a browser would: no element or attribute may come from
the payload, and the payload's text must be there, escaped.
"""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser

import pytest
import requests

from django_sendflare.sandbox.server import RunningSandbox

PAYLOAD = "<script>alert(1)</script><img src=x onerror=alert(2)>'\"&"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&#x27;&quot;&amp;"
# An address may hold ' and &, which would end a single-quoted attribute if left unescaped.
ADDRESS = "o'x&amp=1@example.com"
ADDRESS_ESCAPED = "o&#x27;x&amp;amp=1@example.com"
#: The elements and attributes the sandbox's own pages use.
OWN_TAGS = {
    "html", "head", "meta", "title", "style", "body", "nav", "a", "h1", "h2", "p", "table",
    "tr", "th", "td", "br", "span", "iframe", "pre",
}  # fmt: skip
OWN_ATTRIBUTES = {"lang", "charset", "href", "class", "sandbox", "title", "srcdoc"}


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)
        self.hrefs.extend(value or "" for name, value in attrs if name == "href")


def assert_only_text(html: str) -> None:
    elements = Elements()
    elements.feed(html)
    assert elements.tags <= OWN_TAGS, elements.tags - OWN_TAGS
    assert elements.attributes <= OWN_ATTRIBUTES, elements.attributes - OWN_ATTRIBUTES
    assert all(href.startswith("/_sandbox/") for href in elements.hrefs), elements.hrefs


@pytest.fixture
def server(make_server: Callable[..., RunningSandbox], http: requests.Session) -> RunningSandbox:
    server = make_server()
    sent = http.post(
        f"{server.url}/v1/send",
        json={
            "from": ADDRESS,
            "to": ADDRESS,
            "subject": PAYLOAD,
            "body": PAYLOAD,
            "cc": [ADDRESS],
            "bcc": [ADDRESS],
            "replyTo": [ADDRESS],
        },
        timeout=5,
    )
    assert sent.json()["code"] == 0, sent.json()
    data = {name: PAYLOAD for name in ("language", "firstName", "lastName", "company", "amount")}
    saved = http.post(
        f"{server.url}/v1/contact",
        json={"appId": PAYLOAD, "emailAddress": ADDRESS, "data": {**data, "phoneNumber": PAYLOAD}},
        timeout=5,
    )
    assert saved.json()["code"] == 0
    return server


def page(server: RunningSandbox, rest: str, **params: str) -> str:
    response = requests.get(f"{server.url}/_sandbox/{rest}", params=params, timeout=5)
    assert response.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    return response.text


def test_the_inbox_shows_message_fields_as_text(server: RunningSandbox) -> None:
    html = page(server, "")
    assert_only_text(html)
    assert ESCAPED in html
    assert html.count(ADDRESS_ESCAPED) == 5  # from, to, cc, bcc, replyTo


def test_the_message_page_shows_message_fields_as_text(server: RunningSandbox) -> None:
    [message] = server.sandbox.messages()
    html = page(server, f"messages/{message['id']}")
    assert_only_text(html)
    assert f"<title>{ESCAPED} - Sendflare sandbox</title>" in html
    assert html.count(ADDRESS_ESCAPED) == 5
    # The body is rendered only inside the sandboxed frame, as an attribute value.
    assert f"srcdoc='{ESCAPED}'" in html


def test_the_contacts_page_shows_contact_fields_as_text(server: RunningSandbox) -> None:
    html = page(server, "contacts")
    assert_only_text(html)
    assert f"appId {ESCAPED}" in html
    assert html.count(ESCAPED) == 7  # the appId heading and six data fields
    assert ADDRESS_ESCAPED in html
    filtered = page(server, "contacts", appId=PAYLOAD)
    assert_only_text(filtered)
    assert filtered.count(ESCAPED) == 7


@pytest.mark.parametrize("rest", ["contacts", "nothing", "messages/<script>"])
def test_what_a_link_carries_is_not_reflected(server: RunningSandbox, rest: str) -> None:
    html = page(server, rest, appId="<b>reflected</b>")
    assert_only_text(html)
    assert "reflected" not in html


def test_the_json_api_is_never_taken_for_a_page(server: RunningSandbox) -> None:
    for rest in ("api/messages", "api/contacts", "api/requests"):
        response = requests.get(f"{server.url}/_sandbox/{rest}", timeout=5)
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
