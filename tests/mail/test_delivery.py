"""Delivering one queued message's due recipients against the sandbox: every failure class."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.mail import EmailMessage
from django.utils import timezone

from django_sendflare import exceptions as exc
from django_sendflare.client import SendflareClient, get_client
from django_sendflare.conf import get_settings
from django_sendflare.mail.delivery import MessageDelivery
from django_sendflare.mail.drain import mail_queue
from django_sendflare.models import QueuedMessage, QueuedRecipient
from django_sendflare.outcomes import Outcome, outcome_of
from django_sendflare.signals import post_send

pytestmark = pytest.mark.django_db(transaction=True)

FIVE = [f"r{i}@example.com" for i in range(5)]


def deliver(message: QueuedMessage, **kwargs):
    """One delivery run of a message (claimed by the test: no other worker runs)."""
    message.refresh_from_db()
    conf = get_settings(message.mailer)
    return MessageDelivery(message, client=get_client(conf), queue=mail_queue(), **kwargs).run()


def states(message: QueuedMessage) -> dict[str, str]:
    return {r.email: r.state for r in QueuedRecipient.objects.filter(message=message)}


def queue(to=FIVE, subject="S") -> QueuedMessage:
    mail.send_mail(subject, "Body", "f@example.com", list(to))
    return QueuedMessage.objects.latest("id")


def sends(sandbox):
    return [r for r in sandbox.requests() if r["path"] == "/v1/send"]


def test_a_queued_message_is_sent_once_with_its_request_ids(sandbox):
    message = queue()
    assert sandbox.messages() == []  # nothing is sent by queuing
    result = deliver(message)
    assert result.sent == 5
    assert sorted(m["to"] for m in sandbox.messages()) == FIVE
    rows = QueuedRecipient.objects.filter(message=message)
    assert {r.request_id for r in rows} == {m["requestId"] for m in sandbox.messages()}
    assert all(r.sent_at and r.attempts == 1 for r in rows)
    message.refresh_from_db()
    assert message.state == "done"
    # Delivering again sends nothing more.
    assert deliver(message).requests == 0
    assert len(sandbox.messages()) == 5


def test_five_recipients_two_fail_transiently_only_those_two_are_resent(sandbox, settings):
    settings.SENDFLARE = {**settings.SENDFLARE, "MAX_RETRIES": 0}
    message = queue()
    sandbox.queue_faults("ok", "429", "ok", "429", "ok")
    first = deliver(message)
    assert (first.sent, first.retry) == (3, 2)
    assert states(message) == {
        "r0@example.com": "sent",
        "r1@example.com": "queued",
        "r2@example.com": "sent",
        "r3@example.com": "queued",
        "r4@example.com": "sent",
    }
    message.refresh_from_db()
    assert message.attempts == 1 and message.state == "pending"
    assert message.next_attempt_at > timezone.now()  # after a backoff
    second = deliver(message)
    assert second.sent == 2
    assert sorted(m["to"] for m in sandbox.messages()) == FIVE  # each exactly once
    assert len(sends(sandbox)) == 7


def test_a_lost_answer_is_unknown_and_never_resent(sandbox):
    message = queue(["a@example.com", "b@example.com"])
    sandbox.queue_faults("lost_response", "ok")
    result = deliver(message)
    assert (result.unknown, result.sent) == (1, 1)
    row = QueuedRecipient.objects.get(message=message, email="a@example.com")
    assert row.state == "unknown" and "may have been processed" in row.error
    assert len(sandbox.messages()) == 2  # the sandbox did send it
    deliver(message)
    assert len(sends(sandbox)) == 2  # no second request for a@


def test_a_read_timeout_is_unknown(sandbox):
    message = queue(["a@example.com"])
    sandbox.set_faults(queue=["latency"], slow=2.0)  # read timeout is 1 s
    assert deliver(message).unknown == 1
    assert states(message) == {"a@example.com": "unknown"}


def test_an_api_that_is_down_keeps_the_mail_queued_and_stops_the_run(sandbox, settings):
    message = queue(["a@example.com", "b@example.com", "c@example.com"])
    settings.SENDFLARE = {**settings.SENDFLARE, "API_URL": "http://127.0.0.1:9"}
    result = deliver(message)
    assert result.retry == 1 and isinstance(result.stopped_by, exc.SendflareConnectionError)
    rows = {r.email: r for r in QueuedRecipient.objects.filter(message=message)}
    assert {r.state for r in rows.values()} == {"queued"}
    assert "connect" in rows["a@example.com"].error.lower()
    # The other two were not spent on an API that is down.
    assert [rows[a].attempts for a in sorted(rows)] == [1, 0, 0]
    message.refresh_from_db()
    assert message.attempts == 1  # a transient failure counts, with its backoff
    settings.SENDFLARE = {**settings.SENDFLARE, "API_URL": sandbox.url}
    assert deliver(message).sent == 3
    assert len(sandbox.messages()) == 3


def test_transient_failures_end_as_failed_after_max_attempts(sandbox, settings):
    settings.SENDFLARE = {**settings.SENDFLARE, "MAX_RETRIES": 0, "MAIL_MAX_ATTEMPTS": 2}
    message = queue(["a@example.com"])
    sandbox.queue_faults("429", "429")
    assert deliver(message).retry == 1
    assert deliver(message).failed == 1
    row = QueuedRecipient.objects.get(message=message)
    assert (row.state, row.attempts) == ("failed", 2)
    message.refresh_from_db()
    assert message.state == "failed"  # parked by the queue


@pytest.mark.parametrize(
    "errors_as_http_200",
    [
        pytest.param(
            False, marks=pytest.mark.sendflare_sandbox(allowed_senders=("ok@example.com",))
        ),
        pytest.param(
            True,
            marks=pytest.mark.sendflare_sandbox(
                allowed_senders=("ok@example.com",), errors_as_http_200=True
            ),
        ),
    ],
)
def test_a_refused_sender_is_failed_with_code_message_and_request_id(sandbox, errors_as_http_200):
    message = queue(["a@example.com", "b@example.com"])
    result = deliver(message)
    assert result.failed == 2
    row = QueuedRecipient.objects.filter(message=message).first()
    assert row.state == "failed"
    assert row.error_code == 100048 and row.error and row.request_id
    assert sandbox.messages() == []


def test_an_account_error_holds_the_queue_instead_of_failing_the_mail(sandbox, settings):
    message = queue(["a@example.com", "b@example.com"])
    settings.SENDFLARE = {**settings.SENDFLARE, "API_TOKEN": "revoked-token"}
    result = deliver(message)
    assert isinstance(result.stopped_by, exc.SendflareAuthenticationError)
    assert states(message) == {"a@example.com": "queued", "b@example.com": "queued"}
    assert len(sends(sandbox)) == 1  # the second recipient was not spent on it
    settings.SENDFLARE = {**settings.SENDFLARE, "API_TOKEN": sandbox.token}
    assert deliver(message).sent == 2


def test_a_request_left_sending_by_a_dead_worker_becomes_unknown(sandbox):
    message = queue(["a@example.com", "b@example.com"])
    QueuedRecipient.objects.filter(email="a@example.com").update(state="sending", attempts=1)
    result = deliver(message)
    assert (result.unknown, result.sent) == (1, 1)
    assert states(message) == {"a@example.com": "unknown", "b@example.com": "sent"}
    assert [m["to"] for m in sandbox.messages()] == ["b@example.com"]


def test_post_send_fires_with_the_same_status_objects_as_the_backend(sandbox):
    seen = []

    def record(sender, message, status, **kwargs):
        seen.append((message, status))

    message = queue(["a@example.com", "b@example.com"], subject="Hello")
    post_send.connect(record)
    try:
        sandbox.queue_faults("ok", "lost_response")
        deliver(message)
    finally:
        post_send.disconnect(record)
    [(email, status)] = seen
    assert isinstance(email, EmailMessage) and email.subject == "Hello"
    assert email.sendflare_status is status
    assert status.recipients["a@example.com"].status == "sent"
    assert status.recipients["a@example.com"].request_id
    unknown = status.recipients["b@example.com"]
    assert unknown.status == "unknown"
    assert isinstance(unknown.error, exc.SendflareAmbiguousError)
    assert status.queued_id == message.pk and not status.sent


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (exc.SendflareConnectionError("down"), Outcome.RETRY),
        (exc.SendflareRateLimited("slow down"), Outcome.RETRY),
        (exc.SendflareAmbiguousError("lost"), Outcome.UNKNOWN),
        (exc.SendflareServerError("5xx"), Outcome.UNKNOWN),
        (exc.SendflareUnknownSender("sender"), Outcome.FAILED),
        (exc.SendflareEmailTooLarge("big"), Outcome.FAILED),
        (exc.SendflareAuthenticationError("token"), Outcome.HELD),
        (exc.SendflareDailyLimitReached("quota"), Outcome.HELD),
        (exc.SendflareUnexpectedError("limiter down"), Outcome.UNKNOWN),
    ],
)
def test_classification_of_errors(error, expected):
    assert outcome_of(error) is expected


def test_an_unexpected_error_is_unknown_stops_the_run_and_hides_credentials(sandbox, caplog):
    class BrokenLimiter:
        def acquire(self, sleep):
            pass

        def sent(self):
            # Once the request is written: it may have reached the API (an error before that
            # leaves the recipient queued, tests/test_not_sent.py).
            raise RuntimeError("redis://:hunter2@cache:6379 is down")

    message = queue(["a@example.com", "b@example.com"])
    client = SendflareClient(sandbox.token, api_url=sandbox.url, rate_limiter=BrokenLimiter())
    message.refresh_from_db()
    result = MessageDelivery(message, client=client, queue=mail_queue()).run()
    assert isinstance(result.stopped_by, exc.SendflareUnexpectedError)
    assert states(message) == {"a@example.com": "unknown", "b@example.com": "queued"}
    row = QueuedRecipient.objects.get(email="a@example.com")
    assert "RuntimeError" in row.error and "hunter2" not in row.error
    assert "hunter2" not in caplog.text


def test_a_post_send_receiver_that_raises_does_not_stop_delivery(sandbox, caplog):
    def broken(**kwargs):
        raise ValueError("receiver bug")

    first = queue(["a@example.com"], subject="one")
    second = queue(["b@example.com"], subject="two")
    post_send.connect(broken)
    try:
        assert deliver(first).sent == 1
        assert deliver(second).sent == 1
    finally:
        post_send.disconnect(broken)
    assert "post_send receiver" in caplog.text and "ValueError" in caplog.text
    assert states(first) == {"a@example.com": "sent"}
