"""What Sendflare holds, as far as one run knows it: remote contacts and views of the listing.

The API has no single-contact read: the only way to learn a contact's live status is the
listing. A *view* answers "what is at these addresses?" with three kinds of answer, and the
difference matters (I4: partial knowledge never overwrites facts):

* a :class:`RemoteContact`: the address is there, with this status and data;
* ``None``: the address is known to be absent (the whole listing was read without it);
* no entry at all: unknown (the page that would hold it failed, or it was not looked for).

:class:`ListingScan` reads the listing for the addresses it is asked about, once for a whole
delivery batch, stopping as soon as every address is found. :class:`IndexView` answers from a
full sync's :class:`~.remote_index.RemoteIndex`, falling back to a scan for what a partial
listing cannot answer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..client import MAX_PAGE_SIZE, SendflareClient
from ..exceptions import SendflareAPIError
from .adapter import Contact, format_value, normalize_email
from .results import LiveReadFailed

if TYPE_CHECKING:
    from .remote_index import RemoteIndex

logger = logging.getLogger(__name__)

_ISO_DATE = re.compile(r"^\d{4}-(\d{2})-(\d{2})")

#: What a view knows of some addresses: normalised address -> contact, or None when known absent.
Facts = dict[str, "RemoteContact | None"]


def comparable(name: str, value: Any) -> str:
    """A remote or local data value in the form both sides are compared in.

    The API documents ``birthday`` as DD/MM yet its example returns 1990-01-01: both mean the
    same day of the year. Numbers come back as numbers (``vipLevel``): compared as text.
    """
    text = format_value(name, value)
    if name == "birthday":
        match = _ISO_DATE.match(text)
        if match:
            return f"{match.group(2)}/{match.group(1)}"
    return text


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


class ListingScan:
    """Reads the listing for the addresses asked about, at most once per set of addresses.

    Register every address a batch will need with :meth:`want` first: the first
    :meth:`lookup` then reads the listing once for all of them, page after page (the client's
    :meth:`~django_sendflare.client.SendflareClient.iter_contacts`), and stops as soon as every
    wanted address is found. Reading to the end without finding one proves it absent.
    A failed read raises :class:`LiveReadFailed` for this lookup and every later one of this
    scan (one outage costs one failed read per batch, not one per user).
    """

    def __init__(
        self,
        client: SendflareClient,
        *,
        app_id: str,
        fields: Iterable[str],
        page_size: int = MAX_PAGE_SIZE,
    ) -> None:
        self.client = client
        self.app_id = app_id
        self.fields = tuple(fields)
        self.page_size = page_size
        self._wanted: set[str] = set()
        self._found: dict[str, RemoteContact] = {}
        self._complete = False
        self._failure = ""
        #: Contacts read, and reads of the listing started (for the reports and benchmarks).
        self.contacts_read = 0
        self.scans = 0

    def want(self, addresses: Iterable[str]) -> None:
        """Addresses a later :meth:`lookup` of this batch may ask about."""
        self._wanted.update(filter(None, map(normalize_email, addresses)))

    def known(self, addresses: Iterable[str]) -> Facts:
        """What is known of these addresses without reading anything."""
        facts: Facts = {}
        for key in filter(None, map(normalize_email, addresses)):
            if key in self._found:
                facts[key] = self._found[key]
            elif self._complete:
                facts[key] = None
        return facts

    def lookup(self, addresses: Collection[str]) -> Facts:
        """What is at these addresses, reading the listing if needed; raises LiveReadFailed."""
        keys = set(filter(None, map(normalize_email, addresses)))
        facts = self.known(keys)
        missing = keys - set(facts)
        if not missing:
            return facts
        if self._failure:
            raise LiveReadFailed(self._failure)
        self._wanted |= missing
        self._scan()
        return self.known(keys)

    def _scan(self) -> None:
        wanted = self._wanted - set(self._found)
        self.scans += 1
        try:
            for entry in self.client.iter_contacts(app_id=self.app_id, page_size=self.page_size):
                self.contacts_read += 1
                contact = RemoteContact.from_api(entry, self.fields)
                if contact.key in wanted:
                    self._found[contact.key] = contact
                    wanted.discard(contact.key)
                    if not wanted:
                        return
        except SendflareAPIError as error:
            if error.account_level:
                raise
            self._failure = f"the contact list could not be read: {error}"
            raise LiveReadFailed(self._failure) from error
        except Exception as error:
            # A limiter or library failure: transient too, and never raw to our caller.
            self._failure = f"the contact list could not be read ({type(error).__name__})"
            logger.warning("Sendflare: reading the contact list failed: %r", error)
            raise LiveReadFailed(self._failure) from None
        self._complete = True


class IndexView:
    """A full sync's listing (in a :class:`RemoteIndex`), for the reconciliation of its users.

    When the listing is complete, an address it lacks is absent. When a page failed, such an
    address is unknown: :meth:`known` says nothing of it, and :meth:`lookup` asks ``fallback``
    (a :class:`ListingScan`) for it.
    """

    def __init__(self, index: RemoteIndex, *, complete: bool, fallback: ListingScan) -> None:
        self.index = index
        self.complete = complete
        self.fallback = fallback

    def want(self, addresses: Iterable[str]) -> None:
        """Nothing to prepare: the index is read already."""

    def known(self, addresses: Iterable[str]) -> Facts:
        keys = set(filter(None, map(normalize_email, addresses)))
        found = self.index.remote_for(keys)
        facts: Facts = dict(found)
        if self.complete:
            facts.update({key: None for key in keys - set(found)})
        else:
            facts.update(self.fallback.known(keys - set(found)))
        return facts

    def lookup(self, addresses: Collection[str]) -> Facts:
        keys = set(filter(None, map(normalize_email, addresses)))
        facts = self.known(keys)
        missing = keys - set(facts)
        if missing:
            facts.update(self.fallback.lookup(missing))
        return facts
