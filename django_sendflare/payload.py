"""EmailMessage -> the fields of ``POST /v1/send``, one request per recipient.

The API carries exactly four strings: ``from``, ``to`` (one address), ``subject`` and ``body``.
This module decides how a Django message maps onto them and refuses, before anything is sent,
what they cannot carry:

* ``body``: the HTML when there is HTML (``content_subtype = "html"``, or the one ``text/html``
  alternative of an ``EmailMultiAlternatives``, which then wins over the plain-text body);
  otherwise the plain text, unchanged.
* addresses: display names are dropped (the API takes bare addresses); IDN domains are sent as
  punycode; every address of to, cc and bcc gets its own request, once, duplicates removed
  case-insensitively.
* attachments, extra headers, reply-to and other alternatives raise
  :class:`~django_sendflare.exceptions.SendflareUnsupportedFeature`, or are dropped with a logged
  warning when ``IGNORE_UNSUPPORTED_FEATURES`` is on.
* a line break in the subject, the from address or a recipient raises
  :class:`~django_sendflare.exceptions.SendflareHeaderInjection` (Django's ``BadHeaderError``),
  as Django's own backends do; text with no UTF-8 form (a lone surrogate) or a NUL character
  raises :class:`~django_sendflare.exceptions.SendflareUnencodableText`; an address longer than
  SMTP allows (254 characters), or whose domain has no dot (Django's default
  ``webmaster@localhost``), is refused.

Every error names the field and the refused value.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from email.utils import getaddresses

from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.utils.encoding import force_str, punycode

from .exceptions import (
    SendflareHeaderInjection,
    SendflareInvalidAddress,
    SendflareUnencodableText,
    SendflareUnsupportedFeature,
)

logger = logging.getLogger(__name__)

#: The longest address SMTP can carry (RFC 5321, 4.5.3.1.3: a path of 256 octets with its <>).
MAX_ADDRESS_LENGTH = 254

#: A bare ASCII address of dot-separated atoms (``ann.lee+news@mail.example.com``), the common
#: case: no display name, comment, quote or group, so the RFC 5322 parser would return it
#: unchanged (a test checks that) and is skipped: it is most of the validation's cost.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)


@dataclass(frozen=True)
class SendRequest:
    """The fields of one ``POST /v1/send``: one message to one recipient."""

    from_email: str
    to: str
    subject: str
    body: str


def parse_address(value: object, *, field: str) -> str:
    """Return the bare, sendable address in ``value`` ("Name <a@b.example>" -> "a@b.example").

    Raises SendflareInvalidAddress for anything that is not exactly one valid address.
    """
    return _parse_address(force_str(value), field)


# The answer depends on the text and the field alone, and a batch of messages (send_mass_mail)
# usually repeats one sender: its checks are paid once. Refusals are not cached (they raise).
@functools.lru_cache(maxsize=256)
def _parse_address(text: str, field: str) -> str:
    forbid_line_breaks(text, field=f"{field} address")
    if _PLAIN_ADDRESS.fullmatch(text):
        address = text
    else:
        parsed = getaddresses([text])
        # The parser repairs some malformed input ("x@exa mple.com" -> "x@example.com"): an
        # address it had to rewrite is refused rather than sent somewhere the caller did not say.
        if len(parsed) != 1 or not parsed[0][1] or parsed[0][1] not in text:
            raise SendflareInvalidAddress(
                f"The {field} address {text!r} is not exactly one email address."
            )
        address = parsed[0][1]
    local, _, domain = address.rpartition("@")
    try:
        if not local or not domain:
            raise ValueError("no @")
        # IDN domains: the API is documented with plain addresses, so send the ASCII form.
        address = f"{local}@{punycode(domain)}"
        validate_email(address)
    except (ValueError, UnicodeError, ValidationError):
        raise SendflareInvalidAddress(
            f"The {field} address {text!r} is not a valid email address."
        ) from None
    if len(address) > MAX_ADDRESS_LENGTH:
        # Django's validator allows 320; SMTP (RFC 5321) allows 254, and so do the queue's columns.
        raise SendflareInvalidAddress(
            f"The {field} address {text!r} is {len(address)} characters long (as sent): "
            f"no email address can be longer than {MAX_ADDRESS_LENGTH}."
        )
    if "." not in domain.strip("."):
        # Django accepts "localhost"; the API does not (100033), and Django's defaults use it.
        hint = (
            " Django's DEFAULT_FROM_EMAIL and SERVER_EMAIL default to such addresses: set them."
            if field == "from"
            else ""
        )
        raise SendflareInvalidAddress(
            f"The {field} address {text!r} has no public domain (no dot in {domain!r}): "
            f"the Sendflare API refuses it.{hint}"
        )
    return address


def forbid_line_breaks(text: str, *, field: str) -> None:
    """Refuse CR or LF in a header-like field, as Django's ``forbid_multi_line_headers`` does."""
    if "\r" in text or "\n" in text:
        raise SendflareHeaderInjection(
            f"The {field} {text!r} contains a line break: header values can't contain newlines."
        )


def require_encodable(text: str, *, field: str) -> None:
    """Refuse text the API cannot carry, naming the field and where.

    That is text with no UTF-8 form (a lone surrogate), and the NUL character, which no email
    may hold (RFC 5322) and no PostgreSQL text column can store (the mail queue's).
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise _unencodable(text, error.start, error.end, field, "has no UTF-8 form") from None
    position = text.find("\x00")
    if position >= 0:
        raise _unencodable(text, position, position + 1, field, "is the NUL character")


def _unencodable(
    text: str, start: int, end: int, field: str, reason: str
) -> SendflareUnencodableText:
    around = text[max(0, start - 20) : start]
    return SendflareUnencodableText(
        f"The {field} holds {text[start:end]!r} at position {start} (after {around!r}), which "
        f"{reason}: the Sendflare API cannot carry it."
    )


def recipients_of(message: EmailMessage) -> list[str]:
    """Every address of to, cc and bcc, parsed, once each (first spelling kept)."""
    seen: set[str] = set()
    addresses = []
    for field, values in (("to", message.to), ("cc", message.cc), ("bcc", message.bcc)):
        for value in values:
            address = parse_address(value, field=field)
            if address.lower() not in seen:
                seen.add(address.lower())
                addresses.append(address)
    return addresses


def body_of(message: EmailMessage, unsupported: list[str]) -> str:
    """The one body the API takes: the HTML when the message has HTML, else the text."""
    body = force_str(message.body or "")
    html = body if message.content_subtype == "html" else None
    for alternative in getattr(message, "alternatives", []) or []:
        content, mimetype = alternative[0], alternative[1]
        if mimetype == "text/html" and html is None:
            html = force_str(content)
        else:
            unsupported.append(f"an alternative part of type {mimetype}")
    return html if html is not None else body


def unsupported_features(message: EmailMessage) -> list[str]:
    """What ``message`` holds that the API cannot carry (besides extra alternatives)."""
    found = []
    if message.attachments:
        found.append(f"{len(message.attachments)} attachment(s)")
    if message.reply_to:
        found.append("reply_to")
    if message.extra_headers:
        found.append("headers " + ", ".join(sorted(message.extra_headers)))
    if message.content_subtype not in ("plain", "html"):
        found.append(f"content_subtype {message.content_subtype!r}")
    return found


def build_requests(message: EmailMessage, *, ignore_unsupported: bool) -> list[SendRequest]:
    """Convert one message into one SendRequest per recipient, or raise before any I/O."""
    unsupported = unsupported_features(message)
    body = body_of(message, unsupported)
    if unsupported:
        described = "; ".join(unsupported)
        if not ignore_unsupported:
            raise SendflareUnsupportedFeature(
                f"The Sendflare API cannot send {described} (message {message.subject!r}). "
                "Remove them, or set SENDFLARE['IGNORE_UNSUPPORTED_FEATURES'] = True to drop "
                "them with a warning."
            )
        logger.warning(
            "Sendflare: dropping what the API cannot send from message %r: %s",
            force_str(message.subject),
            described,
        )
    subject = force_str(message.subject or "")
    forbid_line_breaks(subject, field="subject")
    from_email = parse_address(message.from_email, field="from")
    recipients = recipients_of(message)
    for field, text in [
        ("subject", subject),
        ("body", body),
        ("from address", from_email),
        *(("to address", to) for to in recipients),
    ]:
        require_encodable(text, field=field)
    return [
        SendRequest(from_email=from_email, to=to, subject=subject, body=body) for to in recipients
    ]
