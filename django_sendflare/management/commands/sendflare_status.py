"""``manage.py sendflare_status [--json]``: is mail flowing? Exit 0 only when healthy.

The figures and the rules are :mod:`django_sendflare.status`'s; this prints them. Exit
statuses: 0 healthy, 3 a due message waits longer than ``MAIL_MAX_DUE_AGE``, 4 an account is
held, 5 a shared limiter is unreachable (the first that holds), 2 the settings are invalid.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import status as status_mod
from ...exceptions import SendflareConfigurationError


class Command(BaseCommand):
    help = "Report the mail queue, contact outbox, account and limiter; exit 0 when healthy."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            status = status_mod.collect()
        except SendflareConfigurationError as error:
            raise CommandError(str(error), returncode=2) from error
        if options["json"]:
            self.stdout.write(json.dumps(status.as_dict(), sort_keys=True))
        else:
            for line in describe(status):
                self.stdout.write(line)
        if not status.healthy:
            sys.exit(status.exit_code)


def describe(status: status_mod.Status) -> list[str]:
    """The status as lines of text (also the admin's summary)."""
    mail, contacts = status.mail, status.contacts
    counts = ", ".join(f"{n} {state}" for state, n in mail.recipients.items())
    lines = [
        f"Sendflare status: {'healthy' if status.healthy else 'UNHEALTHY'}",
        f"Mail: recipients {counts}",
        f"  {mail.pending_messages} message(s) pending, {mail.due_messages} due now; "
        f"oldest due waited {_seconds(mail.oldest_due_age)}",
    ]
    for queue in mail.mailers:
        lines.append(
            f"  mailer {queue.mailer or '(SENDFLARE)'}: {queue.pending_messages} pending, "
            f"{queue.due_messages} due, oldest due waited {_seconds(queue.oldest_due_age)}"
        )
    lines.append(
        f"Contacts: {contacts.pending} change(s) pending, {contacts.failed} failed; "
        f"oldest pending {_seconds(contacts.oldest_pending_age)}"
    )
    sync = contacts.last_full_sync
    if sync is None:
        lines.append("  last full sync: none recorded")
    else:
        ended = sync.finished_at.isoformat(timespec="seconds")
        detail = f" ({sync.detail})" if sync.detail else ""
        lines.append(f"  last full sync: {sync.outcome}, ended {ended}{detail}")
    if not status.held:
        lines.append("Account: not held")
    for hold in status.held:
        lines.append(
            f"Account {hold.mailer or '(SENDFLARE)'}: HELD since "
            f"{hold.since.isoformat(timespec='seconds')}: {hold.error}"
        )
    for limiter in status.limiters:
        where = f" ({limiter.mailer})" if limiter.mailer else ""
        state = "reachable" if limiter.reachable else f"UNREACHABLE {limiter.error}".rstrip()
        lines.append(f"Limiter{where}: {limiter.name}, {state}")
    lines.extend(f"Problem ({p.exit_code}): {p.text}" for p in status.problems)
    return lines


def _seconds(age: float | None) -> str:
    return "-" if age is None else f"{age:.0f} s"
