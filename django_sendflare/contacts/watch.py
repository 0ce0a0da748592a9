"""``sync_contacts --watch``: deliver the outbox, wait, again, until told to stop.

One pass is :func:`~django_sendflare.contacts.outbox.deliver_pending`; the loop around it (the
waits, SIGTERM, database errors, the longer wait after an account error) is
:class:`~django_sendflare.loop.WorkerLoop`, the one ``sendflare_worker`` runs too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..client import SendflareClient
from ..loop import Pass, WorkerLoop
from .outbox import DeliveryReport, Outcome, deliver_pending

#: Seconds between two looks at the outbox when it had nothing to deliver.
DEFAULT_INTERVAL = 5.0


def run_watch(
    stop: threading.Event,
    *,
    interval: float = DEFAULT_INTERVAL,
    batch_size: int = 100,
    client: SendflareClient | None = None,
    on_report: Callable[[DeliveryReport], None] | None = None,
) -> None:
    """Deliver pending changes until ``stop`` is set (SIGTERM, in the command).

    A stop request lets the user being delivered finish: its rows are never left half done.
    """

    def one_pass() -> Pass[DeliveryReport]:
        report = deliver_pending(batch_size=batch_size, stop=stop, client=client)
        outcomes = [result.outcome for result in report.results]
        return Pass(
            report,
            # A user held by another worker is no news: the lease expires or is released.
            news=any(outcome is not Outcome.BUSY for outcome in outcomes),
            progressed=any(outcome not in (Outcome.BUSY, Outcome.RETRY) for outcome in outcomes),
            account_error=report.account_error or None,
        )

    WorkerLoop(one_pass, stop=stop, interval=interval, on_report=on_report).run()
