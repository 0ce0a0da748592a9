"""The mapping of a user to a Sendflare contact.

A :class:`ContactAdapter` turns a user of any ``AUTH_USER_MODEL`` into a :class:`Contact` value and
says whether the user is synced at all. Projects subclass it and name the subclass in
``SENDFLARE["CONTACT_ADAPTER"]``::

    class MyAdapter(ContactAdapter):
        fields = ("firstName", "lastName", "language", "birthday")

        def get_data(self, user):
            return {
                "firstName": user.first_name,
                "lastName": user.last_name,
                "language": user.profile.language,
                "birthday": user.profile.birthday,  # a date: sent as DD/MM
            }

        def get_status(self, user):
            return "Confirmed" if user.profile.newsletter else "Unsubscribed"
"""

from __future__ import annotations

import datetime
import decimal
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Model, Q, QuerySet
from django.utils.module_loading import import_string

from ..client import CONTACT_STATUSES
from ..conf import get_settings

#: The longest address SMTP (RFC 5321) and so the API can carry.
MAX_ADDRESS_LENGTH = 254

#: Every data field the API documents for a contact.
DATA_FIELDS: tuple[str, ...] = (
    "language",
    "firstName",
    "lastName",
    "phoneNumber",
    "birthday",
    "company",
    "vipLevel",
    "amount",
)

CONFIRMED = "Confirmed"
UNSUBSCRIBED = "Unsubscribed"


def normalize_email(email: object) -> str:
    """The form addresses are compared in: trimmed and lower-cased ("" for no address)."""
    if not isinstance(email, str):
        return ""
    return email.strip().lower()


def format_value(name: str, value: Any) -> str:
    """A data value as the API's string ("" for a missing value).

    Dates become DD/MM for ``birthday`` (the API keeps no year) and ISO dates otherwise; numbers
    and Decimals their plain text (``vipLevel`` 1 -> "1", ``amount`` Decimal("9.50") -> "9.50").
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        # bool is an int: True would otherwise become "True" by str() and 1 by int() elsewhere.
        return "1" if value else "0"
    if isinstance(value, datetime.datetime):
        value = value.date()
    if isinstance(value, datetime.date):
        return value.strftime("%d/%m") if name == "birthday" else value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    return str(value).strip()


@dataclass(frozen=True)
class Contact:
    """What one user should look like in Sendflare.

    ``email`` is the user's address, trimmed (its case is kept; :attr:`key` is what addresses
    are compared by). ``data`` holds the adapter's fields as strings, "" for an empty value.
    """

    email: str
    status: str = CONFIRMED
    data: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.status not in CONTACT_STATUSES:
            raise ValueError(
                f"A contact status must be one of {CONTACT_STATUSES}, not {self.status!r}."
            )
        unknown = sorted(set(self.data) - set(DATA_FIELDS))
        if unknown:
            raise ValueError(
                f"Unknown contact data field(s) {unknown}: the API knows {list(DATA_FIELDS)}."
            )
        object.__setattr__(self, "email", self.email.strip())
        cleaned = {name: format_value(name, self.data[name]) for name in sorted(self.data)}
        object.__setattr__(self, "data", MappingProxyType(cleaned))

    @property
    def key(self) -> str:
        """The normalised address (trimmed, lower case)."""
        return normalize_email(self.email)

    def filled_data(self) -> dict[str, str]:
        """The data fields that have a value: what a create sends."""
        return {name: value for name, value in self.data.items() if value != ""}


class ContactAdapter:
    """Maps a user to a contact. The default sends what the stock ``User`` has.

    That is: the address (from ``get_email_field_name()``), status Confirmed, ``firstName`` and
    ``lastName``; and it syncs active users that have an address. Override :attr:`fields` and
    :meth:`get_data` to send more, :meth:`get_status` to change the status rule,
    :meth:`should_sync` to choose the users.
    """

    #: The data fields this adapter manages. Only these are compared and sent; the others are
    #: left as they are in Sendflare (the default adapter never touches phoneNumber, say).
    fields: tuple[str, ...] = ("firstName", "lastName")
    #: A save that writes only these fields (``save(update_fields=...)``) records no change:
    #: every login saves ``last_login``, which no contact carries.
    ignore_update_fields: frozenset[str] = frozenset({"last_login", "password"})

    def get_queryset(self) -> QuerySet[Any]:
        """The users the full sync reads (add ``select_related`` here for :meth:`get_data`).

        Filter users out with :meth:`should_sync`, not here: delivery also loads users through
        this queryset, and a user it cannot find is treated as deleted.
        """
        return get_user_model()._default_manager.all()

    def get_email(self, user: Model) -> str:
        """The user's address, trimmed ("" when it has none)."""
        name = type(user).get_email_field_name()  # type: ignore[attr-defined]
        value = getattr(user, name, "")
        return value.strip() if isinstance(value, str) else ""

    def should_sync(self, user: Model) -> bool:
        """Whether the user has a contact at all: active users with an address by default."""
        return bool(getattr(user, "is_active", True)) and bool(self.get_email(user))

    def get_status(self, user: Model) -> str:
        """``"Confirmed"`` or ``"Unsubscribed"``; the API applies it when it creates the contact."""
        return CONFIRMED

    def get_data(self, user: Model) -> Mapping[str, Any]:
        """The data fields of :attr:`fields` (values may be str, int, Decimal, date or None)."""
        return {
            "firstName": getattr(user, "first_name", ""),
            "lastName": getattr(user, "last_name", ""),
        }

    def to_contact(self, user: Model) -> Contact:
        """The contact the user should have. Raises ValueError on an invalid mapping."""
        data = self.get_data(user)
        extra = sorted(set(data) - set(self.fields))
        if extra:
            raise ValueError(
                f"{type(self).__name__}.get_data() returned {extra}, which are not in its fields "
                f"{list(self.fields)}: add them to fields."
            )
        # Every managed field is present ("" when empty): an empty value clears a stale one.
        values = {name: format_value(name, data.get(name)) for name in self.fields}
        email = self.get_email(user)
        if len(email) > MAX_ADDRESS_LENGTH or any(ord(c) < 32 for c in email):
            # Django's EmailField lets both through; the API would store what no mail reaches.
            raise ValueError(
                f"The address {email[:60]!r} cannot be a contact's address: it is longer than "
                f"{MAX_ADDRESS_LENGTH} characters or holds a control character (NUL, CR, LF...)."
            )
        return Contact(email=email, status=self.get_status(user), data=values)

    def changed_since(self, queryset: QuerySet[Any], since: datetime.datetime) -> QuerySet[Any]:
        """The users of ``queryset`` that may have changed since ``since`` (``--since``).

        The stock ``User`` has no modification time: the default takes users who joined or
        logged in since then. Override this when your user model has an ``updated_at``.
        """
        model = queryset.model
        names = {f.name for f in model._meta.get_fields()}
        condition = Q()
        for name in ("updated_at", "modified", "date_joined", "last_login"):
            if name in names:
                condition |= Q(**{f"{name}__gte": since})
        if not condition:
            raise ValueError(
                f"{type(self).__name__}.changed_since(): {model.__name__} has no date field; "
                "override changed_since() to use --since."
            )
        return queryset.filter(condition)


_adapters: dict[str, ContactAdapter] = {}
_adapters_lock = threading.Lock()


def get_adapter(path: str | None = None) -> ContactAdapter:
    """The adapter named by ``SENDFLARE["CONTACT_ADAPTER"]`` (or ``path``), built once."""
    if path is None:
        path = get_settings().contact_adapter_path
    with _adapters_lock:
        adapter = _adapters.get(path)
        if adapter is None:
            adapter = import_string(path)()
            _adapters[path] = adapter
        return adapter
