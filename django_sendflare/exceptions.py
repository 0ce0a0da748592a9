"""The error tree of django-sendflare and the table of the API's service codes.

Everything raised by this package derives from :class:`SendflareError`. Errors that come from the
API (or from the road to it) derive from :class:`SendflareAPIError` and carry ``code``,
``message``, ``request_id`` and ``status_code``; two flags tell a caller what to do next:

``retryable``
    Trying the same request again later can succeed (rate limits, an API that is down).
``may_have_been_processed``
    The request may have reached the API and been acted upon although no answer arrived
    (read timeout, connection dropped after sending, 5xx). Re-sending an email after such an
    error can deliver it twice.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured


class SendflareError(Exception):
    """Base class of every error raised by django-sendflare."""


class SendflareConfigurationError(SendflareError, ImproperlyConfigured):
    """The ``SENDFLARE`` settings (or the backend's options) are missing or invalid.

    Never swallowed by ``fail_silently``: a misconfigured project must not look as if it sent mail.
    """


class SendflareUnsupportedFeature(SendflareError, ValueError):
    """The message uses something the API cannot carry (attachments, headers, reply-to, ...).

    Raised before any request is made. Set ``IGNORE_UNSUPPORTED_FEATURES`` to drop such parts
    with a warning instead.
    """


class SendflareInvalidAddress(SendflareError, ValueError):
    """An address in the message cannot be sent to (malformed, or several in one field)."""


class SendflareAPIError(SendflareError):
    """The API refused a request, or could not be reached, or answered something unusable."""

    #: Set when the backend raises the error after a batch: the ``MessageStatus`` of every
    #: message of the batch, so that a caller of ``send_mail`` sees who got the message.
    message_statuses: list[Any] | None = None

    #: Trying again later can succeed.
    retryable: bool = False
    #: The request may have been acted upon although no usable answer arrived.
    may_have_been_processed: bool = False
    #: Every later request of the same account will fail the same way (auth, quota, ...):
    #: a batch stops instead of spending the rest of its requests on it.
    account_level: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        request_id: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.request_id = request_id
        self.status_code = status_code
        self.retry_after = retry_after

    def __str__(self) -> str:
        details = []
        if self.code is not None:
            details.append(f"code {self.code}")
        if self.status_code is not None:
            details.append(f"HTTP {self.status_code}")
        if self.request_id:
            details.append(f"requestId {self.request_id}")
        return f"{self.message} ({', '.join(details)})" if details else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.message!r}, code={self.code!r}, "
            f"request_id={self.request_id!r}, status_code={self.status_code!r})"
        )

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # Keyword-only arguments are lost by the default pickling of exceptions; task queues
        # and multiprocessing pickle them.
        return (
            _rebuild_api_error,
            (
                type(self),
                self.message,
                self.code,
                self.request_id,
                self.status_code,
                self.retry_after,
            ),
        )


def _rebuild_api_error(
    cls: type[SendflareAPIError],
    message: str,
    code: int | None,
    request_id: str | None,
    status_code: int | None,
    retry_after: float | None,
) -> SendflareAPIError:
    return cls(
        message,
        code=code,
        request_id=request_id,
        status_code=status_code,
        retry_after=retry_after,
    )


# Transport and response errors: the API's answer was missing or unusable.


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


class SendflareAuthenticationError(SendflareAPIError):
    """The API token was refused (HTTP 401 or 403)."""

    account_level = True


class SendflareRateLimited(SendflareAPIError):
    """HTTP 429 or service code 100025: too many requests. Retried automatically within limits."""

    retryable = True


# Service errors: the documented codes of the envelope (SendKit's table applies to both APIs).


class SendflareBadParameters(SendflareAPIError):
    """100033: bad request parameters."""


class SendflareEmailTooLarge(SendflareAPIError):
    """100023: the email is too large."""


class SendflareInvalidSignature(SendflareAPIError):
    """100029: invalid signature."""

    account_level = True


class SendflareInvalidSendingDomain(SendflareAPIError):
    """100030: the sending domain is invalid."""


class SendflareDailyLimitReached(SendflareAPIError):
    """100031: the daily sending limit is reached. Not retried: the quota resets the next day."""

    account_level = True


class SendflareSubscriptionExpired(SendflareAPIError):
    """100047: the subscription has expired."""

    account_level = True


class SendflareUnknownSender(SendflareAPIError):
    """100048: the sender's email address does not exist in the account."""


class SendflareAccountNotActivated(SendflareAPIError):
    """100049: the account is not activated."""

    account_level = True


#: Service code -> error class. Codes not listed become a plain :class:`SendflareAPIError`.
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


def error_for_code(code: int) -> type[SendflareAPIError]:
    """Return the error class for a service code (the generic one for unknown codes)."""
    return SERVICE_ERRORS.get(code, SendflareAPIError)
