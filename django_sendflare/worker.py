"""The one worker: queued mail first, contact changes second, every request through the limiter.

``manage.py sendflare_worker`` runs :meth:`Worker.run` until SIGTERM; ``--once`` runs
:meth:`Worker.run_once`. Each cycle drains the due mail (with ``threads`` requests in flight,
so that a slow API still gets its full rate), then delivers at most ``contact_users`` users'
contact changes, then starts again: a contact backlog delays mail by at most one such slice,
never by the whole backlog. Both go through the clients of :mod:`django_sendflare.client`, so
through the account's one rate limiter. Several workers may run on several hosts. The loop
itself (waits, SIGTERM, database errors, the longer wait after an account error) is
:class:`~django_sendflare.loop.WorkerLoop`, shared with ``sync_contacts --watch``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .conf import get_settings
from .contacts.outbox import DeliveryReport, Outcome, deliver_pending
from .loop import Pass, WorkerLoop
from .mail.drain import DrainReport, MailDrain
from .mail.purge import purge_sent_mail

logger = logging.getLogger(__name__)

#: Seconds between two looks at the queues when they had nothing to deliver.
DEFAULT_INTERVAL = 2.0
#: Users whose contact changes are delivered between two looks at the mail queue.
CONTACT_USERS_PER_CYCLE = 20
#: Seconds between two purges of sent mail past MAIL_RETENTION_DAYS.
PURGE_EVERY = 3600.0


@dataclass
class CycleReport:
    """What one cycle (or a whole ``--once`` run) did."""

    mail: DrainReport = field(default_factory=DrainReport)
    contacts: DeliveryReport = field(default_factory=DeliveryReport)

    @property
    def progressed(self) -> bool:
        """Whether anything was delivered or tried (there may be more right away)."""
        worked = [r for r in self.contacts.results if r.outcome not in (Outcome.BUSY,)]
        return bool(self.mail.requests or worked)

    @property
    def failed_permanently(self) -> bool:
        """Mail failed or unknown, contacts failed, or an account that cannot send."""
        return bool(
            not self.mail.ok or self.contacts.count(Outcome.FAILED) or self.contacts.account_error
        )

    def summary(self) -> str:
        text = f"mail: {self.mail.summary()}"
        if self.contacts.results or self.contacts.account_error:
            text += f"; contacts: {self.contacts.summary()}"
            if self.contacts.account_error:
                text += f" ({self.contacts.account_error})"
        return text


class Worker:
    """Delivers queued mail and contact changes; see the module docstring."""

    def __init__(
        self,
        *,
        stop: threading.Event | None = None,
        threads: int | None = None,
        interval: float = DEFAULT_INTERVAL,
        contact_users: int = CONTACT_USERS_PER_CYCLE,
        contacts: bool | None = None,
        purge: bool = True,
        on_report: Callable[[CycleReport], None] | None = None,
    ) -> None:
        # Only the settings the worker itself needs, each strict on its own: settings.SENDFLARE
        # may have no API_TOKEN when every mailer's token is in MAILERS (the mail of mailer ""
        # and the contacts do need it, and say so when they are delivered).
        conf = get_settings()
        self.stop = stop or threading.Event()
        self.threads = threads or conf.max_concurrent_requests
        self.interval = interval
        self.contact_users = contact_users
        if contacts is None:
            # Contacts are delivered when they are synced at all (an APP_ID is needed).
            contacts = conf.sync_contacts and bool(conf.app_id)
        self.contacts = contacts
        self.purge = purge
        self.on_report = on_report
        self._last_purge = float("-inf")

    def run(self) -> None:
        """Deliver until ``stop`` is set; requests in flight are finished first."""
        WorkerLoop(
            self._pass, stop=self.stop, interval=self.interval, on_report=self.on_report
        ).run()

    def _pass(self) -> Pass[CycleReport]:
        report = self.cycle(contact_limit=self.contact_users)
        self._maybe_purge()
        # A mailer stopped (its account refused, or the API unreachable), or the contacts' one.
        stopped = next(iter(report.mail.stopped.values()), None)
        account_error = stopped or report.contacts.account_error or None
        return Pass(
            report,
            progressed=report.progressed,
            news=report.progressed,
            account_error=account_error,
        )

    def run_once(self) -> CycleReport:
        """Deliver everything due now (the mail, then every contact change) and return."""
        report = self.cycle(contact_limit=None)
        self._maybe_purge()
        return report

    def cycle(self, *, contact_limit: int | None) -> CycleReport:
        """Drain the due mail, then deliver up to ``contact_limit`` users' contact changes."""
        report = CycleReport()
        report.mail = MailDrain(threads=self.threads, stop=self.stop).run()
        if self.contacts and not self.stop.is_set():
            report.contacts = deliver_pending(stop=self.stop, limit=contact_limit)
        return report

    def _maybe_purge(self) -> None:
        if not self.purge or time.monotonic() - self._last_purge < PURGE_EVERY:
            return
        self._last_purge = time.monotonic()
        purge_sent_mail()
