"""Storing messages in the queue, in the caller's database transaction.

Nothing here talks to the API: the messages are validated and converted by the same code as
``EmailBackend`` (:func:`django_sendflare.payload.build_requests`), then written as one
:class:`~.models.QueuedMessage` and one :class:`~.models.QueuedRecipient` per recipient. When
the caller's transaction rolls back, the rows go with it and nothing is ever sent.

On PostgreSQL a message and its recipients are written by one ``INSERT`` statement (the message
in a data-modifying ``WITH``), which is atomic by itself: a ``send_mail()`` outside a
transaction costs one round trip to the database instead of four (``BEGIN``, two ``INSERT``,
``COMMIT``), which is most of the enqueue time there. Other databases use the ORM in a
transaction. Model signals (``pre_save``, ``post_save``) are therefore not sent for these rows
on PostgreSQL: the backend's ``pre_send`` and ``post_send`` are the signals to use.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection, Sequence
from contextlib import nullcontext
from typing import Any

from django.db import connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from ..payload import SendRequest
from ..queue import db_alias as queue_db_alias
from .models import QueuedMessage, QueuedRecipient

logger = logging.getLogger(__name__)


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
    using = db_alias()
    connection = connections[using]
    write = _write_in_one_statement if connection.vendor == "postgresql" else _write_with_orm
    # Inside the caller's transaction, no savepoint: a failure here marks the caller's
    # transaction for rollback, so a half-stored batch can never be committed. Outside one, a
    # single statement needs no transaction of its own (it is atomic), several do.
    one_statement = write is _write_in_one_statement and len(batch) == 1
    with nullcontext() if one_statement else transaction.atomic(using=using, savepoint=False):
        ids = [write(connection, _new_message(requests, mailer), requests) for requests in batch]
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


def _recipients(requests: Sequence[SendRequest]) -> list[QueuedRecipient]:
    return [
        QueuedRecipient(position=position, email=request.to)
        for position, request in enumerate(requests)
    ]


def _write_with_orm(
    connection: BaseDatabaseWrapper, message: QueuedMessage, requests: Sequence[SendRequest]
) -> int:
    message.save(using=connection.alias)
    recipients = _recipients(requests)
    for recipient in recipients:
        recipient.message = message
    QueuedRecipient.objects.using(connection.alias).bulk_create(recipients)
    return message.pk


def _write_in_one_statement(
    connection: BaseDatabaseWrapper, message: QueuedMessage, requests: Sequence[SendRequest]
) -> int:
    """``WITH m AS (INSERT message RETURNING id) INSERT recipients ((SELECT id FROM m), ...)``.

    Columns and values come from the models' fields, as the ORM's own insert takes them
    (``pre_save`` fills the timestamps, ``get_db_prep_save`` converts), so the rows are the
    ones :func:`_write_with_orm` writes (a test compares the two).
    """
    message_columns, params = _insert_values(connection, message)
    recipient_columns: list[str] = []
    for recipient in _recipients(requests):
        recipient_columns, values = _insert_values(connection, recipient, skip={"message"})
        params.extend(values)
    recipient_row = f"((SELECT id FROM message), {_placeholders(recipient_columns)})"  # noqa: S608
    message_table = _quoted(connection, QueuedMessage._meta.db_table)
    recipient_table = _quoted(connection, QueuedRecipient._meta.db_table)
    message_pk = _quoted(connection, QueuedMessage._meta.pk.column)
    foreign_key = _quoted(connection, QueuedRecipient.message.field.column)
    # Only the models' own table and column names are formatted in, quoted; every value is a
    # query parameter.
    sql = (
        f"WITH message AS (INSERT INTO {message_table} ({', '.join(message_columns)}) "  # noqa: S608
        f"VALUES ({_placeholders(message_columns)}) RETURNING {message_pk} AS id) "
        f"INSERT INTO {recipient_table} ({foreign_key}, {', '.join(recipient_columns)}) "
        f"VALUES {', '.join([recipient_row] * len(requests))} RETURNING {foreign_key}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (message_id,) = cursor.fetchone()
    return int(message_id)


def _insert_values(
    connection: BaseDatabaseWrapper, instance: models.Model, *, skip: Collection[str] = ()
) -> tuple[list[str], list[Any]]:
    """The quoted columns and database values of a new ``instance`` (primary key excluded)."""
    opts = instance._meta
    fields = [
        field for field in opts.concrete_fields if field is not opts.pk and field.name not in skip
    ]
    columns = [_quoted(connection, field.column) for field in fields]
    values = [
        field.get_db_prep_save(field.pre_save(instance, True), connection=connection)
        for field in fields
    ]
    return columns, values


def _quoted(connection: BaseDatabaseWrapper, name: str | None) -> str:
    # Concrete fields and tables always have a name: None is the stubs' type, not a case.
    return connection.ops.quote_name(str(name))


def _placeholders(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def _bound(on_commit: Callable[[int], None], message_id: int) -> Callable[[], None]:
    return lambda: on_commit(message_id)
