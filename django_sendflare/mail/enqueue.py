"""Storing messages in the queue, in the caller's database transaction.

Nothing here talks to the API: the messages are validated and converted by the same code as
``EmailBackend`` (:func:`django_sendflare.payload.build_requests`), then written as one
:class:`~.models.QueuedMessage` and one :class:`~.models.QueuedRecipient` per recipient. When
the caller's transaction rolls back, the rows go with it and nothing is ever sent.

How the rows are written depends on the database, never on how many messages there are:

* PostgreSQL: one statement for the whole batch, a ``send_mail()`` as a ``send_mass_mail()`` of
  10,000 (the messages in a data-modifying ``WITH``, the recipients joined to their ids, the
  varying fields as arrays). It is atomic by itself: outside a transaction it costs one round
  trip to the database instead of four (``BEGIN``, ``INSERT``, ``INSERT``, ``COMMIT``), which
  is most of the enqueue time of one message.
* Other databases: multi-row ``INSERT`` statements in a transaction, the messages first (their
  ids come back from the same statements), then the recipients of all of them, as many rows a
  statement as the database takes parameters (SQLite: 999, so 10,000 one-recipient messages are
  about 220 statements, not 20,000). A database that cannot return the ids of a bulk insert
  (MySQL, SQLite before 3.35) saves the messages one by one, the recipients still in bulk.

Model signals (``pre_save``, ``post_save``) are therefore not sent for these rows: the
backend's ``pre_send`` and ``post_send`` are the signals to use.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection, Sequence
from typing import Any

from django.db import connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from ..payload import SendRequest
from ..queue import db_alias as queue_db_alias
from .models import QueuedMessage, QueuedRecipient

logger = logging.getLogger(__name__)

#: The fields of a message and of a recipient that differ from one row of a batch to the next
#: (the others are defaults and timestamps, the same for the whole batch).
MESSAGE_FIELDS = ("from_email", "subject", "body")
RECIPIENT_FIELDS = ("message", "position", "email")

#: The most parameters of one statement where Django states no limit (it does for SQLite, 999):
#: the 16-bit count of MySQL's and PostgreSQL's protocols.
PROTOCOL_MAX_PARAMS = 2**16 - 1


#: The database the mail queue is written to.
db_alias = functools.partial(queue_db_alias, QueuedMessage)


def store_messages(
    batch: Sequence[Sequence[SendRequest]],
    *,
    mailer: str,
    on_commit: Callable[[int], None] | None = None,
) -> list[int]:
    """Store a batch of messages, all or none; return their ids, in order.

    Each message is given as its requests, one per recipient (all share from, subject and
    body). ``on_commit(message_id)`` runs for each once the caller's transaction commits (at
    once outside one).
    """
    if not batch:
        return []
    using = db_alias()
    connection = connections[using]
    if connection.vendor == "postgresql":
        # Atomic by itself: outside a transaction it needs none of its own.
        ids = _write_in_one_statement(connection, batch, mailer)
    else:
        # Inside the caller's transaction, no savepoint: a failure here marks the caller's
        # transaction for rollback, so a half-stored batch can never be committed.
        with transaction.atomic(using=using, savepoint=False):
            ids = _write_in_bulk(connection, batch, mailer)
    for message_id, requests in zip(ids, batch, strict=True):
        logger.debug("Sendflare: queued message %s to %d recipient(s)", message_id, len(requests))
        if on_commit is not None:
            transaction.on_commit(_bound(on_commit, message_id), using=using)
    return ids


def _new_message(requests: Sequence[SendRequest], mailer: str) -> QueuedMessage:
    first = requests[0]
    return QueuedMessage(
        mailer=mailer, from_email=first.from_email, subject=first.subject, body=first.body
    )


def _write_in_bulk(
    connection: BaseDatabaseWrapper, batch: Sequence[Sequence[SendRequest]], mailer: str
) -> list[int]:
    """The messages in multi-row ``INSERT`` statements, then the recipients of all; their ids."""
    messages = _Rows(connection, _new_message(batch[0], mailer), MESSAGE_FIELDS)
    if connection.features.can_return_rows_from_bulk_insert:
        for requests in batch:
            first = requests[0]
            messages.add(first.from_email, first.subject, first.body)
        ids = messages.insert(returning=True)
    else:  # MySQL, SQLite < 3.35: no ids from a bulk insert, so the messages one by one
        ids = []
        for requests in batch:
            message = _new_message(requests, mailer)
            message.save(using=connection.alias)
            ids.append(message.pk)
    recipients = _Rows(connection, QueuedRecipient(), RECIPIENT_FIELDS)
    for message_id, requests in zip(ids, batch, strict=True):
        for position, request in enumerate(requests):
            recipients.add(message_id, position, request.to)
    recipients.insert()
    return ids


class _Rows:
    """New rows of one model that differ only in a few fields, written in multi-row INSERTs.

    The other fields (defaults, timestamps) are converted once, from ``template``, as the ORM's
    own insert converts them (``pre_save``, then ``get_db_prep_save``): a batch of 10,000
    messages is not 120,000 conversions. The varying fields are strings and integers, which
    their fields store as given. A test compares the rows with those of the one statement.
    """

    def __init__(
        self, connection: BaseDatabaseWrapper, template: models.Model, varying: Sequence[str]
    ) -> None:
        self.connection = connection
        self.model = type(template)
        self.columns, self.defaults = _insert_values(connection, template)
        names = [field.name for field in _new_row_fields(self.model)]
        self.slots = [names.index(name) for name in varying]
        self.rows: list[list[Any]] = []

    def add(self, *values: Any) -> None:
        row = self.defaults.copy()
        for slot, value in zip(self.slots, values, strict=True):
            row[slot] = value
        self.rows.append(row)

    def insert(self, *, returning: bool = False) -> list[int]:
        """Insert the rows, as many a statement as the database takes; their new ids if asked.

        The ids are sorted: within one statement the sequence numbers the rows in the order of
        ``VALUES``, which ``RETURNING`` need not keep (SQLite says so).
        """
        opts = self.model._meta
        limit = self.connection.features.max_query_params or PROTOCOL_MAX_PARAMS
        per_statement = max(1, limit // len(self.columns))
        head = (
            f"INSERT INTO {_quoted(self.connection, opts.db_table)} "  # noqa: S608
            f"({', '.join(self.columns)}) VALUES "
        )
        tail = f" RETURNING {_quoted(self.connection, opts.pk.column)}" if returning else ""
        row = f"({_placeholders(self.columns)})"
        ids: list[int] = []
        with self.connection.cursor() as cursor:
            for start in range(0, len(self.rows), per_statement):
                chunk = self.rows[start : start + per_statement]
                # Only the model's own, quoted, names are formatted in; every value is a
                # parameter.
                cursor.execute(
                    head + ", ".join([row] * len(chunk)) + tail,
                    [value for values in chunk for value in values],
                )
                if returning:
                    ids.extend(sorted(int(pk) for (pk,) in cursor.fetchall()))
        return ids


def _write_in_one_statement(
    connection: BaseDatabaseWrapper, batch: Sequence[Sequence[SendRequest]], mailer: str
) -> list[int]:
    """Every message and recipient of ``batch`` in one PostgreSQL statement; their ids.

    The varying fields travel as arrays (``unnest``), a handful of parameters for any batch,
    the others once each, cast to their columns' types::

        WITH message AS (INSERT INTO messages (...) SELECT <defaults>, u.from_email, ...
                         FROM unnest(<arrays>) WITH ORDINALITY u ORDER BY u.n RETURNING id),
             numbered AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM message),
             recipient AS (INSERT INTO recipients (...) SELECT numbered.id, r.position, ...
                           FROM unnest(<arrays>) r JOIN numbered USING (n))
        SELECT id FROM numbered ORDER BY n

    The sequence numbers the messages in the order they are inserted (``ORDER BY u.n``), so
    the n-th id is the n-th message's. Defaults and timestamps are converted as the ORM's own
    insert converts them (``pre_save``, then ``get_db_prep_save``), so the rows are the ones
    :func:`_write_in_bulk` writes (a test compares the two).
    """
    message_columns, message_values = _insert_values(
        connection, _new_message(batch[0], mailer), skip=MESSAGE_FIELDS
    )
    recipient_columns, recipient_values = _insert_values(
        connection, QueuedRecipient(), skip=RECIPIENT_FIELDS
    )
    message_numbers, positions, emails = [], [], []
    for number, requests in enumerate(batch, start=1):
        for position, request in enumerate(requests):
            message_numbers.append(number)
            positions.append(position)
            emails.append(request.to)
    q = functools.partial(_quoted, connection)
    message_table, recipient_table = (
        q(QueuedMessage._meta.db_table),
        q(QueuedRecipient._meta.db_table),
    )
    varying = ", ".join(_columns(connection, QueuedMessage, MESSAGE_FIELDS))
    per_recipient = ", ".join(_columns(connection, QueuedRecipient, RECIPIENT_FIELDS))
    # Only the models' own table and column names and types are formatted in, quoted; every
    # value is a query parameter.
    sql = (
        f"WITH message AS (INSERT INTO {message_table} ({', '.join(message_columns)}, {varying}) "  # noqa: S608
        f"SELECT {_casts(connection, QueuedMessage, MESSAGE_FIELDS)}, "
        "u.from_email, u.subject, u.body FROM unnest(%s::text[], %s::text[], %s::text[]) "
        "WITH ORDINALITY AS u(from_email, subject, body, n) ORDER BY u.n "
        f"RETURNING {q(QueuedMessage._meta.pk.column)} AS id), "
        "numbered AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM message), "
        f"recipient AS (INSERT INTO {recipient_table} "
        f"({per_recipient}, {', '.join(recipient_columns)}) "
        "SELECT numbered.id, r.position, r.email, "
        f"{_casts(connection, QueuedRecipient, RECIPIENT_FIELDS)} "
        "FROM unnest(%s::bigint[], %s::integer[], %s::text[]) AS r(n, position, email) "
        "JOIN numbered USING (n)) "
        "SELECT id FROM numbered ORDER BY n"
    )
    firsts = [requests[0] for requests in batch]
    params = [
        *message_values,
        [first.from_email for first in firsts],
        [first.subject for first in firsts],
        [first.body for first in firsts],
        *recipient_values,
        message_numbers,
        positions,
        emails,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [int(message_id) for (message_id,) in cursor.fetchall()]


def _columns(
    connection: BaseDatabaseWrapper, model: type[models.Model], names: Sequence[str]
) -> list[str]:
    """The quoted columns of ``model``'s fields ``names``."""
    by_name = {field.name: field.column for field in model._meta.concrete_fields}
    return [_quoted(connection, by_name[name]) for name in names]


def _casts(
    connection: BaseDatabaseWrapper, model: type[models.Model], skip: Collection[str]
) -> str:
    """``%s::type`` for each field of a new row but ``skip``: an untyped value has no column."""
    return ", ".join(
        f"%s::{field.db_type(connection)}" for field in _new_row_fields(model, skip=skip)
    )


def _insert_values(
    connection: BaseDatabaseWrapper, instance: models.Model, *, skip: Collection[str] = ()
) -> tuple[list[str], list[Any]]:
    """The quoted columns and database values of a new ``instance`` (primary key excluded)."""
    fields = _new_row_fields(type(instance), skip=skip)
    columns = [_quoted(connection, field.column) for field in fields]
    values = [
        field.get_db_prep_save(field.pre_save(instance, True), connection=connection)
        for field in fields
    ]
    return columns, values


def _new_row_fields(model: type[models.Model], *, skip: Collection[str] = ()) -> list[Any]:
    """The fields an INSERT of a new ``model`` row gives values for, in order."""
    opts = model._meta
    return [
        field for field in opts.concrete_fields if field is not opts.pk and field.name not in skip
    ]


def _quoted(connection: BaseDatabaseWrapper, name: str | None) -> str:
    # Concrete fields and tables always have a name: None is the stubs' type, not a case.
    return connection.ops.quote_name(str(name))


def _placeholders(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def _bound(on_commit: Callable[[int], None], message_id: int) -> Callable[[], None]:
    return lambda: on_commit(message_id)
