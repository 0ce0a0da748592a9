"""``manage.py purge_sendflare_mail``: delete the log of sent mail past its retention."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...bounds import PURGE_DAYS
from ...conf import get_settings
from ...mail.purge import purge_sent_mail
from ..options import check_option


class Command(BaseCommand):
    help = (
        "Delete queued messages whose every recipient was sent (or discarded) longer ago than "
        "SENDFLARE['MAIL_RETENTION_DAYS'] (or --days). Failed, unknown and queued mail is kept. "
        "sendflare_worker also does this once an hour."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=float, help="Override MAIL_RETENTION_DAYS.")
        parser.add_argument("--dry-run", action="store_true", help="Count, delete nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if days is not None:
            days = check_option("--days", days, PURGE_DAYS)
        if days is None and get_settings().mail_retention_days is None:
            self.stdout.write("MAIL_RETENTION_DAYS is None: sent mail is kept; nothing purged.")
            return
        count = purge_sent_mail(days=days, dry_run=options["dry_run"])
        verb = "would be deleted" if options["dry_run"] else "deleted"
        self.stdout.write(f"{count} sent message(s) {verb}.")
