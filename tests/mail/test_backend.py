"""QueuedEmailBackend: validated at call time, stored in the caller's transaction, never sent."""

from __future__ import annotations

import pytest
import responses
from django.core import mail
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.db import transaction

from django_sendflare import exceptions as exc
from django_sendflare.backends import QueuedEmailBackend
from django_sendflare.models import QueuedMessage, QueuedRecipient
from django_sendflare.signals import CancelSend, post_send, pre_send

from ..conftest import HAS_MAILERS
from .conftest import queued_for

pytestmark = pytest.mark.django_db(transaction=True)

LONG_ADDRESS = "a@" + ".".join(["b" * 63] * 4) + ".com"  # 261 characters


@pytest.fixture
def no_api():
    """Any HTTP request fails the test: queuing never talks to the API."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock
    assert not mock.calls


def recipients(message: QueuedMessage) -> list[tuple[str, str]]:
    return [(r.email, r.state) for r in message.recipients.order_by("position")]


def test_send_mail_stores_one_row_per_recipient_and_says_queued(queued_backend, no_api):
    message = EmailMessage(
        "Grüße",
        "Body",
        "Site <site@example.com>",
        to=["a@example.com", "Bee <b@example.com>"],
        cc=["A@example.com", "c@bücher.example"],
        bcc=["d@example.com"],
    )
    assert message.send() == 1
    row = QueuedMessage.objects.get()
    assert (row.from_email, row.subject, row.body, row.mailer) == (
        "site@example.com",
        "Grüße",
        "Body",
        "default" if HAS_MAILERS else "",
    )
    assert recipients(row) == [
        ("a@example.com", "queued"),
        ("b@example.com", "queued"),
        ("c@xn--bcher-kva.example", "queued"),
        ("d@example.com", "queued"),
    ]
    status = message.sendflare_status
    assert status.status == {"queued"} and not status.sent
    assert status.queued_id == row.pk
    assert list(status.recipients) == [r.email for r in row.recipients.all()]


def test_html_alternative_is_the_stored_body(queued_backend, no_api):
    mail.send_mail("S", "text", "f@example.com", ["a@example.com"], html_message="<b>hi</b>")
    assert QueuedMessage.objects.get().body == "<b>hi</b>"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda m: m.bcc.append("not-an-address"), exc.SendflareInvalidAddress),
        (lambda m: m.to.append("a@b\n.com"), exc.SendflareHeaderInjection),
        (lambda m: setattr(m, "subject", "Hi\nBcc: x@example.com"), exc.SendflareHeaderInjection),
        (
            lambda m: setattr(m, "from_email", "x@example.com\nBcc: y@example.com"),
            exc.SendflareHeaderInjection,
        ),
        (lambda m: m.attach("a.txt", "data", "text/plain"), exc.SendflareUnsupportedFeature),
        (lambda m: m.extra_headers.update({"X-Tag": "t"}), exc.SendflareUnsupportedFeature),
        (lambda m: setattr(m, "reply_to", ["r@example.com"]), exc.SendflareUnsupportedFeature),
        # Text PostgreSQL cannot store: refused as invalid input on every database, never a
        # DataError from the queue's INSERT (nor stored on SQLite and sent by the API).
        (lambda m: setattr(m, "body", "a\x00b"), exc.SendflareUnencodableText),
        (lambda m: setattr(m, "subject", "\x00"), exc.SendflareUnencodableText),
        # Valid for Django's validator (320), longer than SMTP and the queue's column allow.
        (lambda m: m.to.append(LONG_ADDRESS), exc.SendflareInvalidAddress),
    ],
)
def test_a_bad_message_raises_at_call_time_and_nothing_of_the_batch_is_stored(
    queued_backend, no_api, change, error
):
    good = EmailMessage("S", "B", "f@example.com", ["ok@example.com"])
    bad = EmailMultiAlternatives("S", "B", "f@example.com", ["ok2@example.com"])
    change(bad)
    with pytest.raises(error):
        QueuedEmailBackend().send_messages([good, bad])
    assert not QueuedMessage.objects.exists()
    assert not QueuedRecipient.objects.exists()


def test_unsupported_features_dropped_when_the_setting_says_so(queued_backend, no_api, caplog):
    queued_backend(ignore_unsupported_features=True)
    message = EmailMessage("S", "B", "f@example.com", ["a@example.com"], reply_to=["r@example.com"])
    assert message.send() == 1
    assert "reply_to" in caplog.text
    assert QueuedMessage.objects.count() == 1


def test_a_rolled_back_transaction_stores_nothing(queued_backend, no_api):
    with pytest.raises(RuntimeError), transaction.atomic():
        mail.send_mail("S", "B", "f@example.com", ["a@example.com"])
        assert QueuedMessage.objects.count() == 1  # visible inside the transaction
        raise RuntimeError("the view failed")
    assert not QueuedMessage.objects.exists()
    assert not QueuedRecipient.objects.exists()


def test_pre_send_can_cancel_and_post_send_is_not_sent_when_queuing(queued_backend, no_api):
    seen = []

    def cancel_b(sender, message, **kwargs):
        if message.subject == "cancel me":
            raise CancelSend

    def record(sender, **kwargs):
        seen.append(kwargs)

    pre_send.connect(cancel_b)
    post_send.connect(record)
    try:
        cancelled = EmailMessage("cancel me", "B", "f@example.com", ["a@example.com"])
        kept = EmailMessage("keep", "B", "f@example.com", ["b@example.com"])
        assert QueuedEmailBackend().send_messages([cancelled, kept]) == 1
    finally:
        pre_send.disconnect(cancel_b)
        post_send.disconnect(record)
    assert cancelled.sendflare_status.status == {"cancelled"}
    assert [m.subject for m in QueuedMessage.objects.all()] == ["keep"]
    assert seen == []


def test_the_api_token_is_never_stored(queued_backend, no_api, settings):
    mail.send_mail("S", "B", "f@example.com", ["a@example.com"])
    row = QueuedMessage.objects.values().get()
    assert settings.SENDFLARE["API_TOKEN"] not in repr(row)


def test_the_queued_backend_holds_no_http_client(queued_backend, no_api, monkeypatch):
    from django_sendflare.client import SendflareClient

    def no_client(*args, **kwargs):
        raise AssertionError("the queued backend built an HTTP client")

    monkeypatch.setattr(SendflareClient, "__init__", no_client)
    backend = QueuedEmailBackend()
    with backend:
        assert not hasattr(backend, "client")
        message = EmailMessage("S", "B", "f@example.com", ["a@example.com"])
        assert backend.send_messages([message]) == 1
    assert QueuedRecipient.objects.get().state == "queued"


def test_options_outside_mailers_are_refused(settings):
    with pytest.raises(exc.SendflareConfigurationError, match="MAILERS"):
        QueuedEmailBackend(api_token="kw-token")


def test_a_missing_token_raises_at_call_time(queued_backend, settings):
    settings.SENDFLARE = {"API_URL": "https://api.sendflare.io"}
    with pytest.raises(exc.SendflareConfigurationError, match="API_TOKEN"):
        mail.send_mail("S", "B", "f@example.com", ["a@example.com"])
    assert not QueuedMessage.objects.exists()


@pytest.mark.skipif(not HAS_MAILERS, reason="MAILERS is new in Django 6.1")
def test_a_mailers_entry_names_the_configuration_that_delivers_it(settings, no_api):
    settings.MAILERS = queued_for(
        "transactional", api_token="mailer-token-not-stored", provider="sendkit"
    )
    assert mail.send_mail("S", "B", "f@example.com", ["a@example.com"]) == 1
    row = QueuedMessage.objects.get()
    assert row.mailer == "transactional"
    assert "mailer-token-not-stored" not in repr(QueuedMessage.objects.values().get())
    settings.MAILERS = {
        "default": {
            "BACKEND": "django_sendflare.backends.QueuedEmailBackend",
            "OPTIONS": {"mailer": "missing"},
        },
    }
    with pytest.raises(exc.SendflareConfigurationError, match="missing"):
        mail.send_mail("S", "B", "f@example.com", ["a@example.com"])


@pytest.mark.skipif(not HAS_MAILERS, reason="MAILERS is new in Django 6.1")
def test_a_mailers_alias_too_long_to_store_is_a_configuration_error(settings, no_api):
    # A DataError from the queue's INSERT on PostgreSQL (silently stored on SQLite) before.
    alias = "m" * 101
    settings.MAILERS = queued_for(alias)
    with pytest.raises(exc.SendflareConfigurationError, match="101 characters"):
        mail.send_mail("S", "B", "f@example.com", ["a@example.com"])
    assert not QueuedMessage.objects.exists()
