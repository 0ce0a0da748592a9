"""What Sendflare holds, as values: a remote contact, and what a view of the listing knows.

The API has no single-contact read: the only way to learn a contact's live status is the
listing (:mod:`.listing` reads it). A *view* answers "what is at these addresses?" with three
kinds of answer, and the difference matters (I4: partial knowledge never overwrites facts):

* a :class:`RemoteContact`: the address is there, with this status and data;
* ``None``: the address is known to be absent (the whole listing was read without it);
* no entry at all: unknown (the page that would hold it failed, or it was not looked for).
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .adapter import Contact, format_value, normalize_email

_ISO_DATE = re.compile(r"^\d{4}-(\d{2})-(\d{2})")

#: What a view knows of some addresses: normalised address -> contact, or None when known absent.
Facts = dict[str, "RemoteContact | None"]


#: Fields whose values are numbers, whether the API lists them as JSON numbers or as strings.
_NUMERIC_FIELDS = frozenset({"vipLevel", "amount"})


def comparable(name: str, value: Any) -> str:
    """A remote or local data value in the form both sides are compared in.

    The API documents ``birthday`` as DD/MM yet its example returns 1990-01-01: both mean the
    same day of the year. ``vipLevel`` is a number in the document's example and a string in
    the SDKs' models, and ``amount`` a string of a number: 2, 2.0, "2" and "02" are one value,
    as are 9.5 and "9.50".
    """
    text = format_value(name, value)
    if name == "birthday":
        match = _ISO_DATE.match(text)
        if match:
            return f"{match.group(2)}/{match.group(1)}"
    if name in _NUMERIC_FIELDS:
        return _number_text(text)
    return text


def _number_text(text: str) -> str:
    """A number's shortest plain form ("9.50" -> "9.5"); other text unchanged."""
    try:
        number = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return text
    # A huge exponent ("1e999999999") would expand to a billion digits: keep such text as is.
    if not number.is_finite() or abs(number.adjusted()) > 40:
        return text
    return format(number.normalize(), "f")


@dataclass(frozen=True, slots=True)
class RemoteContact:
    """The parts of a remote contact a sync compares: address, status, the managed data fields."""

    email: str
    status: str
    data: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_api(cls, entry: Mapping[str, Any], fields: Iterable[str]) -> RemoteContact:
        """Keep only what is compared (a list of 100,000 contacts stays small)."""
        data = tuple((name, comparable(name, entry.get(name))) for name in fields)
        status = entry.get("status")
        return cls(
            email=str(entry.get("emailAddress", "")).strip(),
            status=status if isinstance(status, str) else "",
            data=data,
        )

    @property
    def key(self) -> str:
        return normalize_email(self.email)

    def value(self, name: str) -> str:
        for field_name, value in self.data:
            if field_name == name:
                return value
        return ""

    def changes(self, contact: Contact) -> tuple[tuple[str, str, str], ...]:
        """(field, remote value, local value) of each of the contact's fields that differs."""
        return tuple(
            (name, self.value(name), value)
            for name, value in contact.data.items()
            if comparable(name, value) != self.value(name)
        )


class RemoteView(Protocol):
    """What a run knows of Sendflare's contacts: a :class:`ListingScan` or an :class:`IndexView`."""

    def want(self, addresses: Iterable[str]) -> None: ...

    def known(self, addresses: Iterable[str]) -> Facts: ...

    def lookup(self, addresses: Collection[str]) -> Facts: ...
