"""In-memory state of one sandbox: messages, contacts per appId, the request log and daily counts.

Nothing is persisted: a restart forgets everything. The store itself is not locked; the engine
serialises every access under its own lock, so that one request's checks and writes are atomic.

A million contacts fit (records are slotted; see benchmarks/sandbox_contacts.py for the figures),
and a listing reads page after page in time linear in the whole list: each
:class:`ContactBook` keeps its insertion order as one list, rebuilt only after a create or a
delete, so a page is a slice instead of a walk from the first contact.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django_sendflare.sandbox.validation import CONTACT_DATA_FIELDS

# A log that grows without bound would make a long-running sandbox leak memory.
MAX_LOG_ENTRIES = 10_000
MAX_MESSAGES = 10_000


@dataclass(slots=True)
class Message:
    """One accepted ``POST /v1/send``."""

    request_id: str
    sender: str
    to: str
    subject: str
    body: str
    ts: int
    token_hint: str
    #: The non-empty ``cc`` / ``bcc`` / ``replyTo`` lists of the request, recorded as given.
    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form used by the inspection API."""
        return {
            "id": self.request_id,
            "requestId": self.request_id,
            "from": self.sender,
            "to": self.to,
            "subject": self.subject,
            "body": self.body,
            "ts": self.ts,
            "receivedAt": _iso(self.ts),
            "token": self.token_hint,
            "cc": list(self.lists.get("cc", ())),
            "bcc": list(self.lists.get("bcc", ())),
            "replyTo": list(self.lists.get("replyTo", ())),
        }


@dataclass(slots=True)
class Contact:
    """One contact of one appId."""

    email: str
    status: str
    register_date: str
    last_active_time: str
    data: dict[str, str | int] = field(default_factory=dict)
    #: True when it was created without a ``status`` and took the sandbox's default.
    status_defaulted: bool = False

    def to_api(self) -> dict[str, Any]:
        """Return the flat object of the documented contact list (every field present)."""
        item: dict[str, Any] = {"emailAddress": self.email, "status": self.status}
        for name in CONTACT_DATA_FIELDS:
            default: str | int = 0 if name == "vipLevel" else ""
            item[name] = self.data.get(name, default)
        item.update(
            {
                "registerDate": self.register_date,
                "source": "api",
                "subscriptionExpireTime": "",
                "lastActiveTime": self.last_active_time,
            }
        )
        return item

    def to_inspection(self) -> dict[str, Any]:
        """The list endpoint's object, plus what only the sandbox knows (``statusDefaulted``)."""
        return {**self.to_api(), "statusDefaulted": self.status_defaulted}


class ContactBook:
    """The contacts of one appId, by :func:`contact_key`, in creation order."""

    __slots__ = ("_by_key", "_order")

    def __init__(self) -> None:
        """An empty book."""
        self._by_key: dict[str, Contact] = {}
        # The creation order as a list, for slicing pages; None after a create or a delete.
        self._order: list[Contact] | None = None

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Contact]:
        return iter(self._by_key.values())

    def get(self, key: str) -> Contact | None:
        """The contact with this key, or None."""
        return self._by_key.get(key)

    def add(self, key: str, contact: Contact) -> None:
        """Add a new contact at the end of the order."""
        if key == contact.email:
            key = contact.email  # one string for both: most addresses are lower case already
        self._by_key[key] = contact
        self._order = None

    def remove(self, key: str) -> bool:
        """Remove a contact; False when there was none."""
        if self._by_key.pop(key, None) is None:
            return False
        self._order = None
        return True

    def page(self, start: int, size: int) -> list[Contact]:
        """``size`` contacts from position ``start`` (0-based) of the creation order."""
        if self._order is None:
            self._order = list(self._by_key.values())
        return self._order[start : start + size]


@dataclass(slots=True)
class LogEntry:
    """One API request as the sandbox saw it."""

    seq: int
    ts: int
    method: str
    path: str
    query: str
    status: int | None
    code: int | None
    fault: str | None
    request_id: str | None
    token_hint: str

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form used by the inspection API."""
        return {
            "seq": self.seq,
            "ts": self.ts,
            "receivedAt": _iso(self.ts),
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "code": self.code,
            "fault": self.fault,
            "requestId": self.request_id,
            "token": self.token_hint,
        }


def _iso(ts_ms: int) -> str:
    return datetime.datetime.fromtimestamp(ts_ms / 1000, tz=datetime.timezone.utc).isoformat()


def contact_key(email: str) -> str:
    """Return the identity of a contact address within one appId.

    Addresses are compared case-insensitively (the whole address): most providers treat
    ``John@Example.com`` and ``john@example.com`` as one subscriber. The spelling given at creation
    is the one kept.
    """
    return email.strip().lower()


@dataclass
class Store:
    """Everything one sandbox remembers."""

    messages: list[Message] = field(default_factory=list)
    contacts: dict[str, ContactBook] = field(default_factory=dict)
    log: list[LogEntry] = field(default_factory=list)
    sends_per_day: dict[tuple[str, str], int] = field(default_factory=dict)
    next_seq: int = 1

    def book(self, app_id: str) -> ContactBook:
        """The contacts of ``app_id``, created empty when it has none yet."""
        book = self.contacts.get(app_id)
        if book is None:
            book = self.contacts[app_id] = ContactBook()
        return book

    def find(self, app_id: str, email: str) -> Contact | None:
        """The contact of ``app_id`` at ``email`` (compared by :func:`contact_key`), or None."""
        book = self.contacts.get(app_id)
        return book.get(contact_key(email)) if book is not None else None

    def remove(self, app_id: str, email: str) -> bool:
        """Delete the contact of ``app_id`` at ``email``; False when there was none."""
        book = self.contacts.get(app_id)
        return book is not None and book.remove(contact_key(email))

    def add_message(self, message: Message) -> None:
        """Record an accepted message (the oldest are forgotten past MAX_MESSAGES)."""
        self.messages.append(message)
        del self.messages[:-MAX_MESSAGES]

    def add_log(self, entry: LogEntry) -> None:
        """Record one API request (the oldest are forgotten past MAX_LOG_ENTRIES)."""
        self.log.append(entry)
        del self.log[:-MAX_LOG_ENTRIES]

    def take_seq(self) -> int:
        """Return the next request sequence number."""
        seq = self.next_seq
        self.next_seq += 1
        return seq

    def seed_contacts(self, lines: Iterable[str], *, today: str) -> int:
        """Load contacts straight in, one save-contact request body per JSON line; return how many.

        For measuring a full sync of a large list without first pushing it call by call
        (``--seed-contacts FILE``). Each line is ``{"appId", "emailAddress", "status", ...data}``
        as the save-contact endpoint takes it; a later line for an address replaces the earlier
        one. A line that is not such an object raises ``ValueError`` naming its number, and
        nothing of the file is loaded.
        """
        loaded: list[tuple[str, str, Contact]] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                body = json.loads(line)
            except ValueError as error:
                raise ValueError(f"line {number}: not JSON ({error})") from None
            if not isinstance(body, dict):
                raise ValueError(f"line {number}: not a JSON object")
            app_id, email, status = (
                str(body.get(name) or "").strip() for name in ("appId", "emailAddress", "status")
            )
            if not (app_id and email and status):
                raise ValueError(f"line {number}: appId, emailAddress and status are required")
            data = {
                k: v
                for k, v in body.items()
                if k in CONTACT_DATA_FIELDS and isinstance(v, str | int)
            }
            contact = Contact(
                email=email, status=status, register_date=today, last_active_time=today, data=data
            )
            loaded.append((app_id, contact_key(email), contact))
        for app_id, key, contact in loaded:
            self.book(app_id).add(key, contact)
        return len(loaded)

    def clear_messages(self) -> None:
        """Forget every message."""
        self.messages.clear()

    def clear_contacts(self, app_id: str | None = None) -> None:
        """Forget the contacts of one appId, or of all."""
        if app_id is None:
            self.contacts.clear()
        else:
            self.contacts.pop(app_id, None)

    def reset(self) -> None:
        """Forget everything."""
        self.messages.clear()
        self.contacts.clear()
        self.log.clear()
        self.sends_per_day.clear()
        self.next_seq = 1
