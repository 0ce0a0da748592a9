"""System checks: ``manage.py check`` reports every problem of ``settings.SENDFLARE``.

* :func:`check_settings`: each key of ``SENDFLARE``, against the table in :mod:`.conf`. A
  missing ``API_TOKEN`` is an error only when something sends with it: the contact sync, or a
  backend without an ``api_token`` option of its own (Django 6.1 ``MAILERS``).
* :func:`check_default_senders`: Django's placeholder senders, which the API refuses.
* The sandbox's production guard (``check --deploy``, :mod:`django_sendflare.sandbox.checks`) is
  registered from here too: mounting the sandbox's URLs exposes it, installed or not.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from email.utils import parseaddr
from typing import Any

from django.conf import global_settings, settings
from django.core import checks
from django.utils.module_loading import import_string

from .conf import raw_settings, validate
from .exceptions import SendflareConfigurationError
from .mail import checks as _mail_checks  # noqa: F401 - registers the queued-sending checks
from .mail.mailers import MAILER_OPTION
from .sandbox import checks as _sandbox_checks  # noqa: F401 - registers the sandbox's guard

PACKAGE = "django_sendflare"


@checks.register(checks.Tags.compatibility, "sendflare")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report a missing token, a malformed or insecure API_URL, bad numbers and unknown keys."""
    try:
        raw = raw_settings()
    except SendflareConfigurationError as error:
        return [checks.Error(str(error), id="sendflare.E000")]
    messages: list[checks.CheckMessage] = []
    for problem in validate(raw):
        if problem.id == "sendflare.E001" and not raw.get("API_TOKEN") and not _token_needed(raw):
            continue  # every Sendflare backend has a token of its own: SENDFLARE needs none
        level = checks.Error if problem.level == "error" else checks.Warning
        messages.append(level(problem.msg, hint=problem.hint, id=problem.id))
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


def _token_needed(raw: Mapping[str, Any]) -> bool:
    """Whether anything sends with ``SENDFLARE['API_TOKEN']`` (and so needs one).

    The contact sync does, and every backend whose options give no ``api_token`` of their own
    (a queued ``MAILERS`` entry naming a ``mailer`` is delivered with that entry's).
    """
    if raw.get("SYNC_CONTACTS"):
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
