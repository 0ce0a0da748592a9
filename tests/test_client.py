"""SendflareClient: envelope, error mapping, retries, pagination and secrecy (HTTP mocked)."""

from __future__ import annotations

import json
import logging
import pickle

import pytest
import requests
import responses
from urllib3.exceptions import NewConnectionError, ProtocolError

from django_sendflare import exceptions as exc
from django_sendflare.client import SendflareClient
from django_sendflare.retry import RetryPolicy

from .envelopes import envelope

TOKEN = "sf-secret-token-xyz"
URL = "https://api.test.invalid"
SEND = URL + "/v1/send"
CONTACT = URL + "/v1/contact"


class FakeTime:
    """A clock that moves only when the client sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time():
    return FakeTime()


@pytest.fixture
def client(fake_time):
    return SendflareClient(
        TOKEN,
        api_url=URL,
        app_id="app-1",
        retry=RetryPolicy(max_retries=3, max_time=30),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )


def send(client):
    return client.send(from_email="a@example.com", to="b@example.com", subject="Hi", body="Hello")


@responses.activate
def test_send_posts_the_documented_payload_with_bearer_auth(client):
    responses.post(SEND, json=envelope())
    result = send(client)
    assert result.code == 0 and result.request_id.startswith("req-")
    request = responses.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(request.body) == {
        "from": "a@example.com",
        "to": "b@example.com",
        "subject": "Hi",
        "body": "Hello",
    }


@responses.activate
def test_unicode_is_sent_as_utf8(client):
    responses.post(SEND, json=envelope())
    client.send(from_email="a@example.com", to="b@example.com", subject="Grüße ✉", body="日本語")
    body = responses.calls[0].request.body
    assert "Grüße ✉".encode() in body and "日本語".encode() in body


@pytest.mark.parametrize(("code", "error_class"), sorted(exc.SERVICE_ERRORS.items()))
@responses.activate
def test_each_service_code_maps_to_its_error(client, code, error_class):
    body = envelope(code, message="documented message")
    responses.post(SEND, json=body)
    with pytest.raises(error_class) as excinfo:
        send(client)
    error = excinfo.value
    assert error.code == code
    assert error.message == "documented message"
    assert error.request_id == body["requestId"]
    assert str(code) in str(error) and body["requestId"] in str(error)


@responses.activate
def test_unknown_code_becomes_a_generic_error_that_keeps_it(client):
    responses.post(SEND, json=envelope(123456, message="new thing"))
    with pytest.raises(exc.SendflareAPIError) as excinfo:
        send(client)
    assert type(excinfo.value) is exc.SendflareAPIError
    assert excinfo.value.code == 123456


@pytest.mark.parametrize(
    ("status", "body", "content_type", "error_class", "text"),
    [
        (
            502,
            "<html><head><title>502 Bad Gateway</title></head></html>",
            "text/html",
            exc.SendflareServerError,
            "HTML page ('502 Bad Gateway')",
        ),
        (
            200,
            "<!DOCTYPE html><html><body>maintenance</body></html>",
            "text/html",
            exc.SendflareBadResponse,
            "HTML page",
        ),
        (200, "", "application/json", exc.SendflareBadResponse, "empty body"),
        (200, "not json at all", "text/plain", exc.SendflareBadResponse, "non-JSON body"),
        (200, "[1, 2, 3]", "application/json", exc.SendflareBadResponse, "not the API's envelope"),
        (200, '{"code": "0"}', "application/json", exc.SendflareBadResponse, "envelope"),
        (200, '{"message": "ok"}', "application/json", exc.SendflareBadResponse, "envelope"),
        (401, "Unauthorized", "text/plain", exc.SendflareAuthenticationError, "API_TOKEN"),
        (503, "", "text/plain", exc.SendflareServerError, "HTTP 503"),
        (404, "Not Found", "text/plain", exc.SendflareBadResponse, "HTTP 404"),
    ],
)
@responses.activate
def test_garbage_becomes_a_clear_api_error(client, status, body, content_type, error_class, text):
    responses.post(SEND, body=body, status=status, content_type=content_type)
    with pytest.raises(error_class) as excinfo:
        send(client)
    assert text in str(excinfo.value)
    assert excinfo.value.status_code == status
    assert len(responses.calls) == 1  # a send that may have been processed is not repeated


@responses.activate
def test_envelope_error_with_http_401_is_an_auth_error(client):
    responses.post(SEND, json=envelope(401, message="token invalid"), status=401)
    with pytest.raises(exc.SendflareAuthenticationError):
        send(client)
    assert len(responses.calls) == 1


@responses.activate
def test_429_is_retried_after_retry_after(client, fake_time):
    responses.post(SEND, json=envelope(100025), status=429, headers={"Retry-After": "2"})
    responses.post(SEND, json=envelope())
    assert send(client).code == 0
    assert fake_time.sleeps == [2.0]
    assert len(responses.calls) == 2


@responses.activate
def test_code_100025_is_retried_with_backoff(client, fake_time):
    responses.post(SEND, json=envelope(100025))
    responses.post(SEND, json=envelope(100025))
    responses.post(SEND, json=envelope())
    assert send(client).code == 0
    assert len(fake_time.sleeps) == 2
    assert 0.25 <= fake_time.sleeps[0] <= 0.5 and 0.5 <= fake_time.sleeps[1] <= 1.0


@responses.activate
def test_retries_are_bounded_by_attempts(client, fake_time):
    responses.post(SEND, json=envelope(100025), status=429)
    with pytest.raises(exc.SendflareRateLimited):
        send(client)
    assert len(responses.calls) == 4  # 1 + MAX_RETRIES


@responses.activate
def test_retries_are_bounded_by_total_time(client, fake_time):
    responses.post(SEND, json=envelope(100025), status=429, headers={"Retry-After": "60"})
    with pytest.raises(exc.SendflareRateLimited) as excinfo:
        send(client)
    assert excinfo.value.retry_after == 60
    assert len(responses.calls) == 1 and fake_time.sleeps == []


@pytest.mark.parametrize("code", [100031, 100033, 100047, 100048, 100049, 100029, 100030, 100023])
@responses.activate
def test_permanent_errors_are_never_retried(client, code):
    responses.post(SEND, json=envelope(code))
    with pytest.raises(exc.SendflareAPIError):
        send(client)
    assert len(responses.calls) == 1


def refused() -> requests.ConnectionError:
    return requests.ConnectionError(NewConnectionError(None, "Connection refused"))


def dropped() -> requests.ConnectionError:
    return requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError()))


@responses.activate
def test_connection_failure_before_sending_is_retried(client):
    responses.post(SEND, body=refused())
    responses.post(SEND, body=requests.ConnectTimeout("connect timed out"))
    responses.post(SEND, json=envelope())
    assert send(client).code == 0
    assert len(responses.calls) == 3


@pytest.mark.parametrize(
    "failure",
    [dropped(), requests.ReadTimeout("read timed out"), requests.exceptions.ChunkedEncodingError()],
)
@responses.activate
def test_ambiguous_send_failures_are_reported_not_retried(client, failure):
    responses.post(SEND, body=failure)
    responses.post(SEND, json=envelope())
    with pytest.raises(exc.SendflareAPIError) as excinfo:
        send(client)
    assert excinfo.value.may_have_been_processed
    assert len(responses.calls) == 1


@responses.activate
def test_ambiguous_send_failures_are_retried_when_opted_in(fake_time):
    client = SendflareClient(
        TOKEN,
        api_url=URL,
        retry=RetryPolicy(retry_ambiguous=True),
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )
    responses.post(SEND, body=requests.ReadTimeout("read timed out"))
    responses.post(SEND, status=502, body="bad gateway")
    responses.post(SEND, json=envelope())
    assert send(client).code == 0
    assert len(responses.calls) == 3


@responses.activate
def test_idempotent_contact_calls_are_retried_after_ambiguous_failures(client):
    responses.post(CONTACT, body=dropped())
    responses.post(CONTACT, status=500, body="oops")
    responses.post(CONTACT, json=envelope())
    assert client.save_contact(email="x@example.com").code == 0
    assert len(responses.calls) == 3


@responses.activate
def test_save_and_delete_contact_requests(client):
    responses.post(CONTACT, json=envelope())
    responses.delete(CONTACT, json=envelope())
    client.save_contact(email="x@example.com", status="Unsubscribed", data={"firstName": "X"})
    client.delete_contact(email="x@example.com")
    assert json.loads(responses.calls[0].request.body) == {
        "appId": "app-1",
        "emailAddress": "x@example.com",
        "status": "Unsubscribed",
        "data": {"firstName": "X"},
    }
    assert responses.calls[1].request.url == CONTACT + "?appId=app-1&emailAddress=x%40example.com"
    with pytest.raises(ValueError, match="status"):
        client.save_contact(email="x@example.com", status="Subscribed")


def page(items, total_key="total", total=None):
    data = {"page": 1, "pageSize": 2, "list": items}
    if total_key:
        data[total_key] = total
    return envelope(data=data)


@pytest.mark.parametrize("total_key", ["total", "totalCount"])
@responses.activate
def test_iter_contacts_reads_every_page(client, total_key):
    contacts = [{"emailAddress": f"c{i}@example.com", "status": "Confirmed"} for i in range(5)]
    for start in (0, 2, 4):
        responses.get(CONTACT, json=page(contacts[start : start + 2], total_key, 5))
    assert [c["emailAddress"] for c in client.iter_contacts(page_size=2)] == [
        c["emailAddress"] for c in contacts
    ]
    assert [c.request.params["page"] for c in responses.calls] == ["1", "2", "3"]


@responses.activate
def test_iter_contacts_without_total_stops_at_a_short_page(client):
    responses.get(CONTACT, json=page([{"emailAddress": "a@x.com"}] * 2, None))
    responses.get(CONTACT, json=page([{"emailAddress": "b@x.com"}], None))
    assert len(list(client.iter_contacts(page_size=2))) == 3
    assert len(responses.calls) == 2


@pytest.mark.parametrize(
    "data",
    [
        None,
        "text",
        [{"status": "Confirmed"}],
        {"list": "nope"},
        {"list": [{"status": "Confirmed"}]},
        {"list": [], "total": "x"},
        {"list": [], "totalCount": True},
    ],
)
@responses.activate
def test_contact_list_of_the_wrong_shape_is_a_clear_error(client, data):
    responses.get(CONTACT, json=envelope(data=data))
    with pytest.raises(exc.SendflareBadResponse, match="unexpected shape"):
        list(client.iter_contacts())


@responses.activate
def test_an_api_that_ignores_the_page_parameter_is_not_read_forever(client):
    same = page([{"emailAddress": "a@x.com"}, {"emailAddress": "b@x.com"}], None)
    responses.get(CONTACT, json=same)
    with pytest.raises(exc.SendflareBadResponse, match="same contacts"):
        list(client.iter_contacts(page_size=2))
    assert len(responses.calls) == 2


@responses.activate
def test_a_failing_page_raises_instead_of_ending_the_list(client):
    responses.get(CONTACT, json=page([{"emailAddress": "a@x.com"}] * 2, "total", 4))
    responses.get(CONTACT, json=envelope(100033))
    with pytest.raises(exc.SendflareBadParameters):
        list(client.iter_contacts(page_size=2))


def test_contacts_need_an_app_id():
    with pytest.raises(ValueError, match="APP_ID"):
        SendflareClient(TOKEN).delete_contact(email="x@example.com")


@responses.activate
def test_the_token_is_in_no_log_exception_or_repr(client, caplog):
    caplog.set_level(logging.DEBUG)
    responses.post(SEND, json=envelope(100025), status=429)
    with pytest.raises(exc.SendflareRateLimited) as excinfo:
        send(client)
    responses.post(CONTACT, body=dropped())
    with pytest.raises(exc.SendflareAPIError):
        client.save_contact(email="x@example.com")
    texts = [
        caplog.text,
        repr(client),
        repr(client.session.auth),
        str(excinfo.value),
        repr(excinfo.value),
        repr(client.session.__dict__),
    ]
    assert all(TOKEN not in text for text in texts)
    assert "retry" in caplog.text


def test_api_errors_survive_pickling():
    error = exc.SendflareDailyLimitReached("quota", code=100031, request_id="r1", status_code=200)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is exc.SendflareDailyLimitReached
    assert (copy.code, copy.request_id, copy.message) == (100031, "r1", "quota")


def test_one_connection_pool_for_every_call(client):
    adapters = {id(client.session.get_adapter(url)) for url in (SEND, CONTACT)}
    assert len(adapters) == 1
