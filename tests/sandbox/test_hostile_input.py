"""Input that must not break the sandbox for anyone (issue 22).

Text with no UTF-8 form (a lone surrogate, which JSON's ``\\ud800`` decodes to) and JSON nested
deeper than anything documented are refused at request time with 100033, by the API and the
inspection endpoints; whatever a request holds, every later page and API call still answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_sendflare.sandbox.engine import Sandbox, SandboxConfig, SandboxRequest
from django_sendflare.sandbox.inspection import handle_inspection
from django_sendflare.sandbox.jsonbody import MAX_JSON_DEPTH
from django_sendflare.sandbox.server import RunningSandbox
from tests.sandbox.conftest import TOKEN, assert_envelope

MESSAGE = {"from": "a@example.com", "to": "b@example.com", "subject": "S", "body": "B"}
CONTACT = {"appId": "app", "emailAddress": "c@example.com", "status": "Confirmed"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: Every page and JSON endpoint a person or a test reads.
READS = ("", "contacts", "api/messages", "api/contacts", "api/requests", "api/faults", "api/")


def raw(text: str) -> bytes:
    """A JSON text as bytes, escapes left to the JSON decoder (as an SDK would send them)."""
    return text.encode("utf-8")


def api(sandbox: Sandbox, method: str, path: str, body: bytes = b"", query: str = "") -> Any:
    response = sandbox.handle(SandboxRequest(method, path, query, AUTH, body))
    return response.status, response.json()


def assert_everything_still_answers(sandbox: Sandbox) -> None:
    for rest in READS:
        response = handle_inspection(sandbox, "GET", rest, "", b"", "/_sandbox/")
        assert response.status == 200, (rest, response.body[:200])
        response.body.decode("utf-8")
    for message in sandbox.messages():
        page = handle_inspection(sandbox, "GET", f"messages/{message['id']}", "", b"", "/")
        assert page.status == 200
    for app_id in sandbox.app_ids():
        status, body = api(sandbox, "GET", "/v1/contact", query=f"appId={app_id}")
        assert (status, body["code"]) == (200, 0)


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(SandboxConfig(token=TOKEN, rate_limit=0))


LONE = "\\ud800"  # as it appears in the JSON text: six characters
SURROGATE_SENDS = [
    '{"from":"a@example.com","to":"b@example.com","subject":"' + LONE + '","body":"B"}',
    '{"from":"a@example.com","to":"b@example.com","subject":"S","body":"x' + LONE + 'y"}',
    '{"from":"a' + LONE + '@example.com","to":"b@example.com","subject":"S","body":"B"}',
    '{"from":"a@example.com","to":"b@example.com","subject":"S","body":"\\udfff"}',
    '{"from":"a@example.com","to":"b@example.com","subject":"S","body":"B","cc":["'
    + LONE
    + '@x.com"]}',
    '{"from":"a@example.com","to":"b@example.com","subject":"S","body":"B","' + LONE + '":1}',
]
SURROGATE_CONTACTS = [
    '{"appId":"' + LONE + '","emailAddress":"c@example.com"}',
    '{"appId":"app","emailAddress":"c@example.com","data":{"firstName":"' + LONE + '"}}',
    '{"appId":"app","emailAddress":"c@example.com","data":{"' + LONE + '":"x"}}',
]


@pytest.mark.parametrize("body", SURROGATE_SENDS)
def test_a_lone_surrogate_anywhere_in_a_send_is_refused(sandbox: Sandbox, body: str) -> None:
    status, answer = api(sandbox, "POST", "/v1/send", raw(body))
    assert status == 400
    assert_envelope(answer, 100033)
    assert "lone surrogate" in answer["message"]
    assert sandbox.messages() == []
    assert_everything_still_answers(sandbox)


@pytest.mark.parametrize("body", SURROGATE_CONTACTS)
def test_a_lone_surrogate_anywhere_in_a_contact_is_refused(sandbox: Sandbox, body: str) -> None:
    status, answer = api(sandbox, "POST", "/v1/contact", raw(body))
    assert (status, answer["code"]) == (400, 100033)
    assert sandbox.app_ids() == []
    assert_everything_still_answers(sandbox)


def test_the_message_names_where_the_surrogate_is(sandbox: Sandbox) -> None:
    body = '{"appId":"app","emailAddress":"c@example.com","data":{"company":"' + LONE + '"}}'
    _, answer = api(sandbox, "POST", "/v1/contact", raw(body))
    assert "'data.company' holds U+D800, a lone surrogate" in answer["message"]


def test_a_surrogate_pair_is_one_character_and_is_accepted(sandbox: Sandbox) -> None:
    body = '{"from":"a@example.com","to":"b@example.com","subject":"\\ud83d\\ude00","body":"B"}'
    status, _ = api(sandbox, "POST", "/v1/send", raw(body))
    assert status == 200
    assert sandbox.messages()[0]["subject"] == "\N{GRINNING FACE}"
    inbox = handle_inspection(sandbox, "GET", "", "", b"", "/")
    assert "\N{GRINNING FACE}" in inbox.body.decode("utf-8")


def test_a_surrogate_in_the_fault_settings_is_refused(sandbox: Sandbox) -> None:
    body = raw('{"invalid_sending_domains":["' + LONE + '.example"]}')
    response = handle_inspection(sandbox, "PUT", "api/faults", "", body, "/")
    assert response.status == 400
    assert "lone surrogate" in response.json()["error"]
    assert_everything_still_answers(sandbox)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("path", ["/v1/send", "/v1/contact"])
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_deep_json_is_a_bad_request_not_a_crash(sandbox: Sandbox, path: str, depth: int) -> None:
    status, answer = api(sandbox, "POST", path, raw('{"data":' + nested(depth) + "}"))
    assert status == 400
    assert_envelope(answer, 100033)
    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in answer["message"]
    assert_everything_still_answers(sandbox)


def test_deep_json_to_the_inspection_api_is_a_bad_request(sandbox: Sandbox) -> None:
    response = handle_inspection(sandbox, "POST", "api/faults/queue", "", raw(nested(100_000)), "/")
    assert response.status == 400
    assert "nested deeper" in response.json()["error"]


def test_over_real_http_nothing_is_a_500(make_server: Callable[..., RunningSandbox]) -> None:
    server = make_server()
    headers = {**AUTH, "Content-Type": "application/json"}
    for body in (nested(100_000), SURROGATE_SENDS[0]):
        response = requests.post(
            f"{server.url}/v1/send", data=raw(body), headers=headers, timeout=10
        )
        assert response.status_code == 400
        assert_envelope(response.json(), 100033)
    for rest in ("", "api/messages", "contacts"):
        assert requests.get(f"{server.url}/_sandbox/{rest}", timeout=5).status_code == 200


def test_a_subject_with_cr_lf_is_accepted_and_shown_visibly(sandbox: Sandbox) -> None:
    # The documents type subject as a plain string; see docs/explanation/sandbox-fidelity.rst.
    body = json.dumps({**MESSAGE, "subject": "Hi\r\nBcc: victim@example.com"}).encode()
    status, _ = api(sandbox, "POST", "/v1/send", body)
    assert status == 200
    inbox = handle_inspection(sandbox, "GET", "", "", b"", "/").body.decode()
    assert "Hi<span class='mark'>\\r</span><span class='mark'>\\n</span>Bcc:" in inbox


# Any JSON value, with any characters (lone surrogates and NUL included), in any field.
_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
_FIELDS = ("from", "to", "subject", "body", "cc", "appId", "emailAddress", "status", "data")


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(["/v1/send", "/v1/contact"]),
    changes=st.dictionaries(st.sampled_from(_FIELDS) | _TEXT, _JSON, max_size=3),
)
def test_no_request_breaks_a_later_page(path: str, changes: dict[str, Any]) -> None:
    sandbox = Sandbox(SandboxConfig(token=TOKEN, rate_limit=0))
    base = MESSAGE if path == "/v1/send" else CONTACT
    body = json.dumps({**base, **changes}, ensure_ascii=True, allow_nan=True).encode()
    status, answer = api(sandbox, "POST", path, body)
    assert status in (200, 400)
    assert answer["code"] == (0 if status == 200 else 100033)
    assert_everything_still_answers(sandbox)


@pytest.mark.parametrize(
    "settings_json",
    ['{"latency": 1e999}', '{"jitter": NaN}', '{"slow": 3601}', '{"rates": {"503": NaN}}'],
)
def test_a_delay_no_clock_can_wait_is_refused(sandbox: Sandbox, settings_json: str) -> None:
    # time.sleep() raises on NaN and infinity: accepted, every later API call would be a 500.
    response = handle_inspection(sandbox, "PUT", "api/faults", "", raw(settings_json), "/")
    assert response.status == 400
    assert "finite number" in response.json()["error"] or "at most 3600" in response.json()["error"]
    status, answer = api(sandbox, "POST", "/v1/send", json.dumps(MESSAGE).encode())
    assert (status, answer["code"]) == (200, 0)


@pytest.mark.parametrize(
    "query",
    ["appId=a&page=" + "9" * 5000, "appId=a&pageSize=" + "0" * 5000, "appId=a&page=%D9%A3"],
    ids=["5000-digit-page", "5000-zero-pageSize", "arabic-indic-digit"],
)
def test_a_page_number_int_cannot_hold_is_refused(sandbox: Sandbox, query: str) -> None:
    status, answer = api(sandbox, "GET", "/v1/contact", query=query)
    assert (status, answer["code"]) == (400, 100033)


@pytest.mark.parametrize("vip", ["9" * 5000, 2**63, -(2**63) - 1, 1e300])
def test_a_vip_level_beyond_64_bits_is_refused(sandbox: Sandbox, vip: object) -> None:
    body = json.dumps({**CONTACT, "data": {"vipLevel": vip}}).encode()
    status, answer = api(sandbox, "POST", "/v1/contact", body)
    assert (status, answer["code"]) == (400, 100033)
    assert_everything_still_answers(sandbox)
