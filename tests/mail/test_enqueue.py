"""Storing queued mail: one statement on PostgreSQL, the ORM's rows, all or nothing everywhere."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.mail import EmailMessage
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from django_sendflare.mail import enqueue
from django_sendflare.models import QueuedMessage, QueuedRecipient
from django_sendflare.payload import build_requests

pytestmark = pytest.mark.django_db(transaction=True)

# Fields every new row gets from the clock or the sequence, compared apart.
GENERATED = {"id", "message", "created_at", "updated_at", "next_attempt_at"}


def snapshot(message_id: int) -> tuple[dict, list[dict]]:
    message = QueuedMessage.objects.get(pk=message_id)
    recipients = QueuedRecipient.objects.filter(message=message).order_by("position")
    return (
        _without_generated(message),
        [_without_generated(recipient) for recipient in recipients],
    )


def _without_generated(row) -> dict:
    fields = {f.name for f in row._meta.concrete_fields} - GENERATED
    return {name: getattr(row, name) for name in sorted(fields)}


@pytest.mark.parametrize("in_transaction", [False, True])
def test_a_three_recipient_message_costs_at_most_six_queries(queued_backend, in_transaction):
    # Issue 17's budget, on every database the suite runs on (SQLite, and PostgreSQL with
    # DATABASE_URL): the message, its recipients, and the transaction around them.
    message = EmailMessage("Hi", "Body", "f@example.com", ["a@example.com", "b@example.com"])
    message.cc = ["c@example.com"]
    with CaptureQueriesContext(connection) as queries:
        if in_transaction:
            with transaction.atomic():
                assert message.send() == 1
        else:
            assert message.send() == 1
    assert len(queries.captured_queries) <= 6, [q["sql"] for q in queries.captured_queries]
    assert QueuedRecipient.objects.filter(state="queued").count() == 3


@pytest.mark.postgres
def test_send_mail_outside_a_transaction_is_one_statement_on_postgresql(queued_backend):
    # BEGIN, two INSERTs and COMMIT were four round trips, most of the enqueue time.
    with CaptureQueriesContext(connection) as queries:
        mail.send_mail("Hi", "Body", "f@example.com", ["a@example.com", "b@example.com"])
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["WITH"]
    row = QueuedMessage.objects.get()
    assert [(r.position, r.email, r.state) for r in row.recipients.all()] == [
        (0, "a@example.com", "queued"),
        (1, "b@example.com", "queued"),
    ]


@pytest.mark.postgres
def test_the_one_statement_writes_the_rows_the_orm_writes():
    message = EmailMessage(
        "Grüße", "<b>Body</b>", "f@example.com", ["a@example.com", "b@bücher.example"]
    )
    message.content_subtype = "html"
    requests = build_requests(message, ignore_unsupported=False)
    # Each writer as the backend would call it (the vendor picks one, so both are called here).
    by_orm = enqueue._write_with_orm(connection, enqueue._new_message(requests, "mailer"), requests)
    by_sql = enqueue._write_in_one_statement(
        connection, enqueue._new_message(requests, "mailer"), requests
    )
    assert by_orm != by_sql
    assert snapshot(by_sql) == snapshot(by_orm)
    orm_row, sql_row = QueuedMessage.objects.get(pk=by_orm), QueuedMessage.objects.get(pk=by_sql)
    for field in ("created_at", "updated_at", "next_attempt_at"):
        assert abs(getattr(sql_row, field) - getattr(orm_row, field)).total_seconds() < 5


@pytest.fixture
def refuse_subject():
    """A database that refuses a message whose subject is 'refused' (a real database error)."""
    table = QueuedMessage._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION sendflare_test_refuse() RETURNS trigger AS $$ BEGIN "
                "IF NEW.subject = 'refused' THEN RAISE EXCEPTION 'refused by the test'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER sendflare_test_refuse BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION sendflare_test_refuse()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER sendflare_test_refuse BEFORE INSERT ON {table} "
                "WHEN NEW.subject = 'refused' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
    yield
    with connection.cursor() as cursor:
        cursor.execute(
            f"DROP TRIGGER sendflare_test_refuse{' ON ' + table if connection.vendor == 'postgresql' else ''}"
        )
        if connection.vendor == "postgresql":
            cursor.execute("DROP FUNCTION sendflare_test_refuse()")


def test_a_database_error_in_a_batch_raises_and_stores_none_of_it(queued_backend, refuse_subject):
    # send_mass_mail is one batch: the first message must not stay queued alone.
    with pytest.raises(DatabaseError, match="refused by the test"):
        mail.send_mass_mail(
            [
                ("fine", "B", "f@example.com", ["a@example.com"]),
                ("refused", "B", "f@example.com", ["b@example.com"]),
            ]
        )
    assert not QueuedMessage.objects.exists()
    assert not QueuedRecipient.objects.exists()
    # The connection is usable: the failed statement left no broken transaction behind.
    assert mail.send_mail("fine", "B", "f@example.com", ["a@example.com"]) == 1
