"""Storing queued mail: one statement for any batch on PostgreSQL, a few bulk statements elsewhere,
the same rows either way, all or nothing everywhere."""

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


def requests_of(message: EmailMessage):
    return build_requests(message, ignore_unsupported=False)


def varied_messages() -> list[EmailMessage]:
    """Messages that differ in every stored field: text and HTML, one to three recipients."""
    html = EmailMessage(
        "Grüße", "<b>Body</b>", "f@example.com", ["a@example.com", "b@bücher.example"]
    )
    html.content_subtype = "html"
    return [
        html,
        EmailMessage("Plain", "Text", "g@example.com", ["c@example.com"]),
        EmailMessage(
            "", "", "h@example.com", ["d@example.com"], cc=["e@example.com"], bcc=["f@example.com"]
        ),
    ]


@pytest.mark.postgres
def test_the_one_statement_writes_the_rows_the_bulk_statements_write():
    # Each writer as store_messages would call it (the vendor picks one, so both are called here).
    batch = [requests_of(message) for message in varied_messages()]
    by_bulk = enqueue._write_in_bulk(connection, batch, "mailer")
    by_sql = enqueue._write_in_one_statement(connection, batch, "mailer")
    assert set(by_bulk).isdisjoint(by_sql)
    assert [snapshot(i) for i in by_sql] == [snapshot(i) for i in by_bulk]
    for bulk_id, sql_id in zip(by_bulk, by_sql, strict=True):
        bulk_row, sql_row = (
            QueuedMessage.objects.get(pk=bulk_id),
            QueuedMessage.objects.get(pk=sql_id),
        )
        for field in ("created_at", "updated_at", "next_attempt_at"):
            assert abs(getattr(sql_row, field) - getattr(bulk_row, field)).total_seconds() < 5


def test_a_batch_stores_each_message_as_it_would_be_stored_alone():
    batch = [requests_of(message) for message in varied_messages()]
    together = enqueue.store_messages(batch, mailer="m")
    alone = [enqueue.store_messages([requests], mailer="m")[0] for requests in batch]
    assert together == sorted(together)  # ids in the order of the batch
    assert [snapshot(i) for i in together] == [snapshot(i) for i in alone]
    assert [[r["email"] for r in snapshot(i)[1]] for i in together] == [
        ["a@example.com", "b@xn--bcher-kva.example"],
        ["c@example.com"],
        ["d@example.com", "e@example.com", "f@example.com"],
    ]


def test_a_database_without_ids_from_bulk_inserts_stores_the_same_rows(monkeypatch):
    # MySQL (and SQLite before 3.35): the messages one by one, the recipients still in bulk.
    batch = [requests_of(message) for message in varied_messages()]
    with_ids = enqueue._write_in_bulk(connection, batch, "m")
    monkeypatch.setattr(type(connection.features), "can_return_rows_from_bulk_insert", False)
    with CaptureQueriesContext(connection) as queries:
        without = enqueue._write_in_bulk(connection, batch, "m")
    assert [snapshot(i) for i in without] == [snapshot(i) for i in with_ids]
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == len(batch) + 1


def test_send_mass_mail_is_a_few_bulk_statements_messages_first(queued_backend):
    # Row by row, 200 messages to two recipients each were 400 INSERTs (and 4 on PostgreSQL).
    datatuple = [
        (f"S{i}", "B", "f@example.com", [f"a{i}@example.com", f"b{i}@example.com"])
        for i in range(200)
    ]
    with CaptureQueriesContext(connection) as queries:
        assert mail.send_mass_mail(datatuple) == 200
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    tables = [sql.split()[2].strip('"') for sql in inserts]
    message_table, recipient_table = QueuedMessage._meta.db_table, QueuedRecipient._meta.db_table
    if connection.vendor == "postgresql":
        assert len(inserts) == 0
        assert [q["sql"].split()[0] for q in queries.captured_queries] == ["WITH"]
    else:  # SQLite's 999 parameters a statement: 3 + 5, the messages first
        assert len(inserts) <= 8
        assert set(tables[: tables.count(message_table)]) == {message_table}
        assert set(tables[tables.count(message_table) :]) == {recipient_table}
    assert QueuedRecipient.objects.count() == 400
    # Each message has its own recipients, in their order.
    stored = {
        message.subject: [r.email for r in message.recipients.all()]
        for message in QueuedMessage.objects.prefetch_related("recipients")
    }
    assert stored == {f"S{i}": [f"a{i}@example.com", f"b{i}@example.com"] for i in range(200)}


def test_on_commit_runs_once_per_message_after_the_commit_only():
    committed: list[int] = []
    batch = [requests_of(message) for message in varied_messages()]
    with transaction.atomic():
        ids = enqueue.store_messages(batch, mailer="", on_commit=committed.append)
        assert committed == []
    assert committed == ids
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue.store_messages(batch, mailer="", on_commit=committed.append)
        raise RuntimeError("the view failed")
    assert committed == ids
    assert QueuedMessage.objects.count() == 3


def test_a_batch_inside_the_callers_transaction_goes_with_it():
    batch = [requests_of(message) for message in varied_messages()]
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue.store_messages(batch, mailer="")
        assert QueuedRecipient.objects.count() == 6
        raise RuntimeError("the view failed")
    assert not QueuedMessage.objects.exists()
    assert not QueuedRecipient.objects.exists()


def test_an_empty_batch_touches_no_database():
    with CaptureQueriesContext(connection) as queries:
        assert enqueue.store_messages([], mailer="") == []
    assert queries.captured_queries == []


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
