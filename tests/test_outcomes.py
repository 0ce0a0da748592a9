"""The one mapping from a request's answer or exception to what becomes of the work."""

from __future__ import annotations

import pytest

from django_sendflare import exceptions as exc
from django_sendflare.outcomes import Outcome, attempt, stops_account


def test_an_answer_is_sent():
    result = attempt(lambda: "answer", doing="sending")
    assert (result.outcome, result.answer, result.error) == (Outcome.SENT, "answer", None)
    assert not result.stops_account


def test_our_error_is_kept_and_mapped():
    refused = exc.SendflareUnknownSender("who?")

    def call() -> None:
        raise refused

    result = attempt(call, doing="sending")
    assert result.error is refused and result.outcome is Outcome.FAILED


def test_any_other_exception_becomes_an_unexpected_error_without_secrets():
    def call() -> None:
        raise ConnectionError("redis://:hunter2@cache:6379 refused tok-123")

    result = attempt(call, doing="sending", secrets=("tok-123",))
    assert isinstance(result.error, exc.SendflareUnexpectedError)
    assert result.outcome is Outcome.UNKNOWN  # the request may have left
    text = str(result.error)
    assert "ConnectionError while sending" in text
    assert "hunter2" not in text and "tok-123" not in text
    assert result.error.__cause__ is None and result.error.__context__ is None
    assert result.stops_account


@pytest.mark.parametrize(
    ("error", "stops"),
    [
        (exc.SendflareConnectionError("down"), True),  # unreachable: every request would fail
        (exc.SendflareRateLimited("slow down"), False),  # the limiter has slowed down already
        (exc.SendflareAuthenticationError("token"), True),
        (exc.SendflareUnknownSender("sender"), False),
        (exc.SendflareAmbiguousError("lost"), False),
    ],
)
def test_which_errors_stop_the_account(error, stops):
    assert stops_account(error) is stops
