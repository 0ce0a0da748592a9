"""In-memory state of one sandbox: messages, contacts per appId, the request log and daily counts.

Nothing is persisted: a restart forgets everything. The store itself is not locked; the engine
serialises every access under its own lock, so that one request's checks and writes are atomic.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django_sendflare.sandbox.validation import CONTACT_DATA_FIELDS

# A log that grows without bound would make a long-running sandbox leak memory.
MAX_LOG_ENTRIES = 10_000
MAX_MESSAGES = 10_000


@dataclass
class Message:
    """One accepted ``POST /v1/send``."""

    request_id: str
    sender: str
    to: str
    subject: str
    body: str
    ts: int
    token_hint: str

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
        }


@dataclass
class Contact:
    """One contact of one appId."""

    email: str
    status: str
    register_date: str
    last_active_time: str
    data: dict[str, str | int] = field(default_factory=dict)

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


@dataclass
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
    contacts: dict[str, dict[str, Contact]] = field(default_factory=dict)
    log: list[LogEntry] = field(default_factory=list)
    sends_per_day: dict[tuple[str, str], int] = field(default_factory=dict)
    next_seq: int = 1

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
            self.contacts.setdefault(app_id, {})[key] = contact
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
