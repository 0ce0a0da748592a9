"""A Hypothesis stateful model of the mail queue against the sandbox.

Rules: queue messages (committed, or rolled back), inject faults into the next requests, run
the worker, kill a worker mid-request (a recipient left ``sending`` under a lease that ran
out), Resend failed recipients, Discard.

Invariants, after every step:

1. Nothing rolled back is ever sent.
2. No recipient of a message is sent twice (the admin's Resend of *unknown* is not a rule: it
   is the one documented way to risk it).
3. ``sent`` <=> the sandbox accepted it exactly once, with the stored requestId.
4. ``queued``, ``failed`` and ``discarded`` were never accepted; ``unknown`` at most once.
5. Liveness, at the end: with the API healthy and every backoff over, one worker run leaves
   nothing ``queued`` or ``sending``.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os

import pytest
import requests
from django.core import mail
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from django_sendflare.mail import actions
from django_sendflare.models import QueuedMessage, QueuedRecipient
from django_sendflare.sandbox.engine import SandboxConfig
from django_sendflare.sandbox.server import start_in_thread
from django_sendflare.worker import Worker

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "model-token"
ADDRESSES = [f"p{i}@example.com" for i in range(4)]
FAULTS = ["ok", "429", "503", "reset", "lost_response", "latency"]


class MailQueueModel(RuleBasedStateMachine):
    sandbox = None  # set by the test, shared by the examples (reset between them)
    counter = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        self.sandbox.sandbox.reset()
        QueuedMessage.objects.all().delete()
        self.rolled_back: set[str] = set()
        self.committed: set[str] = set()

    # Rules.

    @rule(to=st.lists(st.sampled_from(ADDRESSES), min_size=1, max_size=3), commit=st.booleans())
    def queue(self, to: list[str], commit: bool) -> None:
        subject = f"m{next(self.counter)}"
        try:
            with transaction.atomic():
                mail.send_mail(subject, "B", "f@example.com", to)
                if not commit:
                    raise _Rollback
        except _Rollback:
            self.rolled_back.add(subject)
        else:
            self.committed.add(subject)

    @rule(faults=st.lists(st.sampled_from(FAULTS), min_size=1, max_size=4))
    def faults(self, faults: list[str]) -> None:
        self.sandbox.queue_faults(*faults)

    @rule(threads=st.sampled_from([1, 2]))
    def run_worker(self, threads: int) -> None:
        Worker(contacts=False, threads=threads, purge=False).run_once()

    @rule()
    def backoffs_pass(self) -> None:
        QueuedMessage.objects.filter(state="pending").update(next_attempt_at=timezone.now())

    @precondition(lambda self: QueuedRecipient.objects.filter(state="queued").exists())
    @rule(data=st.data())
    def worker_killed_mid_request(self, data: st.DataObject) -> None:
        queued = list(QueuedRecipient.objects.filter(state="queued").order_by("pk"))
        victim = data.draw(st.sampled_from(queued))
        if data.draw(st.booleans()):
            # The request went out before the worker died (a queued fault may refuse or drop it).
            with contextlib.suppress(requests.RequestException):
                requests.post(
                    f"{self.sandbox.url}/v1/send",
                    json={
                        "from": "f@example.com",
                        "to": victim.email,
                        "subject": victim.message.subject,
                        "body": "B",
                    },
                    headers={"Authorization": f"Bearer {TOKEN}"},
                    timeout=5,
                )
        QueuedRecipient.objects.filter(pk=victim.pk).update(state="sending")
        QueuedMessage.objects.filter(pk=victim.message_id).update(lease_until=timezone.now())

    @precondition(lambda self: QueuedRecipient.objects.filter(state="failed").exists())
    @rule()
    def resend_failed(self) -> None:
        ids = set(
            QueuedRecipient.objects.filter(state="failed").values_list("message_id", flat=True)
        )
        actions.resend(ids, include_unknown=False)

    @precondition(lambda self: QueuedMessage.objects.exists())
    @rule(data=st.data())
    def discard(self, data: st.DataObject) -> None:
        ids = list(QueuedMessage.objects.values_list("pk", flat=True))
        actions.discard([data.draw(st.sampled_from(ids))])

    # Invariants.

    def accepted(self) -> collections.Counter[tuple[str, str]]:
        return collections.Counter((m["subject"], m["to"]) for m in self.sandbox.messages())

    @invariant()
    def nothing_rolled_back_is_sent_and_nothing_twice(self) -> None:
        accepted = self.accepted()
        assert not {subject for subject, _ in accepted} & self.rolled_back
        assert all(count == 1 for count in accepted.values()), accepted

    @invariant()
    def states_agree_with_the_api(self) -> None:
        accepted = self.accepted()
        ids = {m["requestId"]: (m["subject"], m["to"]) for m in self.sandbox.messages()}
        for row in QueuedRecipient.objects.select_related("message"):
            key = (row.message.subject, row.email)
            if row.state == "sent":
                assert accepted[key] == 1 and ids.get(row.request_id) == key, key
            elif row.state in ("queued", "failed", "discarded"):
                assert accepted[key] == 0, (key, row.state)
            else:
                assert accepted[key] <= 1, (key, row.state)

    def teardown(self) -> None:
        self.sandbox.clear_faults()
        QueuedMessage.objects.filter(state="pending").update(next_attempt_at=timezone.now())
        Worker(contacts=False, purge=False).run_once()
        left = QueuedRecipient.objects.filter(state__in=["queued", "sending"])
        assert not left.exists(), list(left.values_list("email", "state"))
        self.states_agree_with_the_api()


class _Rollback(Exception):
    pass


def test_the_mail_queue_model(model_sandbox):
    MailQueueModel.sandbox = model_sandbox
    run_state_machine_as_test(
        MailQueueModel,
        settings=hypothesis_settings(
            max_examples=int(os.environ.get("SENDFLARE_MODEL_EXAMPLES", "15")),
            stateful_step_count=12,
            deadline=None,
            # The explain phase traces every line: far too slow around a live server.
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


@pytest.fixture
def model_sandbox(settings, queued_backend):
    """One sandbox for every example (each example resets it), and SENDFLARE pointed at it."""
    from django_sendflare.sandbox.pytest_plugin import SandboxHandle

    config = SandboxConfig(token=TOKEN, rate_limit=0)
    running = start_in_thread(config)
    handle = SandboxHandle(running.url, TOKEN, running.sandbox)
    settings.SENDFLARE = {
        **settings.SENDFLARE,
        "API_URL": running.url,
        "API_TOKEN": TOKEN,
        "RATE_LIMIT": 0,
        "MAX_RETRIES": 0,
        "TIMEOUT": (1.0, 0.3),
    }
    try:
        yield handle
    finally:
        running.stop()
