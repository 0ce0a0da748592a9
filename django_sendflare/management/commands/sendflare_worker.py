"""``manage.py sendflare_worker``: deliver queued mail, then contact changes, until SIGTERM."""

from __future__ import annotations

import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ...bounds import CONCURRENT_REQUESTS, POLL_SECONDS
from ...exceptions import SendflareConfigurationError
from ...loop import stop_on_signals
from ...worker import DEFAULT_INTERVAL, CycleReport, Worker
from ..options import check_option

_STOPPING = "Stopping after the requests in flight..."


class Command(BaseCommand):
    help = (
        "Deliver the mail queued by QueuedEmailBackend (first) and the contact changes of "
        "the outbox (second), through the account's rate limiter, until SIGTERM or Ctrl-C "
        "(requests in flight are finished). --once delivers what is due and exits: non-zero "
        "when a message failed or became unknown, or the account cannot send."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="Deliver everything due now, then exit."
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=None,
            help="Requests in flight at once (default: MAX_CONCURRENT_REQUESTS).",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=DEFAULT_INTERVAL,
            help="Seconds between looks at empty queues.",
        )
        parser.add_argument(
            "--no-contacts", action="store_true", help="Deliver mail only, not contact changes."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["threads"] is not None:
            check_option("--threads", options["threads"], CONCURRENT_REQUESTS)
        check_option("--interval", options["interval"], POLL_SECONDS)
        stop = threading.Event()
        try:
            worker = Worker(
                stop=stop,
                threads=options["threads"],
                interval=options["interval"],
                contacts=False if options["no_contacts"] else None,
                on_report=self._print,
            )
            if options["once"]:
                report = worker.run_once()
                self.stdout.write(f"Delivered: {report.summary()}.")
                if report.failed_permanently:
                    raise CommandError("Some mail or contact changes could not be delivered.")
                return
            self._run(worker, stop)
        except SendflareConfigurationError as error:
            raise CommandError(str(error)) from error

    def _run(self, worker: Worker, stop: threading.Event) -> None:
        what = "mail and contact changes" if worker.contacts else "mail"
        self.stdout.write(f"Delivering {what} ({worker.threads} at a time); SIGTERM stops.")
        with stop_on_signals(stop, lambda: self.stdout.write(_STOPPING)):
            worker.run()
        self.stdout.write("Stopped.")

    def _print(self, report: CycleReport) -> None:
        self.stdout.write(f"{timezone.now():%Y-%m-%d %H:%M:%S} {report.summary()}.")
