"""System checks: ``manage.py check`` reports what would otherwise fail later.

* :func:`check_settings`: each key of ``SENDFLARE``, against the table in :mod:`.conf`. A
  missing ``API_TOKEN`` is an error only when something sends with it: the contact sync, or a
  backend without an ``api_token`` option of its own (Django 6.1 ``MAILERS``).
* :func:`check_default_senders`: Django's placeholder senders, which the API refuses.
* :func:`check_contacts`: the contact settings that need more than one key, or an import.
* :func:`check_queued_sending`: queued mail that the worker could never deliver.
* The sandbox's production guard (``check --deploy``, :mod:`django_sendflare.sandbox.checks`) is
  registered from here too: mounting the sandbox's URLs exposes it, installed or not.

Each key is checked on its own by :func:`check_settings` (``sendflare.E004``); the other checks
read through :meth:`~django_sendflare.conf.SendflareSettings.value_or`, so that an invalid key
counts as off there instead of being reported twice.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from email.utils import parseaddr
from typing import Any

from django.conf import global_settings, settings
from django.core import checks
from django.utils.module_loading import import_string

from .conf import MAILER_OPTION, SendflareSettings, get_settings, mailer_options
from .exceptions import SendflareConfigurationError
from .sandbox import checks as _sandbox_checks  # noqa: F401 - registers the sandbox's guard
from .task_hooks import tasks_available

PACKAGE = "django_sendflare"


@checks.register(checks.Tags.compatibility, "sendflare")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report a missing token, a malformed or insecure API_URL, bad numbers and unknown keys."""
    conf = get_settings()
    messages: list[checks.CheckMessage] = []
    for problem in conf.problems:
        if (
            problem.id == "sendflare.E001"
            and not conf.is_given("API_TOKEN")
            and not _token_needed(conf)
        ):
            continue  # every Sendflare backend has a token of its own: SENDFLARE needs none
        level = checks.Error if problem.level == "error" else checks.Warning
        messages.append(level(problem.msg, hint=problem.hint or None, id=problem.id))
    return messages


# Django's default senders ----------------------------------------------------------------------

#: The settings that name a sender, the check id of each, and what sends from it.
SENDER_SETTINGS = (
    (
        "DEFAULT_FROM_EMAIL",
        "sendflare.W002",
        "mail sent without a from address (password reset, send_mail(from_email=None), ...) "
        "fails, and Django's password reset fails silently (it only logs)",
    ),
    (
        "SERVER_EMAIL",
        "sendflare.W003",
        "error reports to ADMINS and MANAGERS (mail_admins, AdminEmailHandler) fail",
    ),
)


@checks.register(checks.Tags.compatibility, "sendflare")
def check_default_senders(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warn when Sendflare sends and DEFAULT_FROM_EMAIL or SERVER_EMAIL cannot be a sender.

    Django's defaults, ``webmaster@localhost`` and ``root@localhost``, are refused by the API
    (code 100033: the domain has no dot), as is any address of a dotless domain.
    """
    backends = sendflare_backends()
    if not backends:
        return []
    messages: list[checks.CheckMessage] = []
    for name, check_id, consequence in SENDER_SETTINGS:
        value = getattr(settings, name, None)
        problem = _sender_problem(value, getattr(global_settings, name))
        if problem:
            messages.append(
                checks.Warning(
                    f"{name} {problem}, which the Sendflare API refuses (code 100033), and "
                    f"{' and '.join(backends)} sends through Sendflare: {consequence}.",
                    hint=f"Set {name} to an address of a sender domain of your Sendflare "
                    f"account, e.g. {name} = 'Example <noreply@example.com>' (the sandbox "
                    "takes any address whose domain has a dot, unless started with "
                    "--allow-sender).",
                    id=check_id,
                )
            )
    return messages


def _sender_problem(value: object, django_default: str) -> str | None:
    """Why ``value`` cannot be a sender, or None."""
    if value == django_default:
        return f"is still Django's default {django_default!r}"
    address = parseaddr(value)[1] if isinstance(value, str) else ""
    domain = address.rpartition("@")[2]
    if "@" not in address or "." not in domain.strip("."):
        return f"is {value!r}, not an address with a domain name"
    return None


def sendflare_backends() -> list[str]:
    """The settings that configure a backend of this package (or a subclass of one).

    ``EMAIL_BACKEND``, and every entry of Django 6.1's ``MAILERS``: e.g.
    ``["EMAIL_BACKEND", "MAILERS['bulk']"]``.
    """
    return list(_sendflare_backend_options())


def _sendflare_backend_options() -> dict[str, Mapping[str, Any]]:
    """Each setting that configures a backend of this package, with its options."""
    found: dict[str, Mapping[str, Any]] = {}
    if _is_sendflare_backend(_email_backend_setting()):
        found["EMAIL_BACKEND"] = {}
    mailers = getattr(settings, "MAILERS", None)
    if isinstance(mailers, dict):
        for alias, config in mailers.items():
            if isinstance(config, dict) and _is_sendflare_backend(config.get("BACKEND")):
                options = config.get("OPTIONS")
                found[f"MAILERS[{alias!r}]"] = options if isinstance(options, Mapping) else {}
    return found


def _token_needed(conf: SendflareSettings) -> bool:
    """Whether anything sends with ``SENDFLARE['API_TOKEN']`` (and so needs one).

    The contact sync does, and every backend whose options give no ``api_token`` of their own
    (a queued ``MAILERS`` entry naming a ``mailer`` is delivered with that entry's).
    """
    if conf.records_contacts:
        return True
    return any(
        not (options.get("api_token") or options.get(MAILER_OPTION))
        for options in _sendflare_backend_options().values()
    )


def _email_backend_setting() -> object:
    """``EMAIL_BACKEND``, read without a warning of our own.

    Django 6.1 deprecates the setting: reading it warns (the project hears that from Django's
    own mail code already) and fails while ``MAILERS`` is defined (then it is not used).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return getattr(settings, "EMAIL_BACKEND", None)


def _is_sendflare_backend(path: object) -> bool:
    if not isinstance(path, str):
        return False
    if path.startswith(f"{PACKAGE}."):
        # Ours, even one this version does not have: no need to import it.
        return True
    try:
        backend = import_string(path)
    except ImportError:
        return False  # Django reports a backend that cannot be imported when it is used
    return any(
        getattr(cls, "__module__", "").startswith(f"{PACKAGE}.")
        for cls in getattr(backend, "__mro__", ())
    )


# Contacts ---------------------------------------------------------------------------------------


@checks.register(checks.Tags.compatibility, "sendflare")
def check_contacts(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warn when contacts are on without an APP_ID; fail on an adapter or task that won't load."""
    conf = get_settings()
    messages: list[checks.CheckMessage] = []
    # An invalid SYNC_CONTACTS or APP_ID is reported by check_settings (E004), not here.
    app_id_unset = conf.value_or("APP_ID", "invalid") is None
    if conf.value_or("SYNC_CONTACTS", False) is True and app_id_unset:
        messages.append(
            checks.Warning(
                "SENDFLARE['SYNC_CONTACTS'] is on but APP_ID is not set: user changes are not "
                "recorded and no contact is synced.",
                hint="Set SENDFLARE['APP_ID'] to your Sendflare application ID (against the "
                "sandbox any non-empty ID works, e.g. 'sandbox-app'), or set SYNC_CONTACTS to "
                "False if you do not sync contacts.",
                id="sendflare.W100",
            )
        )
    path = conf.contact_adapter_path
    try:
        import_string(path)
    except ImportError as error:
        messages.append(
            checks.Error(
                f"SENDFLARE['CONTACT_ADAPTER'] {path!r} cannot be imported: {error}",
                hint="Give the dotted path of a ContactAdapter subclass.",
                id="sendflare.E100",
            )
        )
    if conf.enqueues_contact_task:
        problem = tasks_available()
        if problem:
            messages.append(
                checks.Error(
                    f"SENDFLARE['CONTACTS_ENQUEUE_TASK'] is on but {problem}",
                    hint="Set CONTACTS_ENQUEUE_TASK to False and run "
                    "'manage.py sync_contacts --watch' instead.",
                    id="sendflare.E101",
                )
            )
    return messages


# Queued sending ---------------------------------------------------------------------------------


@checks.register(checks.Tags.compatibility, "sendflare")
def check_queued_sending(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E110: MAIL_ENQUEUE_TASK is on without the tasks framework. E111: a MAILERS entry of the
    QueuedEmailBackend names, in its ``mailer`` option, an entry that does not exist or is
    queued itself: mail queued through it would wait forever."""
    messages: list[checks.CheckMessage] = []
    problem = tasks_available() if get_settings().value_or("MAIL_ENQUEUE_TASK", False) else None
    if problem:
        messages.append(
            checks.Error(
                f"SENDFLARE['MAIL_ENQUEUE_TASK'] is on but {problem}",
                hint="Set MAIL_ENQUEUE_TASK to False; 'manage.py sendflare_worker' "
                "delivers queued mail without tasks.",
                id="sendflare.E110",
            )
        )
    mailers = getattr(settings, "MAILERS", None)
    if isinstance(mailers, Mapping):
        for alias, config in mailers.items():
            options = (config or {}).get("OPTIONS") or {}
            if not isinstance(options, Mapping) or not options.get(MAILER_OPTION):
                continue
            try:
                mailer_options(alias)
            except SendflareConfigurationError as error:
                messages.append(
                    checks.Error(
                        str(error),
                        hint="Name a MAILERS entry of django_sendflare.backends.EmailBackend "
                        "(with the Sendflare settings that deliver the mail).",
                        id="sendflare.E111",
                    )
                )
    return messages
