"""``manage.py sync_contacts``: a full diff sync, outbox delivery (``--pending``), a worker.

Thin: options in, :mod:`django_sendflare.contacts` does the work, a summary out. Exits non-zero
when anything failed, so that cron notices.
"""

from __future__ import annotations

import datetime
import re
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from ...bounds import MAX_ROWS_PER_QUERY, POLL_SECONDS
from ...client import MAX_PAGE_SIZE
from ...contacts import full_sync, outbox, services, watch
from ...exceptions import SendflareConfigurationError
from ...loop import stop_on_signals
from ...records import record_full_sync
from ..options import check_option

_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str) -> datetime.datetime:
    """``--since``: an ISO date or datetime, or a duration back from now (30m, 12h, 7d, 2w)."""
    value = value.strip()
    match = _DURATION.match(value)
    if match:
        try:
            delta = datetime.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
            return timezone.now() - delta
        except OverflowError:  # before year 1: no date at all
            raise ValueError(value) from None
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise ValueError(value)
        moment = datetime.datetime.combine(day, datetime.time.min)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class Command(BaseCommand):
    help = (
        "Sync Django users to the Sendflare contacts of SENDFLARE['APP_ID']. Without --pending "
        "or --watch: a full diff sync (only what differs costs a call)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        full = parser.add_argument_group("full sync")
        full.add_argument("--dry-run", action="store_true", help="Print the plan; change nothing.")
        full.add_argument(
            "--prune",
            action="store_true",
            help="Delete remote contacts that no synced user has (never when a page of the "
            "list failed; at most 10%% of the list without --force).",
        )
        full.add_argument(
            "--force", action="store_true", help="Let --prune delete more than 10%% of the list."
        )
        full.add_argument(
            "--since",
            metavar="WHEN",
            help="Only users changed since WHEN (ISO date/datetime, or 30m, 12h, 7d, 2w); "
            "by default: joined or logged in since then (the adapter's changed_since()).",
        )
        full.add_argument(
            "--page-size",
            type=int,
            default=MAX_PAGE_SIZE,
            help=f"Contacts per page of the remote list (1-{MAX_PAGE_SIZE}).",
        )
        full.add_argument(
            "--chunk-size", type=int, default=2000, help="Users read from the database at a time."
        )
        full.add_argument("--no-progress", action="store_true", help="No progress bar.")
        queue = parser.add_argument_group("outbox")
        queue.add_argument(
            "--pending",
            action="store_true",
            help="Deliver the pending changes that are due, then exit.",
        )
        queue.add_argument(
            "--watch",
            action="store_true",
            help="Run as a worker: deliver changes as they come, until SIGTERM or Ctrl-C.",
        )
        queue.add_argument(
            "--retry-failed",
            action="store_true",
            help="With --pending or --watch: put failed changes back to pending first.",
        )
        queue.add_argument(
            "--batch-size", type=int, default=100, help="Changes picked per database round."
        )
        queue.add_argument(
            "--interval",
            type=float,
            default=watch.DEFAULT_INTERVAL,
            help="--watch: seconds between looks at an empty outbox.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        queue_mode = options["pending"] or options["watch"]
        full_only = [name for name in ("dry_run", "prune", "force", "since") if options[name]]
        if queue_mode and full_only:
            raise CommandError(
                f"--{full_only[0].replace('_', '-')} is for a full sync, not --pending/--watch.",
                returncode=2,
            )
        if options["retry_failed"] and not queue_mode:
            raise CommandError("--retry-failed goes with --pending or --watch.", returncode=2)
        if options["force"] and not options["prune"]:
            raise CommandError("--force only makes sense with --prune.", returncode=2)
        for name, low, high in (
            ("page_size", 1, MAX_PAGE_SIZE),
            # Rows per query: a LIMIT the database must hold (10**30 fails inside the driver).
            ("chunk_size", 1, MAX_ROWS_PER_QUERY),
            ("batch_size", 1, MAX_ROWS_PER_QUERY),
        ):
            value = options[name]
            if value < low or (high is not None and value > high):
                bound = f"{low}-{high}" if high else f">= {low}"
                raise CommandError(f"--{name.replace('_', '-')} must be {bound}.", returncode=2)
        check_option("--interval", options["interval"], POLL_SECONDS)
        try:
            if options["watch"]:
                self._watch(options)
            elif options["pending"]:
                self._pending(options)
            else:
                self._full(options)
        except SendflareConfigurationError as error:
            raise CommandError(str(error)) from error

    # --pending

    def _pending(self, options: dict[str, Any]) -> None:
        if options["retry_failed"]:
            self.stdout.write(f"{services.retry_failed()} failed change(s) put back to pending.")
        report = outbox.deliver_pending(batch_size=options["batch_size"])
        self._print_delivery(report, options)
        self.stdout.write(f"Delivered: {report.summary()}.")
        if not report.ok:
            raise CommandError(self._delivery_failure(report))

    def _delivery_failure(self, report: outbox.DeliveryReport) -> str:
        if report.account_error:
            return f"Delivery stopped: {report.account_error}"
        return f"{report.failures} user(s) not delivered (see the outbox in the admin)."

    def _print_delivery(self, report: outbox.DeliveryReport, options: dict[str, Any]) -> None:
        for result in report.results:
            if not result.ok:
                self.stderr.write(
                    f"  {result.outcome.value:9} user {result.user_key} {result.email}: "
                    f"{result.error}"
                )
            elif options["verbosity"] >= 2:
                self.stdout.write(
                    f"  {result.outcome.value:9} user {result.user_key} {result.email}"
                )

    # --watch

    def _watch(self, options: dict[str, Any]) -> None:
        if options["retry_failed"]:
            self.stdout.write(f"{services.retry_failed()} failed change(s) put back to pending.")
        stop = threading.Event()
        self.stdout.write(
            f"Delivering contact changes every {options['interval']:g}s; SIGTERM or Ctrl-C stops."
        )

        def on_report(report: outbox.DeliveryReport) -> None:
            self._print_delivery(report, options)
            self.stdout.write(f"{timezone.now():%Y-%m-%d %H:%M:%S} {report.summary()}.")

        def notice() -> None:
            self.stdout.write("Stopping after the current user...")

        with stop_on_signals(stop, notice):
            watch.run_watch(
                stop,
                interval=options["interval"],
                batch_size=options["batch_size"],
                on_report=on_report,
            )
        self.stdout.write("Stopped.")

    # The full sync.

    def _full(self, options: dict[str, Any]) -> None:
        since = None
        if options["since"]:
            try:
                since = parse_since(options["since"])
            except ValueError:
                raise CommandError(
                    f"--since {options['since']!r}: give an ISO date or datetime, or a duration "
                    "such as 30m, 12h, 7d, 2w.",
                    returncode=2,
                ) from None
        if options["prune"] and since is not None:
            raise CommandError(
                "--prune cannot be combined with --since: only some users are compared, so "
                "every other contact would look unused.",
                returncode=2,
            )
        show_progress = (
            not options["no_progress"] and options["verbosity"] >= 1 and self.stdout.isatty()
        )
        started = timezone.now()
        full = not options["dry_run"] and since is None
        try:
            report = full_sync.run_sync(
                dry_run=options["dry_run"],
                prune=options["prune"],
                force=options["force"],
                since=since,
                page_size=options["page_size"],
                chunk_size=options["chunk_size"],
                on_remote_page=self._remote_progress if show_progress else None,
                progress=self._progress if show_progress else None,
            )
        except full_sync.SyncAborted as error:
            if full:
                record_full_sync(started, "aborted", str(error))
            raise CommandError(f"Nothing synced: {error}") from error
        if show_progress:
            self.stdout.write("")
        self._print_report(report, options)
        if full:  # what sendflare_status reports as the last full sync
            failure = "" if report.ok else self._failure(report)
            record_full_sync(started, "incomplete" if failure else "complete", failure)
        if not report.ok:
            raise CommandError(self._failure(report))

    def _remote_progress(self, read: int, total: int | None) -> None:
        of = f" of {total}" if total is not None else ""
        self.stdout.write(f"\rReading contacts: {read}{of}", ending="")
        self.stdout.flush()

    def _progress(self, done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        self.stdout.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", ending="")
        self.stdout.flush()

    def _print_report(self, report: full_sync.SyncReport, options: dict[str, Any]) -> None:
        plan = report.plan
        listing = report.listing
        out = self.stdout.write
        out(
            f"Sendflare: {plan.remote_count} contact(s) in {listing.pages_read} page(s); "
            f"{plan.local_count} user(s) to sync."
        )
        for error in listing.errors:
            self.stderr.write(f"  failed to read {error}")
        verbose = report.dry_run or options["verbosity"] >= 2
        prune = report.prune_requested and report.prune_refused is None
        if verbose:
            header = "Plan (dry run: nothing is changed):" if report.dry_run else "Plan:"
            out(header)
            for item in [*plan.creates, *plan.updates, *plan.recreates]:
                out(f"  {item.describe()}")
            for extra in plan.extras:
                if prune:
                    out(f"  delete   {extra.email} (no user)")
                else:
                    out(f"  extra    {extra.email} (no user; kept, --prune deletes it)")
        for key, users in plan.conflicts.items():
            out(f"  conflict {key}: users {', '.join(users)} share it; none is synced")
        for diff in plan.status_differences:
            out(f"  {diff.describe()}")
        for key, error in report.invalid:
            self.stderr.write(f"  invalid  user {key}: {error}")
        if report.prune_refused:
            self.stderr.write(f"Not pruned: {report.prune_refused}.")
        applied = report.applied
        if applied is not None:
            for failure in applied.failed:
                self.stderr.write(f"  failed   {failure.action} {failure.email}: {failure.error}")
            out(
                f"Done: {applied.count('create')} created, {applied.count('update')} updated, "
                f"{applied.count('recreate')} re-created, {applied.count('delete')} deleted, "
                f"{len(applied.failed)} failed; {applied.calls} API call(s) "
                f"(+{listing.pages_read + (0 if listing.complete else 1)} to read the list)."
            )
        else:
            deletes = len(plan.extras) if prune else 0
            out(
                f"Would: create {len(plan.creates)}, update {len(plan.updates)}, re-create "
                f"{len(plan.recreates)}, delete {deletes}; {plan.calls + deletes} API call(s)."
            )
        out(
            f"{plan.unchanged} unchanged, {len(plan.extras)} without a user, "
            f"{len(plan.conflicts)} conflict(s), {len(plan.status_differences)} status "
            "difference(s)."
        )

    def _failure(self, report: full_sync.SyncReport) -> str:
        reasons = []
        if not report.listing.complete:
            reasons.append("the list could not be read to the end")
        if report.prune_refused:
            reasons.append("pruning was refused")
        if report.invalid:
            reasons.append(f"{len(report.invalid)} user(s) could not be mapped")
        if report.applied is not None:
            if report.applied.account_error:
                reasons.append(f"stopped: {report.applied.account_error}")
            elif report.applied.failed:
                reasons.append(f"{len(report.applied.failed)} call(s) failed")
        return "Sync incomplete: " + "; ".join(reasons) + "."
