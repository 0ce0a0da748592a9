"""Validation of API requests, written from the documents (never from the client).

Each ``parse_*`` function returns a clean value or raises :class:`InvalidRequest` with the service
code to answer with (100033 for everything a document defines as a bad parameter).

Where the documents and the providers' official SDKs disagree, the sandbox takes what the SDKs
send, because the real API evidently does (docs/explanation/sandbox-fidelity.rst): a save without
``status``, ``cc``/``bcc``/``replyTo`` lists on a send, ``page=0&pageSize=0``.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from django_sendflare.sandbox.jsonbody import InvalidRequest, decode_json

SEND_FIELDS = ("from", "to", "subject", "body")
#: Address lists the official SDKs add to a send (PHP always, Java when given); not documented.
SEND_LIST_FIELDS = ("cc", "bcc", "replyTo")
CONTACT_STATUSES = ("Confirmed", "Unsubscribed")
#: The status of a contact created without one (no official SDK can send ``status``): an
#: assumption, since the documents mark the field required and give no default.
DEFAULT_CONTACT_STATUS = "Confirmed"
CONTACT_DATA_FIELDS = (
    "language",
    "firstName",
    "lastName",
    "phoneNumber",
    "birthday",
    "company",
    "vipLevel",
    "amount",
)
MAX_PAGE_SIZE = 500
DEFAULT_PAGE = 1

# One address, no display name, no list: "local@domain.tld". Deliberately pragmatic (not RFC 5322):
# the documents say "email address" and give bare addresses only.
_EMAIL_RE = re.compile(
    r"""^[^\s@<>()\[\],;:"\\]+@[^\s@<>()\[\],;:"\\.]+(?:\.[^\s@<>()\[\],;:"\\.]+)+$"""
)
_DAY_MONTH_RE = re.compile(r"^(\d{2})/(\d{2})$")
_ISO_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class SendRequest:
    """A valid ``POST /v1/send`` payload."""

    sender: str
    to: str
    subject: str
    body: str
    #: Non-empty cc / bcc / replyTo lists, by field name (empty lists are ignored).
    lists: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class ContactPayload:
    """A valid ``POST /v1/contact`` payload."""

    app_id: str
    email: str
    #: None when the request had no ``status`` (the create then uses DEFAULT_CONTACT_STATUS).
    status: str | None
    data: dict[str, str | int]


@dataclass(frozen=True)
class ListQuery:
    """A valid ``GET /v1/contact`` query."""

    app_id: str
    page: int
    page_size: int


@dataclass(frozen=True)
class DeleteQuery:
    """A valid ``DELETE /v1/contact`` query."""

    app_id: str
    email: str


def is_email(value: str) -> bool:
    """Return True for one bare address such as ``john.doe@example.com``."""
    return len(value) <= 254 and _EMAIL_RE.match(value) is not None


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Decode a request body that must be one JSON object (see :func:`decode_json`)."""
    if not body:
        raise InvalidRequest("the request body is empty; a JSON object is required")
    value = decode_json(body)
    if not isinstance(value, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return value


def _reject_unknown(payload: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    # Unknown keys are refused rather than ignored: the real service may silently drop them
    # (e.g. a "cc" list), and a test double that refuses them makes that loss visible.
    unknown = sorted(set(payload) - set(allowed))
    if unknown:
        raise InvalidRequest(f"unsupported {where} field(s): {', '.join(unknown)}")


def _required_string(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"'{name}' is required and must be a non-empty string")
    return value


def _required_email(payload: dict[str, Any], name: str) -> str:
    value = _required_string(payload, name)
    if not is_email(value):
        raise InvalidRequest(f"'{name}' must be one email address such as name@example.com")
    return value


def _address_list(payload: dict[str, Any], name: str) -> tuple[str, ...]:
    value = payload.get(name, [])
    if not isinstance(value, list) or not all(
        isinstance(item, str) and is_email(item) for item in value
    ):
        raise InvalidRequest(
            f"'{name}' must be a list of email addresses such as [\"name@example.com\"]"
        )
    return tuple(value)


def parse_send(payload: dict[str, Any]) -> SendRequest:
    """Validate a send payload: from, to, subject and body, all non-empty strings.

    ``cc``, ``bcc`` and ``replyTo`` are taken as lists of addresses (the PHP and Java SDKs send
    them); empty ones are ignored.
    """
    _reject_unknown(payload, SEND_FIELDS + SEND_LIST_FIELDS, "send")
    lists = {name: _address_list(payload, name) for name in SEND_LIST_FIELDS}
    return SendRequest(
        sender=_required_email(payload, "from"),
        to=_required_email(payload, "to"),
        subject=_required_string(payload, "subject"),
        body=_required_string(payload, "body"),
        lists={name: addresses for name, addresses in lists.items() if addresses},
    )


def _parse_birthday(value: str) -> str:
    # Documented as DD/MM, yet the documented example sends 1990-01-01: accept both.
    match = _DAY_MONTH_RE.match(value)
    if match:
        day, month = int(match.group(1)), int(match.group(2))
        try:
            datetime.date(2000, month, day)  # a leap year, so 29/02 is valid
        except ValueError:
            raise InvalidRequest("'data.birthday' is not a valid DD/MM date") from None
        return value
    if _ISO_DATE_RE.match(value):
        try:
            datetime.date.fromisoformat(value)
        except ValueError:
            raise InvalidRequest("'data.birthday' is not a valid date") from None
        return value
    raise InvalidRequest("'data.birthday' must be DD/MM (or YYYY-MM-DD)")


def _parse_vip_level(value: Any) -> int:
    # Typed record<string, string>, yet documented as a number and sent as 1 in the example.
    # Bounded to 64 bits (the Go SDK's int): Python's int has no limit of its own, and text of
    # more than 4,300 digits could not even be converted.
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,19}", value.strip()):
        number = int(value.strip())
    if number is None or not -(2**63) <= number < 2**63:
        raise InvalidRequest(
            "'data.vipLevel' must be a whole number (or a string of digits) of 64 bits"
        )
    return number


def parse_contact_data(data: Any) -> dict[str, str | int]:
    """Validate the optional ``data`` record of a contact.

    ``null`` (C#'s SDK sends it when no data is given) and ``[]`` (PHP encodes an empty array so)
    mean no data.
    """
    if data is None or data == []:
        return {}
    if not isinstance(data, dict):
        raise InvalidRequest("'data' must be an object")
    _reject_unknown(data, CONTACT_DATA_FIELDS, "data")
    clean: dict[str, str | int] = {}
    for name, value in data.items():
        if name == "vipLevel":
            clean[name] = _parse_vip_level(value)
            continue
        if not isinstance(value, str):
            raise InvalidRequest(f"'data.{name}' must be a string")
        clean[name] = _parse_birthday(value) if name == "birthday" and value else value
    return clean


def parse_contact(payload: dict[str, Any]) -> ContactPayload:
    """Validate a save-contact payload: appId, emailAddress, optional status and data.

    The document marks ``status`` required, yet no official SDK can send it: a save without it
    is taken (``status`` None), one with a wrong value or type is refused.
    """
    _reject_unknown(payload, ("appId", "emailAddress", "status", "data"), "contact")
    app_id = _required_string(payload, "appId")
    email = _required_email(payload, "emailAddress")
    status = None
    if "status" in payload:
        status = _required_string(payload, "status")
        if status not in CONTACT_STATUSES:
            raise InvalidRequest(f"'status' must be one of {', '.join(CONTACT_STATUSES)}")
    return ContactPayload(app_id, email, status, parse_contact_data(payload.get("data")))


def _query(query: str) -> dict[str, str]:
    # A parameter given twice is ambiguous: refuse it rather than guess which one counts.
    parsed = parse_qs(query, keep_blank_values=True)
    repeated = sorted(name for name, values in parsed.items() if len(values) > 1)
    if repeated:
        raise InvalidRequest(f"parameter(s) given more than once: {', '.join(repeated)}")
    return {name: values[0] for name, values in parsed.items()}


def _positive_int(params: dict[str, str], name: str, default: int, maximum: int | None) -> int:
    # Absent, empty and 0 all mean the default: the Go, Java and C# SDKs send page=0&pageSize=0
    # when their caller gives no page.
    raw = params.get(name, "")
    if raw == "":
        return default
    # ASCII digits only, at most 9 of them: int() of thousands of digits raises.
    if not re.fullmatch(r"[0-9]{1,9}", raw):
        raise InvalidRequest(f"'{name}' must be a whole number below 1,000,000,000")
    value = int(raw)
    if value == 0:
        return default
    if value < 1 or (maximum is not None and value > maximum):
        bound = f"between 1 and {maximum}" if maximum is not None else "at least 1"
        raise InvalidRequest(f"'{name}' must be {bound}")
    return value


def _required_param(params: dict[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value.strip():
        raise InvalidRequest(f"query parameter '{name}' is required")
    return value


def parse_list_query(query: str) -> ListQuery:
    """Validate the contact-list query: appId required, page >= 1, pageSize 1..500.

    An absent, empty or zero ``page`` / ``pageSize`` is the documented default (1, 500).
    """
    params = _query(query)
    return ListQuery(
        app_id=_required_param(params, "appId"),
        page=_positive_int(params, "page", DEFAULT_PAGE, None),
        page_size=_positive_int(params, "pageSize", MAX_PAGE_SIZE, MAX_PAGE_SIZE),
    )


def parse_delete_query(query: str) -> DeleteQuery:
    """Validate the delete-contact query: appId and emailAddress required."""
    params = _query(query)
    return DeleteQuery(
        app_id=_required_param(params, "appId"),
        email=_required_param(params, "emailAddress"),
    )
