"""The ``sync_contacts --watch`` worker: deliver the outbox, wait, again, until told to stop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import DatabaseError, close_old_connections

from ..client import SendflareClient
from .outbox import DeliveryReport, Outcome, deliver_pending

logger = logging.getLogger(__name__)

#: Seconds between two looks at the outbox when it had nothing to deliver.
DEFAULT_INTERVAL = 5.0
#: Seconds to wait after an account-level error (bad token...) before trying again.
ACCOUNT_ERROR_WAIT = 60.0


def run_worker(
    stop: threading.Event,
    *,
    interval: float = DEFAULT_INTERVAL,
    batch_size: int = 100,
    client: SendflareClient | None = None,
    on_report: Callable[[DeliveryReport], None] | None = None,
) -> None:
    """Deliver pending changes until ``stop`` is set (SIGTERM, in the command).

    A stop request lets the user being delivered finish: its rows are never left half done.
    The worker polls: it looks again at once after a run that made progress, after ``interval``
    seconds otherwise. Database errors (a restarted server) are logged and the loop goes on
    with a fresh connection.
    """
    while not stop.is_set():
        # Long-running processes must drop connections past CONN_MAX_AGE or broken ones.
        close_old_connections()
        wait = interval
        try:
            report = deliver_pending(batch_size=batch_size, stop=stop, client=client)
        except DatabaseError:
            logger.exception("Sendflare worker: database error; retrying in %.0fs", interval)
        else:
            # A user held by another worker is no news: the lease expires or is released.
            news = [r for r in report.results if r.outcome is not Outcome.BUSY]
            if on_report is not None and news:
                on_report(report)
            if report.account_error:
                wait = max(interval, ACCOUNT_ERROR_WAIT)
                logger.error("Sendflare worker: %s; waiting %.0fs", report.account_error, wait)
            elif any(r.outcome not in (Outcome.BUSY, Outcome.RETRY) for r in report.results):
                wait = 0  # made progress: there may be more right away
        if wait:
            stop.wait(wait)
    close_old_connections()
