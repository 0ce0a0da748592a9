"""The acceptance step both backends share: options, ``pre_send``, the status, validation.

:class:`~django_sendflare.backends.EmailBackend` (sends now) and
:class:`~django_sendflare.mail.backend.QueuedEmailBackend` (stores) are siblings on Django's
``BaseEmailBackend``; what they must do alike lives here, so that a message the queue accepts is
exactly a message the API can take:

* :func:`backend_options` checks the keyword arguments of a backend (``get_connection()``'s,
  or a Django 6.1 ``MAILERS`` entry's ``OPTIONS``) and returns the Sendflare settings among
  them, and :func:`backend_settings` loads the settings they override;
* :class:`Acceptance` gives each message its ``sendflare_status``, sends ``pre_send`` and turns
  the message into its send requests (one per recipient), raising on input the API cannot take.

Nothing here makes a request or writes a row.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import django
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.encoding import force_str

from .conf import DEFAULTS, SendflareSettings, get_settings, load_settings
from .exceptions import SendflareConfigurationError
from .payload import SendRequest, build_requests
from .results import MessageStatus, RecipientStatus
from .signals import CancelSend, pre_send

# Django 6.1's BaseEmailBackend takes the MAILERS alias and reports unknown OPTIONS itself.
_BASE_TAKES_ALIAS = django.VERSION >= (6, 1)


def base_arguments(alias: str | None) -> dict[str, Any]:
    """The keyword arguments of ``BaseEmailBackend.__init__`` on this Django."""
    return {"alias": alias} if _BASE_TAKES_ALIAS else {}


def backend_options(
    options: dict[str, Any],
    *,
    backend: str,
    alias: str | None,
    ignored: Collection[str] = (),
) -> dict[str, Any]:
    """The Sendflare settings among a backend's keyword arguments; raise on any other.

    ``username`` / ``password`` (``send_mail()``'s ``auth_user`` / ``auth_password``, passed
    along None or not) are dropped when None and refused otherwise: the API authenticates with
    the token. ``ignored`` are names Django 6.1 passes that the backend may leave alone.
    """
    options = dict(options)
    for smtp_option in ("username", "password"):
        if options.pop(smtp_option, None) is not None and smtp_option not in ignored:
            raise SendflareConfigurationError(
                f"The Sendflare backend takes no {smtp_option!r} (send_mail's auth_user / "
                "auth_password): it authenticates with SENDFLARE['API_TOKEN'], or an "
                "'api_token' option."
            )
    unknown = [key for key in options if key.upper() not in DEFAULTS and key not in ignored]
    if unknown:
        close = difflib.get_close_matches(unknown[0].upper(), DEFAULTS, n=1)
        mailer = f" (mailer {alias!r})" if alias else ""
        suggestion = f" Did you mean {close[0].lower()!r}?" if close else ""
        raise SendflareConfigurationError(
            f"Unknown option(s) {', '.join(map(repr, unknown))} for "
            f"django_sendflare.backends.{backend}{mailer}.{suggestion}"
        )
    return {key: value for key, value in options.items() if key.upper() in DEFAULTS}


def backend_settings(options: dict[str, Any]) -> SendflareSettings:
    """The settings a backend works with: ``settings.SENDFLARE`` under its ``options``.

    Raises on invalid settings, whatever ``fail_silently`` says.
    """
    # Without options the cached settings serve: send_mail() builds a backend per call, and
    # validating the whole table each time was a sixth of the cost of queueing a message.
    return load_settings(options) if options else get_settings().require_valid()


@dataclass
class Accepted:
    """One accepted message: its status and its requests (none when ``pre_send`` cancelled it)."""

    message: EmailMessage
    status: MessageStatus
    requests: list[SendRequest]


@dataclass(frozen=True)
class Acceptance:
    """The acceptance step of ``backend``, with the settings ``conf``."""

    backend: BaseEmailBackend
    conf: SendflareSettings

    def accept_all(self, email_messages: Sequence[EmailMessage]) -> list[Accepted]:
        """Accept every message of a batch; raises on the first one the API cannot take.

        The whole batch is accepted before the caller sends or stores any of it, so that one
        invalid message leaves the whole batch unsent.
        """
        return [self.accept(message) for message in email_messages]

    def accept(self, message: EmailMessage) -> Accepted:
        """Give the message its status, send ``pre_send``, and validate it.

        A message cancelled by a ``pre_send`` receiver (:class:`~.signals.CancelSend`) has every
        recipient ``"cancelled"`` and no requests.
        """
        status = MessageStatus()
        message.sendflare_status = status  # type: ignore[attr-defined]
        try:
            pre_send.send(sender=type(self.backend), message=message, backend=self.backend)
        except CancelSend:
            for address in message.recipients():
                status.recipients[force_str(address)] = RecipientStatus(
                    force_str(address), "cancelled"
                )
            return Accepted(message, status, [])
        requests = build_requests(message, ignore_unsupported=self.conf.ignore_unsupported_features)
        return Accepted(message, status, requests)
