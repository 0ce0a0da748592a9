"""Is mail flowing? The figures and the health rules, computed in one place.

``sendflare_status``, the django-health-check plugin (:mod:`django_sendflare.health`), the
metrics collector (:mod:`django_sendflare.metrics`) and the mail log's summary in the admin all
read :func:`collect` (or, for the metrics' scrape, the cheaper :func:`queue_depth`).

The figures cost four small queries, whatever the size of the mail log (the benchmark
``benchmarks/status.py`` measures it on a million recipients): recipients counted per state,
pending messages per mailer (due now, the oldest due), the contact outbox, and the
:class:`~django_sendflare.records.StatusRecord` rows. Plus one ping per shared limiter.

The health rules, each with its exit status of ``sendflare_status``:

* ``3`` **mail waits**: a due message has waited longer than ``MAIL_MAX_DUE_AGE`` seconds (no
  worker runs, or it cannot keep up). Due means its time came: a message waiting out a backoff
  or the account's hold is not due;
* ``4`` **account held**: a mailer's account met an account-scope error (a lapsed subscription,
  a refused token, the daily quota), which holds all its queued mail until a send succeeds;
* ``5`` **limiter unreachable**: the shared limiter's store (Redis) does not answer, or the
  limiter cannot be built from the settings.

When several hold, the status is the first of these that does.
"""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db import router
from django.db.models import Count, Min, Q
from django.utils import timezone

from .conf import get_settings
from .exceptions import SendflareConfigurationError
from .mail.models import QueuedMessage, QueuedRecipient
from .models import ContactChange
from .ratelimit import get_rate_limiter
from .records import FULL_SYNC, HELD_PREFIX, StatusRecord

State = QueuedRecipient.State
Pending = QueuedMessage.State.PENDING

EXIT_HEALTHY = 0
EXIT_MAIL_WAITS = 3
EXIT_ACCOUNT_HELD = 4
EXIT_LIMITER_UNREACHABLE = 5


@dataclass
class MailerQueue:
    """The pending messages of one mailer (``""``: ``settings.SENDFLARE``)."""

    mailer: str
    pending_messages: int = 0
    due_messages: int = 0
    #: Seconds the oldest due message has waited since it became due (None: none is due).
    oldest_due_age: float | None = None


@dataclass
class MailFigures:
    """The mail queue: recipients per state, and what is due now."""

    #: Recipients per state (every state, 0 included).
    recipients: dict[str, int]
    pending_messages: int = 0
    due_messages: int = 0
    oldest_due_age: float | None = None
    #: Per mailer, when more than one has pending mail (else empty).
    mailers: list[MailerQueue] = field(default_factory=list)


@dataclass
class FullSync:
    """The last full contact sync (``sync_contacts`` without ``--since`` or ``--dry-run``)."""

    started_at: datetime.datetime
    finished_at: datetime.datetime
    #: ``complete``, ``incomplete`` (some users or calls failed) or ``aborted`` (nothing synced).
    outcome: str
    detail: str = ""


@dataclass
class ContactFigures:
    """The contact outbox: changes waiting, parked, and the oldest waiting."""

    pending: int = 0
    failed: int = 0
    oldest_pending_age: float | None = None
    last_full_sync: FullSync | None = None


@dataclass
class Hold:
    """A mailer's account held by an account-scope error."""

    mailer: str
    since: datetime.datetime
    last_seen: datetime.datetime
    error_code: int | None
    error: str


@dataclass
class LimiterFigures:
    """The rate limiter of one account."""

    mailer: str
    #: The limiter's class (dotted path), or "none" when RATE_LIMIT is 0.
    name: str
    shared: bool = False
    reachable: bool = True
    error: str = ""


@dataclass
class Problem:
    """A health rule that does not hold."""

    rule: str
    exit_code: int
    text: str


@dataclass
class Status:
    """Everything ``sendflare_status`` reports."""

    checked_at: datetime.datetime
    max_due_age: float
    mail: MailFigures
    contacts: ContactFigures
    held: list[Hold]
    limiters: list[LimiterFigures]
    problems: list[Problem] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        return min((p.exit_code for p in self.problems), default=EXIT_HEALTHY)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: datetimes as ISO 8601 strings."""
        data = dataclasses.asdict(self)
        data["healthy"] = self.healthy
        data["exit_code"] = self.exit_code
        return _jsonable(data)


def collect(*, check_limiter: bool = True) -> Status:
    """Read every figure and apply the health rules."""
    now = timezone.now()
    max_due_age = get_settings().mail_max_due_age
    mail = mail_figures(now)
    records = list(StatusRecord.objects.using(router.db_for_read(StatusRecord)).all())
    contacts = contact_figures(now)
    contacts.last_full_sync = next(
        (FullSync(r.since, r.at, r.outcome, r.detail) for r in records if r.key == FULL_SYNC),
        None,
    )
    held = [
        Hold(
            r.key.removeprefix(HELD_PREFIX),
            r.since,
            r.at,
            int(r.outcome) if r.outcome.lstrip("-").isdigit() else None,
            r.detail,
        )
        for r in records
        if r.key.startswith(HELD_PREFIX)
    ]
    mailers = {""} | {m.mailer for m in mail.mailers} | {h.mailer for h in held}
    limiters = limiter_figures(sorted(mailers)) if check_limiter else []
    status = Status(now, max_due_age, mail, contacts, held, limiters)
    status.problems = problems(status)
    return status


def problems(status: Status) -> list[Problem]:
    """The health rules, in the order of their exit statuses."""
    found = []
    age = status.mail.oldest_due_age
    if age is not None and age > status.max_due_age:
        found.append(
            Problem(
                "mail_waits",
                EXIT_MAIL_WAITS,
                f"the oldest due message has waited {age:.0f} s "
                f"(MAIL_MAX_DUE_AGE is {status.max_due_age:g} s): is a worker running?",
            )
        )
    for hold in status.held:
        found.append(
            Problem(
                "account_held",
                EXIT_ACCOUNT_HELD,
                f"the account of {_mailer_name(hold.mailer)} is held since "
                f"{hold.since.isoformat(timespec='seconds')}: {hold.error}",
            )
        )
    for limiter in status.limiters:
        if not limiter.reachable:
            found.append(
                Problem(
                    "limiter_unreachable",
                    EXIT_LIMITER_UNREACHABLE,
                    f"the rate limiter of {_mailer_name(limiter.mailer)} ({limiter.name}) "
                    f"is unreachable: {limiter.error or 'its store does not answer'}",
                )
            )
    return found


def mail_figures(now: datetime.datetime) -> MailFigures:
    """Recipients per state, and the pending messages per mailer: two queries."""
    using = router.db_for_read(QueuedMessage)
    counts = dict.fromkeys(State.values, 0)
    rows = (
        QueuedRecipient.objects.using(using)
        .order_by()
        .values("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    counts.update(dict(rows))
    due = Q(next_attempt_at__lte=now)
    per_mailer = (
        QueuedMessage.objects.using(using)
        .filter(state=Pending)
        .order_by()
        .values("mailer")
        .annotate(
            pending=Count("id"),
            due=Count("id", filter=due),
            oldest=Min("next_attempt_at", filter=due),
        )
        .values_list("mailer", "pending", "due", "oldest")
    )
    queues = [
        MailerQueue(mailer, pending, due_count, _age(now, oldest))
        for mailer, pending, due_count, oldest in per_mailer
    ]
    ages = [q.oldest_due_age for q in queues if q.oldest_due_age is not None]
    return MailFigures(
        recipients=counts,
        pending_messages=sum(q.pending_messages for q in queues),
        due_messages=sum(q.due_messages for q in queues),
        oldest_due_age=max(ages, default=None),
        mailers=sorted(queues, key=lambda q: q.mailer) if len(queues) > 1 else [],
    )


def contact_figures(now: datetime.datetime) -> ContactFigures:
    """The contact outbox in one query."""
    pending = Q(state=ContactChange.State.PENDING)
    row = (
        ContactChange.objects.using(router.db_for_read(ContactChange))
        .order_by()
        .aggregate(
            pending=Count("id", filter=pending),
            failed=Count("id", filter=Q(state=ContactChange.State.FAILED)),
            oldest=Min("created_at", filter=pending),
        )
    )
    return ContactFigures(row["pending"], row["failed"], _age(now, row["oldest"]))


def queue_depth() -> tuple[int, float | None]:
    """Recipients queued (or in flight), and the oldest due age: the metrics' cheap gauges.

    One query each, on indexes: the recipients' ``(state, updated_at)`` and the messages'
    ``(state, next_attempt_at)``; neither counts the sent mail of the log.
    """
    using = router.db_for_read(QueuedMessage)
    now = timezone.now()
    depth = (
        QueuedRecipient.objects.using(using).filter(state__in=[State.QUEUED, State.SENDING]).count()
    )
    oldest = (
        QueuedMessage.objects.using(using)
        .filter(state=Pending, next_attempt_at__lte=now)
        .order_by()
        .aggregate(oldest=Min("next_attempt_at"))["oldest"]
    )
    return depth, _age(now, oldest)


def limiter_figures(mailers: list[str]) -> list[LimiterFigures]:
    """Each distinct limiter of these mailers, and whether it answers (a ping per shared one)."""
    seen: dict[int, LimiterFigures] = {}
    figures: list[LimiterFigures] = []
    for mailer in mailers:
        try:
            conf = get_settings(mailer)
            limiter = get_rate_limiter(conf)
        except SendflareConfigurationError as error:
            figures.append(LimiterFigures(mailer, "?", reachable=False, error=str(error)))
            continue
        if limiter is None:
            if not mailer:
                figures.append(LimiterFigures(mailer, "none"))
            continue
        if id(limiter) in seen:
            continue
        name = f"{type(limiter).__module__}.{type(limiter).__qualname__}"
        seen[id(limiter)] = LimiterFigures(mailer, name, limiter.shared, limiter.reachable())
        figures.append(seen[id(limiter)])
    return figures


def _age(now: datetime.datetime, then: datetime.datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def _mailer_name(mailer: str) -> str:
    return f"mailer {mailer!r}" if mailer else "SENDFLARE"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value
