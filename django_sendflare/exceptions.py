"""The error tree of django-sendflare and the one table of the API's service codes.

Three families, told apart by what a caller can do about them:

* :class:`SendflareConfigurationError` -- the settings are wrong. It is Django's
  ``ImproperlyConfigured`` and deliberately **not** a :class:`SendflareError`: code that catches
  sending errors (or ``fail_silently``) must never hide a misconfigured project.
* :class:`SendflareInvalidInput` -- the message holds something the API cannot carry (a header
  injection, an invalid address, text that cannot be encoded, an attachment...). Raised before
  any request of the batch is made, whatever ``fail_silently`` says, as Django's own backends do.
* :class:`SendflareAPIError` -- a request failed: the API refused it, could not be reached, or
  answered something unusable. Its ``scope`` says what else the failure condemns:

  ``"account"``
      every later request of the account would fail the same way: a batch stops.
  ``"sender"``
      the sender address (or its domain) is refused: the batch's other messages from that sender
      fail without a request; messages from other senders are still sent.
  ``"message"``
      only this request failed; the rest of the batch goes on.
  ``"rate"``
      too many requests: retried after a delay (and the account's limiter slows down).

  ``retryable`` says whether trying again later can succeed, ``may_have_been_processed`` whether
  the API may have acted on a request although no usable answer arrived (re-sending an email
  after such an error can deliver it twice).

:data:`SERVICE_ERRORS` maps every documented service code to its class; the class carries the
scope. ``docs/reference/errors.rst`` prints the same table (a test keeps the two in step).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from django.core.exceptions import ImproperlyConfigured
from django.core.mail import message as django_message

if TYPE_CHECKING:
    from .results import MessageStatus

    BadHeaderError = ValueError
else:
    # Django 5.2: its own ValueError subclass. Django 6.x: an alias of ValueError, deprecated
    # when imported from django.core.mail (not from .message). Later: gone. A ValueError always.
    BadHeaderError = getattr(django_message, "BadHeaderError", ValueError)

#: What else a failed request condemns (see the module's docstring).
Scope = Literal["account", "sender", "message", "rate"]
SCOPES: tuple[Scope, ...] = ("account", "sender", "message", "rate")


class SendflareConfigurationError(ImproperlyConfigured):
    """The ``SENDFLARE`` settings (or the backend's options) are missing or invalid.

    Not a :class:`SendflareError`, so that neither ``fail_silently`` nor an
    ``except SendflareError`` around a send hides a misconfigured project.
    """


class SendflareError(Exception):
    """Base class of every error django-sendflare raises while sending or syncing."""

    #: Set when the backend raises the error after a batch: the ``MessageStatus`` of every
    #: message of the batch, so that a caller of ``send_mail`` sees who got the message.
    message_statuses: list[MessageStatus] | None = None


# Input the API cannot take: refused before any request of the batch.


class SendflareInvalidInput(SendflareError, ValueError):
    """The message holds something the API cannot carry. Raised before any request."""


class SendflareHeaderInjection(SendflareInvalidInput, BadHeaderError):
    """A line break (CR or LF) in the subject, the from address or a recipient.

    A ``ValueError`` and Django's ``BadHeaderError`` (an alias of ``ValueError`` since Django
    6.0), as Django's own backends raise for the same message.
    """


class SendflareInvalidAddress(SendflareInvalidInput):
    """An address in the message cannot be sent to (malformed, several in one field, no
    public domain such as Django's default ``webmaster@localhost``)."""


class SendflareUnencodableText(SendflareInvalidInput):
    """A field holds text the API cannot carry.

    That is text with no UTF-8 form (a lone surrogate such as ``"\\ud800"``), or the NUL
    character ``"\\x00"``, which no email may hold and the mail queue cannot store on PostgreSQL.
    """


class SendflareUnsupportedFeature(SendflareInvalidInput):
    """The message uses something the API cannot carry (attachments, headers, reply-to, ...).

    Set ``IGNORE_UNSUPPORTED_FEATURES`` to drop such parts with a warning instead.
    """


# Failures of a request.


class SendflareAPIError(SendflareError):
    """A request failed: refused by the API, not answered, or answered with something unusable.

    ``code`` is the service code of the API's envelope (None when there was no envelope),
    ``status_code`` the HTTP status, ``request_id`` the API's requestId, ``request`` the
    request as method and path (``"POST /v1/send"``: never a URL). ``fields`` are the
    request's fields that the refusal concerns (``{"from": ..., "to": ...}`` for a send): they
    are shown in the text so that a refused value can be found; secrets never are.
    """

    #: What else the failure condemns: "account", "sender", "message" or "rate".
    scope: Scope = "message"
    #: Trying again later can succeed.
    retryable: bool = False
    #: The request may have been acted upon although no usable answer arrived.
    may_have_been_processed: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        request_id: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
        fields: Mapping[str, str] | None = None,
        request: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.request_id = request_id
        self.status_code = status_code
        self.retry_after = retry_after
        self.fields: dict[str, str] = dict(fields or {})
        self.request = request

    @property
    def account_level(self) -> bool:
        """``scope == "account"``: kept for code written before scopes existed."""
        return self.scope == "account"

    def __str__(self) -> str:
        text = f"{self.request}: {self.message}" if self.request else self.message
        if self.fields:
            text += " [" + ", ".join(f"{k} {v!r}" for k, v in self.fields.items()) + "]"
        details = []
        if self.code is not None:
            details.append(f"code {self.code}")
        if self.status_code is not None:
            details.append(f"HTTP {self.status_code}")
        if self.request_id:
            details.append(f"requestId {self.request_id}")
        return f"{text} ({', '.join(details)})" if details else text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, code={self.code!r}, "
            f"request_id={self.request_id!r}, status_code={self.status_code!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments are lost by the default pickling of exceptions; task queues
        # and multiprocessing pickle them. The state dict carries every attribute.
        return (_rebuild_api_error, (type(self), self.message), self.__dict__)


def _rebuild_api_error(cls: type[SendflareAPIError], message: str) -> SendflareAPIError:
    return cls(message)


# The road to the API: no answer, or an answer that is not the API's.


class SendflareConnectionError(SendflareAPIError):
    """The connection could not be made; the request was never sent. Safe to retry."""

    retryable = True


class SendflareAmbiguousError(SendflareAPIError):
    """No usable answer arrived after the request was sent (read timeout, dropped connection).

    The API may have processed the request. Emails are not re-sent after this by default.
    """

    retryable = True
    may_have_been_processed = True


class SendflareServerError(SendflareAPIError):
    """The API answered with an HTTP 5xx status: it may or may not have processed the request."""

    retryable = True
    may_have_been_processed = True


class SendflareBadResponse(SendflareAPIError):
    """The API answered something that is not its JSON envelope (an HTML page, garbage, ...)."""

    retryable = True
    may_have_been_processed = True


class SendflareRedirectError(SendflareAPIError):
    """The API answered with a redirect (HTTP 3xx). Redirects are never followed: a message
    re-posted to another host would hand the message (and, to a careless client, the token) to
    whoever answered. Usually ``API_URL`` is wrong (``http`` for ``https``, an old host)."""

    scope = "account"


class SendflareUnexpectedError(SendflareAPIError):
    """Something other than the API failed while sending (a bug, the shared limiter's store...).

    The batch stops: its state is unknown. The request may have been sent.
    """

    scope = "account"
    may_have_been_processed = True


class SendflareRequestNotSent(SendflareUnexpectedError):
    """Something other than the API failed *before* the request was sent: nothing reached the
    API (the rate limiter's store, a timeout the socket cannot take, a bug before the request).

    Never "may have been processed": queued mail stays queued and is tried again, rather than
    becoming ``unknown``. The batch stops, as for any unexpected error.
    """

    may_have_been_processed = False


class SendflareAuthenticationError(SendflareAPIError):
    """The API refused the credentials (HTTP 401 or 403 without a more precise service code)."""

    scope = "account"


# Service errors: the documented codes of the envelope (SendKit's table applies to both APIs).


class SendflareBadParameters(SendflareAPIError):
    """100033: the API refused the request's parameters (an address, an empty field...)."""


class SendflareEmailTooLarge(SendflareAPIError):
    """100023: the email is too large."""


class SendflareRateLimited(SendflareAPIError):
    """HTTP 429 or service code 100025: too many requests. Retried automatically within limits."""

    scope = "rate"
    retryable = True


class SendflareInvalidSignature(SendflareAuthenticationError):
    """100029: the request's credentials (token or signature) are invalid."""


class SendflareInvalidSendingDomain(SendflareAPIError):
    """100030: the domain of the sender address is not a valid sending domain of the account."""

    scope = "sender"


class SendflareDailyLimitReached(SendflareAPIError):
    """100031: the daily sending limit is reached. Not retried: the quota resets the next day."""

    scope = "account"


class SendflareSubscriptionExpired(SendflareAPIError):
    """100047: the account's subscription has expired."""

    scope = "account"


class SendflareUnknownSender(SendflareAPIError):
    """100048: the sender address does not exist in the account."""

    scope = "sender"


class SendflareAccountNotActivated(SendflareAPIError):
    """100049: the account is not activated."""

    scope = "account"


#: Service code -> error class (whose ``scope`` says what the code condemns). Codes not listed
#: become a plain :class:`SendflareAPIError` of scope "message".
SERVICE_ERRORS: dict[int, type[SendflareAPIError]] = {
    100023: SendflareEmailTooLarge,
    100025: SendflareRateLimited,
    100029: SendflareInvalidSignature,
    100030: SendflareInvalidSendingDomain,
    100031: SendflareDailyLimitReached,
    100033: SendflareBadParameters,
    100047: SendflareSubscriptionExpired,
    100048: SendflareUnknownSender,
    100049: SendflareAccountNotActivated,
}
