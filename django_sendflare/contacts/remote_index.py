"""The full sync's working set, on disk: remote contacts by address, and the addresses seen.

A full sync compares every user with every remote contact. Held in Python objects, the remote
list costs about 0.7 KB a contact (77 MiB for 100,000), so memory would grow with the list. This
index keeps it in a temporary SQLite file instead (SQLite's page cache is bounded), and answers
a chunk of users' addresses at a time: memory stays flat however many users and contacts there
are. The file is deleted by :meth:`RemoteIndex.close`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator

from .remote import RemoteContact

# SQLite's default limit on the variables of one statement is 999 before 3.32.
_QUERY_CHUNK = 900


class RemoteIndex:
    """Remote contacts by normalised address (the first one wins), and the local addresses seen."""

    def __init__(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="sendflare-sync-")
        self._db = sqlite3.connect(os.path.join(self._directory.name, "index.sqlite3"))
        # A scratch file: no journal, no fsync.
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute(
            "CREATE TABLE remote (key TEXT PRIMARY KEY, email TEXT, status TEXT, data TEXT)"
        )
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, user_key TEXT, kind TEXT)")
        #: Remote contacts added, duplicates included.
        self.count = 0

    def add(self, contacts: Iterable[RemoteContact]) -> None:
        """Add remote contacts; an address already present keeps its first contact."""
        rows = [(c.key, c.email, c.status, json.dumps(c.data)) for c in contacts]
        self.count += len(rows)
        self._db.executemany("INSERT OR IGNORE INTO remote VALUES (?, ?, ?, ?)", rows)

    def remote_for(self, keys: Iterable[str]) -> dict[str, RemoteContact]:
        """The remote contacts of these addresses (those that have one)."""
        found: dict[str, RemoteContact] = {}
        for chunk in _chunks(list(keys)):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, email, status, data FROM remote WHERE key IN ({marks})",  # noqa: S608 - placeholders only
                chunk,
            )
            for key, email, status, data in rows:
                found[key] = _remote_contact(email, status, data)
        return found

    def seen_for(self, keys: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Address -> (user_key, kind) of the addresses that earlier users already had."""
        found: dict[str, tuple[str, str]] = {}
        for chunk in _chunks(list(keys)):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, user_key, kind FROM seen WHERE key IN ({marks})",  # noqa: S608 - placeholders only
                chunk,
            )
            for key, user_key, kind in rows:
                found[key] = (user_key, kind)
        return found

    def mark_seen(self, entries: Iterable[tuple[str, str, str]]) -> None:
        """Record ``(address, user_key, kind)`` of users compared (the first user of each)."""
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", entries)

    def unseen_remote(self) -> Iterator[RemoteContact]:
        """Remote contacts whose address no user had, in the order the API listed them."""
        rows = self._db.execute(
            "SELECT email, status, data FROM remote "
            "WHERE key NOT IN (SELECT key FROM seen) ORDER BY rowid"
        )
        for email, status, data in rows:
            yield _remote_contact(email, status, data)

    def close(self) -> None:
        """Delete the file."""
        self._db.close()
        self._directory.cleanup()

    def __enter__(self) -> RemoteIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _remote_contact(email: str, status: str, data: str) -> RemoteContact:
    return RemoteContact(email, status, tuple((name, value) for name, value in json.loads(data)))


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _QUERY_CHUNK):
        yield items[start : start + _QUERY_CHUNK]
