"""Reading the contact list: the one listing loop, and the two ways it is used.

:func:`iter_listing` walks the list page after page (the client's ``iter_contacts``, which
retries each page on transient errors) and turns a failure into :class:`ListingFailed`, never
raw. :func:`read_listing` reads the whole list for a full sync, into a
:class:`~.remote_index.RemoteIndex` on disk. :class:`ListingScan` reads it for the addresses a
delivery batch asks about, once, stopping as soon as every address is found.
:class:`IndexView` answers from a full sync's index, falling back to a scan for what a partial
listing cannot answer.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Generator, Iterable
from dataclasses import dataclass, field

from ..client import MAX_PAGE_SIZE, SendflareClient
from .adapter import normalize_email
from .remote import Facts, RemoteContact
from .remote_index import RemoteIndex
from .results import ListingFailed, LiveReadFailed, listing_failure

logger = logging.getLogger(__name__)


def iter_listing(
    client: SendflareClient, *, app_id: str, fields: Iterable[str], page_size: int = MAX_PAGE_SIZE
) -> Generator[RemoteContact, None, None]:
    """Every listed contact, keeping only what is compared; raises :class:`ListingFailed`."""
    fields = tuple(fields)
    try:
        for entry in client.iter_contacts(app_id=app_id, page_size=page_size):
            yield RemoteContact.from_api(entry, fields)
    except Exception as error:
        raise listing_failure(error) from error


class SyncAborted(Exception):
    """The full sync cannot go on (the contact list cannot be read at all)."""


@dataclass
class RemoteListing:
    """The contacts read from the API (in a :class:`RemoteIndex`), and whether all were read."""

    index: RemoteIndex = field(default_factory=RemoteIndex)
    page_size: int = MAX_PAGE_SIZE
    #: Set when a page failed: the contacts after it are unknown (not absent).
    error: str = ""

    @property
    def complete(self) -> bool:
        return not self.error

    @property
    def pages_read(self) -> int:
        return max(1, math.ceil(self.index.count / self.page_size)) if self.index.count else 0

    @property
    def errors(self) -> list[str]:
        return [self.error] if self.error else []


def read_listing(
    client: SendflareClient,
    *,
    app_id: str,
    fields: Iterable[str],
    page_size: int = MAX_PAGE_SIZE,
    on_page: Callable[[int, int | None], None] | None = None,
) -> RemoteListing:
    """Read the whole contact list for a full sync.

    A page that still fails ends the read: what was read is kept, and the listing is marked
    incomplete, so that nothing missing from it is pruned or taken as absent (I4). Raises
    :class:`SyncAborted` when nothing could be read, or on an account-level error.
    """
    listing = RemoteListing(page_size=page_size)
    batch: list[RemoteContact] = []
    try:
        for contact in iter_listing(client, app_id=app_id, fields=fields, page_size=page_size):
            batch.append(contact)
            if len(batch) == page_size:
                listing.index.add(batch)
                batch = []
                if on_page is not None:
                    on_page(listing.index.count, None)
    except ListingFailed as failure:
        listing.index.add(batch)
        logger.warning("Sendflare: the contact list could not be read to the end: %s", failure)
        if failure.account_level or listing.index.count == 0:
            listing.index.close()
            raise SyncAborted(f"The contact list cannot be read: {failure.error}") from None
        listing.error = f"after {listing.index.count} contact(s): {failure.error}"
        return listing
    listing.index.add(batch)
    return listing


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
        listing = iter_listing(
            self.client, app_id=self.app_id, fields=self.fields, page_size=self.page_size
        )
        try:
            for contact in listing:
                self.contacts_read += 1
                if contact.key in wanted:
                    self._found[contact.key] = contact
                    wanted.discard(contact.key)
                    if not wanted:
                        return
        except ListingFailed as failure:
            if failure.account_level:
                raise  # every other user would fail the same way: the run stops
            self._failure = f"the contact list could not be read: {failure.error}"
            raise LiveReadFailed(self._failure) from failure
        finally:
            listing.close()
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
