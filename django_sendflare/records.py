"""The few facts the status reports that no queue row keeps: one row per fact.

* ``contacts.full_sync``: the last full contact sync, when it started and ended and how
  (``complete``, ``incomplete`` or ``aborted``), with a one-line summary;
* ``account.held:<mailer>``: the account of a mailer (``""``: ``settings.SENDFLARE``) met an
  account-scope error (a lapsed subscription, a refused token, the daily quota), which holds all
  its queued mail (see :mod:`django_sendflare.mail.delivery`): since when, the last error's code
  and text. The row is deleted by the first delivery run of that mailer that sends again.

Rows are written rarely (once per full sync, once per held delivery run) and read by
:mod:`django_sendflare.status` in one query. Error texts are stored as the mail log stores
them (the token is never part of an error's text).
"""

from __future__ import annotations

import datetime

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .exceptions import SendflareAPIError

FULL_SYNC = "contacts.full_sync"
HELD_PREFIX = "account.held:"
#: The longest text kept (a line of the status, not a log).
DETAIL_MAX_LENGTH = 2000


class StatusRecord(models.Model):
    """One fact of the status, by ``key``; see the module's docstring for the keys."""

    key = models.CharField(_("key"), max_length=200, unique=True)
    #: When the fact began: the sync started, the account was first found held.
    since = models.DateTimeField(_("since"))
    #: When it was last seen: the sync ended, the account was last found held.
    at = models.DateTimeField(_("at"))
    #: How it ended (a sync), or the error code that holds the account ("" when none).
    outcome = models.CharField(_("outcome"), max_length=50, blank=True)
    detail = models.TextField(_("detail"), blank=True)

    class Meta:
        verbose_name = _("status record")
        verbose_name_plural = _("status records")

    def __str__(self) -> str:
        return f"{self.key}: {self.outcome}"


def record_full_sync(
    started: datetime.datetime, outcome: str, detail: str = "", *, using: str = "default"
) -> None:
    """Remember how the last full contact sync ended (``complete``, ``incomplete``, ``aborted``).

    One upsert, the same single statement whether the row exists or not: a full sync's own
    queries stay the same from its first run on.
    """
    record = StatusRecord(
        key=FULL_SYNC,
        since=started,
        at=timezone.now(),
        outcome=outcome,
        detail=detail[:DETAIL_MAX_LENGTH],
    )
    StatusRecord.objects.using(using).bulk_create(
        [record],
        update_conflicts=True,
        unique_fields=["key"],
        update_fields=["since", "at", "outcome", "detail"],
    )


def hold_account(mailer: str, error: SendflareAPIError, *, using: str = "default") -> None:
    """Record that ``mailer``'s account is held by ``error``; the first hold sets ``since``."""
    now = timezone.now()
    values = {
        "at": now,
        "outcome": "" if error.code is None else str(error.code),
        "detail": str(error)[:DETAIL_MAX_LENGTH],
    }
    changed = StatusRecord.objects.using(using).filter(key=HELD_PREFIX + mailer).update(**values)
    if not changed:
        StatusRecord.objects.using(using).update_or_create(
            key=HELD_PREFIX + mailer, defaults=values, create_defaults={**values, "since": now}
        )


def release_account(mailer: str, *, using: str = "default") -> None:
    """``mailer``'s account sent again: it is no longer held."""
    StatusRecord.objects.using(using).filter(key=HELD_PREFIX + mailer).delete()
