"""``manage.py sendflare_mail list|retry|discard``: the mail log's actions, from a shell.

The same services as the admin's Resend and Discard (:mod:`django_sendflare.mail.actions`),
on the messages that hold a recipient matching the filters (:mod:`~django_sendflare.mail.
selection`). Retrying ``unknown`` recipients may mail a person twice: it needs ``--yes``, as
the admin's confirmation page does; retrying ``failed`` ones and discarding act at once.
Exit status 2 for bad options or a refused retry of unknown recipients.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...mail import actions
from ...mail.selection import Selection
from .sync_contacts import parse_since

QUEUED, FAILED, UNKNOWN = "queued", "failed", "unknown"  # QueuedRecipient.State values


class Command(BaseCommand):
    help = "List, retry or discard queued mail, chosen by state, address, mailer, age or id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "retry", "discard"])
        parser.add_argument("message_ids", nargs="*", type=int, help="Only these messages.")
        parser.add_argument(
            "--state", action="append", default=[], help="A recipient state (repeatable)."
        )
        parser.add_argument("--to", default="", help="A recipient's address.")
        parser.add_argument("--mailer", default=None, help='A MAILERS alias ("" = SENDFLARE).')
        parser.add_argument("--older-than", help="Queued before: a date, or 30m, 12h, 7d, 2w ago.")
        parser.add_argument("--newer-than", help="Queued since: a date, or 30m, 12h, 7d, 2w ago.")
        parser.add_argument("--dry-run", action="store_true", help="Say what would be done.")
        parser.add_argument(
            "--yes", action="store_true", help="retry: also unknown recipients (may mail twice)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        selection = self._selection(options)
        action = options["action"]
        if action == "list":
            self._list(selection)
        elif action == "retry":
            self._retry(selection, options)
        else:
            self._discard(selection, options)

    def _selection(self, options: dict[str, Any]) -> Selection:
        moments = {}
        for name in ("older_than", "newer_than"):
            if options[name]:
                try:
                    moments[name] = parse_since(options[name])
                except ValueError:
                    flag = "--" + name.replace("_", "-")
                    raise CommandError(
                        f"{flag} {options[name]!r}: give an ISO date or datetime, or a "
                        "duration such as 30m, 12h, 7d, 2w.",
                        returncode=2,
                    ) from None
        try:
            return Selection(
                states=options["state"],
                to=options["to"],
                mailer=options["mailer"],
                message_ids=options["message_ids"],
                **moments,
            )
        except ValueError as error:
            raise CommandError(f"--state: {error}", returncode=2) from None

    def _list(self, selection: Selection) -> None:
        count = 0
        for row in selection.recipients().iterator():
            count += 1
            code = "" if row.error_code is None else f" code {row.error_code}"
            self.stdout.write(
                f"{row.message_id}\t{row.email}\t{row.state}\t{row.attempts} attempt(s)"
                f"{code}\t{row.message.mailer or '-'}\t{row.message.subject[:60]}"
            )
        self.stdout.write(f"{count} recipient(s).")

    def _retry(self, selection: Selection, options: dict[str, Any]) -> None:
        unknown = selection.message_ids_with([UNKNOWN])
        if unknown and not options["yes"] and not options["dry_run"]:
            raise CommandError(
                f"{len(unknown)} message(s) have unknown recipients, which may have been sent: "
                "retrying them may mail a person twice. Add --yes to retry them too, or "
                "--state failed to leave them alone.",
                returncode=2,
            )
        with_unknown = options["yes"] and bool(selection.message_ids_with([UNKNOWN]))
        states = [FAILED, UNKNOWN] if with_unknown else [FAILED]
        ids = selection.message_ids_with(states)
        if options["dry_run"]:
            self.stdout.write(f"Would retry {len(ids)} message(s): {_ids(ids)}.")
            if unknown and not options["yes"]:
                self.stdout.write(f"{len(unknown)} have unknown recipients: that needs --yes.")
            return
        result = actions.resend(ids, include_unknown=with_unknown)
        self._report("queued again", result)

    def _discard(self, selection: Selection, options: dict[str, Any]) -> None:
        ids = selection.message_ids_with([QUEUED, FAILED])
        if options["dry_run"]:
            self.stdout.write(f"Would discard from {len(ids)} message(s): {_ids(ids)}.")
            return
        self._report("discarded", actions.discard(ids))

    def _report(self, done: str, result: actions.ActionResult) -> None:
        self.stdout.write(
            f"{result.recipients} recipient(s) of {result.messages} message(s) {done}."
        )
        if result.busy:
            self.stderr.write(
                f"Being delivered by a worker, left alone (try again): {_ids(result.busy)}."
            )


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids)) or "none"
