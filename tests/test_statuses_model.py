"""A Hypothesis state machine against the sandbox: the statuses never lie, across batches.

One open backend sends batch after batch while the account changes state, a sending domain is
refused or allowed again, and faults are queued (429, 500, a reset before processing, a response
lost after processing). Invariants, after every step:

* a recipient whose status is "sent" is in the sandbox's inbox, exactly once, under its
  requestId;
* a recipient that failed with an error that says the request was not processed
  (``may_have_been_processed`` False) is not in the inbox;
* one that failed with ``may_have_been_processed`` True is in the inbox at most once;
* nothing else is in the inbox, and send_messages raised nothing but SendflareAPIError.
"""

from __future__ import annotations

import itertools

import pytest
from django.core.mail import EmailMessage
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from django_sendflare import exceptions as exc
from django_sendflare.backends import EmailBackend

SENDERS = ("a@good.example", "b@good.example", "c@other.example")


@pytest.fixture
def sandbox(sendflare_sandbox_settings, sendflare_backend, settings):
    settings.SENDFLARE = {
        **settings.SENDFLARE,
        "RATE_LIMIT": 0,
        "MAX_CONCURRENT_REQUESTS": 3,
        "MAX_RETRIES": 1,
        "RETRY_MAX_TIME": 5,
    }
    return sendflare_sandbox_settings


def test_statuses_never_lie(sandbox):
    numbers = itertools.count()

    class Statuses(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            sandbox.reset()
            self.account = "active"
            self.refused_domains: list[str] = []
            self.backend = EmailBackend(fail_silently=False)
            self.backend.open()
            #: (body, recipient) -> the recipient's status object, for every send so far.
            self.recipients: dict[tuple[str, str], object] = {}

        def teardown(self) -> None:
            self.backend.close()

        def _faults(self) -> None:
            sandbox.set_faults(
                queue=sandbox.sandbox.faults()["queue"],  # the queued faults stay queued
                account=self.account,
                invalid_sending_domains=self.refused_domains,
            )

        @rule(state=st.sampled_from(["active", "subscription_expired", "not_activated"]))
        def set_account(self, state: str) -> None:
            self.account = state
            self._faults()

        @rule(refuse=st.booleans())
        def refuse_other_domain(self, refuse: bool) -> None:
            self.refused_domains = ["other.example"] if refuse else []
            self._faults()

        @rule(kinds=st.lists(st.sampled_from(["429", "500", "reset", "lost_response"]), max_size=3))
        def queue_faults(self, kinds: list[str]) -> None:
            sandbox.queue_faults(*kinds)

        @rule(
            batch=st.lists(
                st.tuples(st.sampled_from(SENDERS), st.integers(1, 2)), min_size=1, max_size=4
            )
        )
        def send(self, batch: list[tuple[str, int]]) -> None:
            messages = []
            for sender, count in batch:
                body = f"message {next(numbers)}"
                to = [f"r{i}@example.com" for i in range(count)]
                messages.append(EmailMessage("Hi", body, sender, to))
            try:
                self.backend.send_messages(messages)
            except exc.SendflareAPIError as error:
                assert error.message_statuses == [m.sendflare_status for m in messages]
            for message in messages:
                for email, recipient in message.sendflare_status.recipients.items():
                    self.recipients[(message.body, email)] = recipient

        @invariant()
        def the_inbox_matches_the_statuses(self) -> None:
            print(
                "INV",
                len(self.recipients),
                len(sandbox.messages()),
                [r["fault"] for r in sandbox.requests() if r["fault"]],
            )
            inbox: dict[tuple[str, str], list[str]] = {}
            for received in sandbox.messages():
                inbox.setdefault((received["body"], received["to"]), []).append(
                    received["requestId"]
                )
            assert set(inbox) <= set(self.recipients)
            for key, recipient in self.recipients.items():
                arrived = inbox.get(key, [])
                assert len(arrived) <= 1, f"{key} delivered twice"
                if recipient.status == "sent":
                    assert arrived == [recipient.request_id]
                elif not recipient.error.may_have_been_processed:
                    assert arrived == [], f"{key} failed with {recipient.error!r} yet arrived"

    run_state_machine_as_test(
        Statuses,
        settings=hypothesis_settings(max_examples=15, stateful_step_count=8, deadline=None),
    )
