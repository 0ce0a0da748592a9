"""Hypothesis hunts, against the sandbox, for a batch that breaks the scope invariant.

Invariant, for any batch, any concurrency and any account state:

* a message from an accepted sender with valid fields is delivered exactly once, unless the
  account is refused (then nothing is delivered and every message fails with that error);
* a message from a refused sender (unknown address, invalid domain) is never delivered, fails
  with the sender's error (or with 100033 when its own fields were refused first);
* a message whose fields the API refuses fails alone, with 100033;
* send_messages raises nothing but a SendflareAPIError carrying the batch's statuses;
* one request at a time: after a sender is refused, that sender gets no further request;
  after the account is refused, nobody does.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.core.mail import EmailMessage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_sendflare import exceptions as exc
from django_sendflare.backends import EmailBackend

GOOD = ("a@good.example", "b@good.example")
UNKNOWN = "x@unknown.example"  # not an allowed sender: 100048
BAD_DOMAIN = "y@bad-domain.example"  # allowed, but its domain is refused: 100030
SENDER_ERRORS = {UNKNOWN: exc.SendflareUnknownSender, BAD_DOMAIN: exc.SendflareInvalidSendingDomain}


@dataclass(frozen=True)
class Spec:
    sender: str
    valid: bool  # False: an empty subject, which the sandbox refuses with 100033
    recipients: int


specs = st.builds(
    Spec,
    sender=st.sampled_from([*GOOD, UNKNOWN, BAD_DOMAIN]),
    valid=st.booleans(),
    recipients=st.integers(1, 2),
)


@pytest.fixture
def sandbox(sendflare_sandbox_settings, sendflare_backend, settings):
    settings.SENDFLARE = {**settings.SENDFLARE, "RATE_LIMIT": 0, "MAX_RETRIES": 0}
    return sendflare_sandbox_settings


def build(batch: list[Spec]) -> list[EmailMessage]:
    return [
        EmailMessage(
            "Hi" if spec.valid else "",
            f"message {i}",
            spec.sender,
            [f"r{i}-{j}@example.com" for j in range(spec.recipients)],
        )
        for i, spec in enumerate(batch)
    ]


def expected_requests(batch: list[Spec]) -> int:
    """How many requests one-at-a-time sending makes, by the scope rules."""
    refused: set[str] = set()
    count = 0
    for spec in batch:
        for _ in range(spec.recipients):
            if spec.sender in refused:
                continue
            count += 1
            if spec.valid and spec.sender in SENDER_ERRORS:
                refused.add(spec.sender)
    return count


@pytest.mark.sendflare_sandbox(allowed_senders=[*GOOD, BAD_DOMAIN])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    batch=st.lists(specs, min_size=1, max_size=6),
    concurrency=st.integers(1, 4),
    account=st.sampled_from(["active", "active", "active", "subscription_expired"]),
)
def test_a_failure_condemns_exactly_its_scope(sandbox, settings, batch, concurrency, account):
    sandbox.reset()
    sandbox.set_faults(account=account, invalid_sending_domains=["bad-domain.example"])
    settings.SENDFLARE = {**settings.SENDFLARE, "MAX_CONCURRENT_REQUESTS": concurrency}
    messages = build(batch)
    try:
        sent = EmailBackend().send_messages(messages)
    except exc.SendflareAPIError as error:
        assert error.message_statuses == [m.sendflare_status for m in messages]
        sent = None

    inbox = sandbox.messages()
    delivered = [m["body"] for m in inbox]
    assert len({(m["body"], m["to"]) for m in inbox}) == len(inbox)  # nothing delivered twice
    requests = [r for r in sandbox.requests() if r["path"] == "/v1/send"]
    for spec, message in zip(batch, messages, strict=True):
        recipients = list(message.sendflare_status.recipients.values())
        errors = {type(r.error) for r in recipients if r.error is not None}
        if account != "active":
            assert errors == {exc.SendflareSubscriptionExpired}
        elif spec.sender in SENDER_ERRORS:
            allowed = {SENDER_ERRORS[spec.sender]}
            if not spec.valid:
                allowed.add(exc.SendflareBadParameters)
            assert errors and errors <= allowed
        elif not spec.valid:
            assert errors == {exc.SendflareBadParameters}
        else:
            assert message.sendflare_status.sent
            assert delivered.count(message.body) == spec.recipients
            continue
        assert all(r.status == "failed" for r in recipients)
        assert message.body not in delivered
    if sent is not None:
        assert sent == sum(1 for m in messages if m.sendflare_status.sent)
    if account != "active":
        assert 1 <= len(requests) <= concurrency
    elif concurrency == 1:
        assert len(requests) == expected_requests(batch)
