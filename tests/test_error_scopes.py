"""The error-scope table, code by code, end to end against the sandbox.

Invariant: a failed request condemns exactly what its code's scope says. "account": the rest of
the batch gets no request; "sender": only the batch's other messages from that sender get no
request; "message": only that message fails; "rate": retried, then sent.
"""

from __future__ import annotations

import pytest
from django.core.mail import EmailMessage

from django_sendflare import exceptions as exc
from django_sendflare.backends import EmailBackend

GOOD = "good@example.com"
BAD = "bad@refused.example"


@pytest.fixture
def sandbox(sendflare_sandbox_settings, sendflare_backend, settings):
    # One request at a time: "later" in the batch then means later in time.
    settings.SENDFLARE = {
        **settings.SENDFLARE,
        "RATE_LIMIT": 0,
        "MAX_CONCURRENT_REQUESTS": 1,
        "MAX_RETRIES": 2,
    }
    return sendflare_sandbox_settings


def message(sender: str, to: str, subject: str = "Hi") -> EmailMessage:
    return EmailMessage(subject, "Hello", sender, [to])


def outcome(messages: list[EmailMessage]) -> list[tuple[str, str | None]]:
    """(status, error class) of each message's one recipient."""
    result = []
    for m in messages:
        (recipient,) = m.sendflare_status.recipients.values()
        error = type(recipient.error).__name__ if recipient.error else None
        result.append((recipient.status, error))
    return result


def send_requests(sandbox) -> list[tuple[int | None, int | None]]:
    return [(r["status"], r["code"]) for r in sandbox.requests() if r["path"] == "/v1/send"]


@pytest.mark.sendflare_sandbox(allowed_senders=[GOOD])
def test_100048_fails_only_the_messages_of_that_sender(sandbox):
    # Issue 9, failure 1: a 403 with 100048 used to stop the whole batch as an auth error.
    batch = [
        message(BAD, "a@example.com"),
        message(GOOD, "b@example.com"),
        message(BAD, "c@example.com"),
        message(GOOD, "d@example.com"),
    ]
    with pytest.raises(exc.SendflareUnknownSender) as excinfo:
        EmailBackend().send_messages(batch)
    assert excinfo.value.scope == "sender"
    assert excinfo.value.message_statuses == [m.sendflare_status for m in batch]
    assert outcome(batch) == [
        ("failed", "SendflareUnknownSender"),
        ("sent", None),
        ("failed", "SendflareUnknownSender"),
        ("sent", None),
    ]
    # The refused sender's second message got no request; the other sender's both did.
    assert send_requests(sandbox) == [(403, 100048), (200, 0), (200, 0)]
    assert sorted(m["to"] for m in sandbox.messages()) == ["b@example.com", "d@example.com"]


def test_100030_fails_only_the_messages_of_that_sending_domain(sandbox):
    sandbox.set_faults(invalid_sending_domains=["refused.example"])
    batch = [
        message(BAD, "a@example.com"),
        message("Other <other@Refused.Example>", "b@example.com"),  # same domain
        message(GOOD, "c@x.io"),
    ]
    assert EmailBackend(fail_silently=True).send_messages(batch) == 1
    assert outcome(batch) == [
        ("failed", "SendflareInvalidSendingDomain"),
        ("failed", "SendflareInvalidSendingDomain"),
        ("sent", None),
    ]
    assert send_requests(sandbox) == [(403, 100030), (200, 0)]


def test_100033_fails_only_that_message(sandbox):
    # The sandbox refuses an empty subject (the library lets it through: the API decides).
    batch = [message(GOOD, "a@example.com", subject=""), message(GOOD, "b@example.com")]
    with pytest.raises(exc.SendflareBadParameters) as excinfo:
        EmailBackend().send_messages(batch)
    error = excinfo.value
    assert error.scope == "message"
    # The text names the request's fields and values.
    assert f"from {GOOD!r}" in str(error) and "to 'a@example.com'" in str(error)
    assert outcome(batch) == [("failed", "SendflareBadParameters"), ("sent", None)]
    assert send_requests(sandbox) == [(400, 100033), (200, 0)]


@pytest.mark.sendflare_sandbox(max_message_size=2000)
def test_100023_fails_only_that_message(sandbox):
    big = EmailMessage("Big", "x" * 5000, GOOD, ["a@example.com"])
    batch = [big, message(GOOD, "b@example.com")]
    assert EmailBackend(fail_silently=True).send_messages(batch) == 1
    assert outcome(batch) == [("failed", "SendflareEmailTooLarge"), ("sent", None)]
    assert send_requests(sandbox) == [(413, 100023), (200, 0)]


def test_100025_and_429_are_retried(sandbox):
    sandbox.queue_faults("429")
    batch = [message(GOOD, "a@example.com"), message(GOOD, "b@example.com")]
    assert EmailBackend().send_messages(batch) == 2
    assert send_requests(sandbox) == [(429, 100025), (200, 0), (200, 0)]


@pytest.mark.parametrize(
    ("state", "code", "error_class"),
    [
        ("invalid_signature", 100029, exc.SendflareInvalidSignature),
        ("daily_limit_reached", 100031, exc.SendflareDailyLimitReached),
        ("subscription_expired", 100047, exc.SendflareSubscriptionExpired),
        ("not_activated", 100049, exc.SendflareAccountNotActivated),
    ],
)
def test_account_codes_stop_the_batch(sandbox, state, code, error_class):
    sandbox.set_faults(account=state)
    batch = [message(GOOD, "a@example.com"), message("other@example.org", "b@example.com")]
    with pytest.raises(error_class) as excinfo:
        EmailBackend().send_messages(batch)
    assert excinfo.value.scope == "account" and excinfo.value.code == code
    assert outcome(batch) == [("failed", error_class.__name__)] * 2
    assert len(send_requests(sandbox)) == 1  # the second message got no request
    assert sandbox.messages() == []


@pytest.mark.sendflare_sandbox(daily_quota=1)
def test_the_daily_quota_stops_the_batch_once_reached(sandbox):
    batch = [message(GOOD, f"r{i}@example.com") for i in range(4)]
    assert EmailBackend(fail_silently=True).send_messages(batch) == 1
    assert [status for status, _ in outcome(batch)] == ["sent", "failed", "failed", "failed"]
    assert send_requests(sandbox) == [(200, 0), (403, 100031)]


def test_every_documented_code_has_a_class_and_a_scope():
    documented = {100023, 100025, 100029, 100030, 100031, 100033, 100047, 100048, 100049}
    assert set(exc.SERVICE_ERRORS) == documented
    scopes = {code: cls.scope for code, cls in exc.SERVICE_ERRORS.items()}
    assert scopes == {
        100023: "message",
        100025: "rate",
        100029: "account",
        100030: "sender",
        100031: "account",
        100033: "message",
        100047: "account",
        100048: "sender",
        100049: "account",
    }
    # The class names say what happened: a refused sender is not an authentication error.
    assert not issubclass(exc.SendflareUnknownSender, exc.SendflareAuthenticationError)


def test_a_configuration_error_is_not_a_sendflare_error():
    from django.core.exceptions import ImproperlyConfigured

    assert issubclass(exc.SendflareConfigurationError, ImproperlyConfigured)
    assert not issubclass(exc.SendflareConfigurationError, exc.SendflareError)


def test_the_documented_table_is_the_code_table():
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parent.parent / "docs" / "reference" / "errors.rst"
    rows = re.findall(
        r"^   \* - (1000\d\d)\n     - ``(\w+)``\n     - (\w+)$", page.read_text(), re.MULTILINE
    )
    documented = {int(code): (name, scope) for code, name, scope in rows}
    assert documented == {
        code: (cls.__name__, cls.scope) for code, cls in exc.SERVICE_ERRORS.items()
    }


def test_errors_pickle_with_their_fields_and_request():
    import pickle

    error = exc.SendflareUnknownSender(
        "The sender's email address does not exist",
        code=100048,
        status_code=403,
        request_id="r1",
        fields={"from": BAD, "to": "a@example.com"},
        request="POST /v1/send",
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is exc.SendflareUnknownSender
    assert str(copy) == str(error)
    assert (copy.fields, copy.request, copy.scope) == (error.fields, "POST /v1/send", "sender")
