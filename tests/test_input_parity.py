"""Django parity on input, and no third-party exception reaching the caller raw."""

from __future__ import annotations

import json

import pytest
import redis
import responses
from django.core import mail
from django.core.mail import EmailMessage
from django.core.mail import message as django_message
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend

from django_sendflare import exceptions as exc
from django_sendflare.backends import EmailBackend
from django_sendflare.client import SendflareClient
from django_sendflare.retry import RetryPolicy

from .envelopes import envelope
from .localserver import recording_server

# Django 5.2's own class; an alias of ValueError on 6.x (deprecated in django.core.mail).
BadHeaderError = getattr(django_message, "BadHeaderError", ValueError)

SEND = "https://api.sendflare.io/v1/send"


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(SEND, json=envelope())
        yield mock


INJECTIONS = [
    ("subject", {"subject": "Hi\r\nBcc: victim@evil.example"}),
    ("subject", {"subject": "Hi\nthere"}),
    ("from", {"from_email": "f@example.com\r\nBcc: victim@evil.example"}),
    ("to", {"to": ["a@example.com\nBcc: victim@evil.example"]}),
]


@pytest.mark.parametrize(("field", "change"), INJECTIONS)
def test_line_breaks_raise_bad_header_error_like_django(sendflare_backend, api, field, change):
    # Issue 9, failure 2: the subject used to be sent as is.
    fields = {"subject": "S", "from_email": "f@example.com", "to": ["a@example.com"], **change}
    locmem = EmailMessage(fields["subject"], "B", fields["from_email"], fields["to"])
    with pytest.raises(BadHeaderError):  # what Django's own backends raise
        LocmemBackend().send_messages([locmem])
    ok = EmailMessage("S", "B", "f@example.com", ["ok@example.com"])
    bad = EmailMessage(fields["subject"], "B", fields["from_email"], fields["to"])
    # fail_silently does not hide it, as with Django's own backends.
    with pytest.raises(BadHeaderError, match=field) as excinfo:
        EmailBackend(fail_silently=True).send_messages([ok, bad])
    assert isinstance(excinfo.value, exc.SendflareHeaderInjection)
    assert len(api.calls) == 0  # not even the valid message before it


@pytest.mark.parametrize("fail_silently", [False, True])
def test_a_lone_surrogate_is_refused_before_any_request(sendflare_backend, api, fail_silently):
    # Issue 9, failure 3: the first message was delivered, then a raw UnicodeEncodeError.
    ok = EmailMessage("S", "B", "f@example.com", ["a@example.com"])
    bad = EmailMessage("S", "Hello \ud800 world", "f@example.com", ["b@example.com"])
    with pytest.raises(exc.SendflareUnencodableText, match=r"body.*'\\ud800'"):
        EmailBackend(fail_silently=fail_silently).send_messages([ok, bad])
    assert len(api.calls) == 0


def test_a_lone_surrogate_in_the_subject_names_the_subject(sendflare_backend, api):
    with pytest.raises(exc.SendflareUnencodableText, match="subject"):
        mail.send_mail("Hi \udfff", "B", "f@example.com", ["a@example.com"])
    assert len(api.calls) == 0


@pytest.mark.parametrize(
    ("fields", "named"),
    [({"subject": "Hi\x00"}, "subject"), ({"message": "Hello\x00world"}, "body")],
)
def test_a_nul_character_is_refused_before_any_request(sendflare_backend, api, fields, named):
    # No email may hold NUL (RFC 5322), and the mail queue on PostgreSQL cannot store it: both
    # backends refuse it alike, naming the field and the position.
    arguments = {"subject": "S", "message": "B", **fields}
    with pytest.raises(exc.SendflareUnencodableText, match=rf"{named} holds '\\x00' at position"):
        mail.send_mail(from_email="f@example.com", recipient_list=["a@example.com"], **arguments)
    assert len(api.calls) == 0


def test_an_address_longer_than_smtp_allows_is_refused(sendflare_backend, api):
    # Django's validator takes up to 320 characters; SMTP carries at most 254.
    address = "a@" + ".".join(["b" * 63] * 4) + ".com"
    with pytest.raises(exc.SendflareInvalidAddress, match="261 characters long"):
        mail.send_mail("S", "B", "f@example.com", [address])
    assert len(api.calls) == 0


@pytest.mark.parametrize("field", ["DEFAULT_FROM_EMAIL", "SERVER_EMAIL"])
def test_djangos_default_senders_are_refused_naming_field_and_value(
    sendflare_backend, api, settings, field
):
    # Issue 9, failure 7 (text): the API's 100033 did not say what was refused.
    setattr(settings, field, "webmaster@localhost")
    with pytest.raises(exc.SendflareInvalidAddress) as excinfo:
        if field == "SERVER_EMAIL":
            mail.mail_admins("S", "B")
        else:
            mail.send_mail("S", "B", None, ["a@example.com"])
    text = str(excinfo.value)
    assert "from address 'webmaster@localhost'" in text and "DEFAULT_FROM_EMAIL" in text
    assert len(api.calls) == 0


def test_deeply_nested_json_is_a_bad_response(api):
    # Issue 9, failure 3: a raw RecursionError.
    api.replace(responses.POST, SEND, body="[" * 100_000 + "]" * 100_000, status=200)
    client = SendflareClient("t", retry=RetryPolicy(max_retries=0))
    with pytest.raises(exc.SendflareBadResponse, match=r"non-JSON|not the API"):
        client.send(from_email="f@example.com", to="a@example.com", subject="S", body="B")


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf"])
def test_a_meaningless_retry_after_falls_back_to_the_backoff(api, value):
    # Issue 9, failure 3: Retry-After: nan gave a 0 s retry.
    api.replace(responses.POST, SEND, status=429, headers={"Retry-After": value}, body="slow")
    api.add(responses.POST, SEND, json=envelope())
    waits: list[float] = []
    client = SendflareClient(
        "t", retry=RetryPolicy(backoff_base=0.4, backoff_cap=1.0), sleep=waits.append
    )
    client.send(from_email="f@example.com", to="a@example.com", subject="S", body="B")
    assert len(waits) == 1 and 0.2 <= waits[0] <= 0.4


class BrokenLimiter:
    """A limiter whose store fails with an exception nobody in the client expects."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def acquire(self, sleep=None):  # type: ignore[no-untyped-def]
        raise self.error

    def pause(self, seconds: float) -> None:
        raise self.error


def broken_limiter_error() -> Exception:
    return redis.exceptions.ConnectionError(
        "Error 111 connecting to redis://:pw@127.0.0.1:1. Connection refused."
    )


def test_an_unexpected_limiter_error_is_a_sendflare_error_with_statuses(sendflare_backend):
    # Issue 9, failure 3: redis.exceptions.ConnectionError escaped, even with fail_silently.
    messages = [
        EmailMessage("S", "B", "f@example.com", ["a@example.com"]),
        EmailMessage("S", "B", "f@example.com", ["b@example.com"]),
    ]
    # Real HTTP on loopback: the client takes its limiter slot once the connection is open (a
    # mock that replaces the transport, like `responses`, never reaches the limiter).
    with recording_server() as server:
        # The option on the backend itself: on Django 6.1 sendflare_backend() sets MAILERS,
        # which a directly built EmailBackend does not read.
        backend = EmailBackend(api_url=server.url)
        with backend:
            backend.client.rate_limiter = BrokenLimiter(broken_limiter_error())
            with pytest.raises(exc.SendflareUnexpectedError) as excinfo:
                backend.send_messages(messages)
    assert server.bodies == []  # the limiter is asked before any request is written
    error = excinfo.value
    assert error.message_statuses == [m.sendflare_status for m in messages]
    assert all(not m.sendflare_status.sent for m in messages)
    assert "ConnectionError" in str(error) and ":pw@" not in str(error)
    assert error.__cause__ is None and error.__context__ is None


def test_fail_silently_covers_an_unexpected_limiter_error(sendflare_backend):
    message = EmailMessage("S", "B", "f@example.com", ["a@example.com"])
    with recording_server() as server:
        backend = EmailBackend(fail_silently=True, api_url=server.url)
        with backend:
            backend.client.rate_limiter = BrokenLimiter(broken_limiter_error())
            assert backend.send_messages([message]) == 0
    assert server.bodies == []
    (recipient,) = message.sendflare_status.recipients.values()
    assert isinstance(recipient.error, exc.SendflareUnexpectedError)


def test_an_unreachable_redis_limiter_never_raises_raw(sendflare_backend, api, settings):
    # Whatever the limiter does on an outage (fall back, or fail), the caller sees no redis
    # exception: either the message is sent or a SendflareError with statuses is raised.
    # Nothing listens on port 1: no Redis server is needed.
    sendflare_backend(
        # Its own token: a limiter cached for another test's options is not reused.
        api_token="redis-outage-token",
        rate_limit=50,
        rate_limiter="django_sendflare.ratelimit.RedisRateLimiter",
        rate_limiter_options={"url": "redis://127.0.0.1:1/0"},
    )
    message = EmailMessage("S", "B", "f@example.com", ["a@example.com"])
    assert EmailBackend(fail_silently=True).send_messages([message]) in (0, 1)
    try:
        mail.send_mail("S", "B", "f@example.com", ["b@example.com"])
    except exc.SendflareError as error:
        assert error.message_statuses is not None


def test_an_api_error_body_is_still_parsed_after_a_bad_one(api):
    api.replace(responses.POST, SEND, body=json.dumps({"code": "x"}), status=200)
    client = SendflareClient("t", retry=RetryPolicy(max_retries=0))
    with pytest.raises(exc.SendflareBadResponse, match="not the API's envelope"):
        client.send(from_email="f@example.com", to="a@example.com", subject="S", body="B")


def test_the_client_refuses_unencodable_text_before_any_request(api):
    # The contact calls go through no payload validation: the client itself refuses.
    client = SendflareClient("t", app_id="app")
    with pytest.raises(exc.SendflareUnencodableText, match=r"POST /v1/contact.*'\\udc80'"):
        client.save_contact(email="a@example.com", data={"firstName": "B\udc80b"})
    assert len(api.calls) == 0
