"""The settings table: one class whose body lists every key of ``settings.SENDFLARE``.

Each row is a :class:`~.values.Setting`: the key (the attribute's name in upper case), its
default, the validator that checks it and a line saying what it does. That one table is

* the frozen, typed settings object itself: ``conf.rate_limit`` is the validated RATE_LIMIT;
* what the system checks validate (:mod:`django_sendflare.checks`), key by key;
* what a backend's (or a ``MAILERS`` entry's) options may override;
* the settings reference (docs/reference/settings.rst, tested against the table).

To add a setting: add a row here; the tests then say what to add to the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..bounds import (
    ATTEMPTS,
    CONCURRENT_REQUESTS,
    RATE_LIMIT,
    RETENTION_DAYS,
    RETRIES,
    RETRY_SECONDS,
    Number,
    Timeout,
)
from ..validators import (
    ApiUrl,
    Boolean,
    DottedPath,
    OptionalText,
    Options,
    Problem,
    Provider,
    Token,
)
from .values import FrozenSettings, Setting

PROVIDER_URLS: dict[str, str] = {
    "sendflare": "https://api.sendflare.io",
    "sendkit": "https://api.sendkit.best",
}


class SendflareSettings(FrozenSettings):
    """The validated settings: one typed attribute per row (see :mod:`.values` for how reading
    an invalid key behaves); the token and the limiter's options are never in its repr.

    Two rows hold a derived value: ``api_url`` is the PROVIDER's URL when API_URL is None, and
    ``timeout`` is always a (connect, read) pair (``connect_timeout``, ``read_timeout``).
    """

    api_token: Setting[str] = Setting(
        None,
        Token(),
        "The API token (Bearer) of your Sendflare or SendKit account. Required when something "
        "sends with SENDFLARE (see below). Never shown in "
        "a repr, a log line or a check message.",
    )
    provider: Setting[str] = Setting(
        "sendflare",
        Provider(choices=tuple(PROVIDER_URLS)),
        "Which service's documented base URL to use: ``'sendflare'`` "
        "(https://api.sendflare.io) or ``'sendkit'`` (https://api.sendkit.best).",
    )
    api_url: Setting[str] = Setting(
        None,
        ApiUrl(),
        "The base URL of the API, without ``/v1`` (the client adds it); overrides PROVIDER. "
        "Plain http is accepted for loopback hosts only (the sandbox).",
    )
    app_id: Setting[str | None] = Setting(
        None,
        OptionalText(),
        "The application ID of your contact list. Contact sync needs it; sending does not.",
    )
    timeout: Setting[tuple[float, float]] = Setting(
        (5.0, 30.0),
        Timeout(),
        "Seconds to connect and seconds to wait for an answer, per request.",
    )
    rate_limit: Setting[float] = Setting(
        5,
        RATE_LIMIT,
        "Requests per second for the whole account (every endpoint, every thread); "
        "0 turns the limiter off.",
    )
    rate_limiter: Setting[str] = Setting(
        "django_sendflare.ratelimit.InProcessRateLimiter",
        DottedPath(),
        "The limiter class: the in-process one, or "
        "``'django_sendflare.ratelimit.RedisRateLimiter'`` to share the limit between processes.",
    )
    rate_limiter_options: Setting[Mapping[str, Any]] = Setting(
        {},
        Options(),
        "Keyword arguments of the limiter class, e.g. ``{'url': 'redis://localhost:6379/0'}``. "
        "The value is never repeated in a check message (a URL may hold a password).",
    )
    ignore_unsupported_features: Setting[bool] = Setting(
        False,
        Boolean(),
        "Send messages with features the API cannot carry (cc, attachments, custom headers...) "
        "without them, instead of refusing them.",
    )
    max_retries: Setting[int] = Setting(
        3,
        RETRIES,
        "Retries of a request that cannot have been acted upon (connection refused, 429, ...).",
    )
    retry_max_time: Setting[float] = Setting(
        30.0,
        RETRY_SECONDS,
        "Seconds after which a request is no longer retried, whatever MAX_RETRIES says.",
    )
    retry_ambiguous_sends: Setting[bool] = Setting(
        False,
        Boolean(),
        "Also retry sends after a read timeout, a dropped connection or a 5xx: the message may "
        "then be sent twice.",
    )
    max_concurrent_requests: Setting[int] = Setting(
        4,
        CONCURRENT_REQUESTS,
        "Recipients of one ``send_messages()`` call sent at once (each still waits for its slot "
        "in the rate limiter).",
    )
    contact_adapter: Setting[str] = Setting(
        "django_sendflare.contacts.adapter.ContactAdapter",
        DottedPath(),
        "The ContactAdapter subclass that turns a user into a contact (check E100 imports it).",
    )
    sync_contacts: Setting[bool] = Setting(
        True,
        Boolean(),
        "Record user changes for contact sync (needs APP_ID; check W100 warns without it).",
    )
    contacts_enqueue_task: Setting[bool] = Setting(
        False,
        Boolean(),
        "Enqueue a django.tasks task when a transaction that changed users commits, instead of "
        "waiting for ``sync_contacts --watch`` (check E101 needs the tasks framework).",
    )
    contacts_recreate_to_change_status: Setting[bool] = Setting(
        False,
        Boolean(),
        "Change a contact's status by deleting and creating it again (the API has no update).",
    )
    contacts_max_attempts: Setting[int] = Setting(
        10,
        ATTEMPTS,
        "Attempts of one contact change before it is marked failed.",
    )
    mail_enqueue_task: Setting[bool] = Setting(
        False,
        Boolean(),
        "With the QueuedEmailBackend: enqueue a django.tasks task for each message when the "
        "transaction that queued it commits, besides ``sendflare_worker``'s polling.",
    )
    mail_max_attempts: Setting[int] = Setting(
        10,
        ATTEMPTS,
        "Delivery runs of a queued message that may end in a transient failure (API down, "
        "429) before its remaining recipients are marked failed.",
    )
    mail_max_due_age: Setting[float] = Setting(
        900,
        Number(minimum=1, maximum=604_800.0, unit="seconds"),
        "Seconds a due queued message may wait before ``sendflare_status`` (and the health "
        "check) reports the mail as stalled: no worker runs, or it cannot keep up.",
    )
    mail_retention_days: Setting[float | None] = Setting(
        30,
        RETENTION_DAYS,
        "Days the mail log keeps a queued message once every recipient is sent (or "
        "discarded); the worker and ``purge_sendflare_mail`` delete older ones. None keeps "
        "them. Failed and unknown mail is kept until you act on it.",
    )

    def derive(self, values: dict[str, Any], invalid: dict[str, Problem]) -> None:
        if "API_URL" in values and values["API_URL"] is None:
            if "PROVIDER" in invalid:  # no URL without a known provider
                invalid["API_URL"] = invalid["PROVIDER"]
                del values["API_URL"]
            else:
                values["API_URL"] = PROVIDER_URLS[values["PROVIDER"]]
        if "API_URL" in values:
            values["API_URL"] = values["API_URL"].rstrip("/")

    @property
    def connect_timeout(self) -> float:
        """Seconds to connect, per request."""
        return self.timeout[0]

    @property
    def read_timeout(self) -> float:
        """Seconds to wait for an answer, per request."""
        return self.timeout[1]

    @property
    def account_key(self) -> tuple[str, str]:
        """What identifies one account: requests sharing it share a rate limiter and a pool."""
        return (self.api_url, self.api_token)

    # The tolerant reads of the contact receivers, all here. They run inside every user save:
    # a missing token must not fail the save nor drop the change (recording needs only
    # SYNC_CONTACTS and APP_ID; the token is needed at delivery), and an invalid value counts as
    # off (or as the default), as the system checks report it.

    @property
    def records_contacts(self) -> bool:
        """Whether user changes are recorded: SYNC_CONTACTS is on and APP_ID is set."""
        synced = self.value_or("SYNC_CONTACTS", False) is True
        return synced and bool(self.value_or("APP_ID", None))

    @property
    def enqueues_contact_task(self) -> bool:
        """Whether a committed transaction that recorded changes enqueues a delivery task."""
        return self.value_or("CONTACTS_ENQUEUE_TASK", False) is True

    @property
    def contact_adapter_path(self) -> str:
        """The dotted path of the contact adapter (the default's when CONTACT_ADAPTER is bad)."""
        path: str = self.value_or("CONTACT_ADAPTER", SendflareSettings.contact_adapter.default)
        return path


#: The rows of the table, in order.
SETTINGS: tuple[Setting[Any], ...] = SendflareSettings.rows
BY_KEY: dict[str, Setting[Any]] = {setting.key: setting for setting in SETTINGS}
#: The default of every key (read by the backend to recognise its OPTIONS).
DEFAULTS: dict[str, Any] = {setting.key: setting.default for setting in SETTINGS}
