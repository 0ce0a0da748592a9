"""Issue 22, the cases not yet tried: hostile text in mail, seen in every admin page of the mail log.

A message's subject, body and addresses are chosen by whoever can make the site send mail (a
contact form, a sign-up with a crafted address). They are stored as given, and shown to staff
in the admin, along with the error texts that quote them. Every page, confirmation and action
message that shows them must show them as text: never as markup that a browser would run.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from django_sendflare.models import QueuedMessage, QueuedRecipient
from django_sendflare.worker import Worker

from . import admin_pages
from .mail.conftest import QUEUED

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # A sender the account does not have is refused (100048): a failed recipient whose error
    # quotes the hostile addresses.
    pytest.mark.sendflare_sandbox(allowed_senders=("f@example.com",), errors_as_http_200=True),
]

SUBJECT = '<script>alert("subject")</script>'
BODY = '<img src=x onerror=alert("body")>'
#: A valid address (a quoted local part may hold < > and /): the API is asked to send to it.
ADDRESS = '"<svg/onload=alert(1)>"@example.com'
#: A sender whose quoted local part is markup too: the sandbox refuses it (unknown sender).
SENDER = '"<iframe/src=javascript:alert(2)>"@example.com'
PAYLOADS = (SUBJECT, BODY, ADDRESS, SENDER)

CHANGELIST = "admin:django_sendflare_queuedmessage_changelist"


def assert_shown_as_text(response: Any, *shown: str) -> str:
    return admin_pages.assert_shown_as_text(response, PAYLOADS, *shown)


@pytest.fixture
def boss() -> Client:
    return admin_pages.superuser_client()


@pytest.fixture
def hostile(sendflare_sandbox_settings: Any, settings: Any) -> dict[str, QueuedMessage]:
    """Two hostile messages, delivered: one sent to b, unknown for c and refused for ADDRESS
    (the sandbox takes no quoted local part), one refused for its sender."""
    settings.SENDFLARE = {**settings.SENDFLARE, "RATE_LIMIT": 0, "MAX_RETRIES": 0}
    settings.EMAIL_BACKEND = QUEUED
    settings.MAILERS = {"default": {"BACKEND": QUEUED}}
    mail.send_mail(SUBJECT, BODY, "f@example.com", ["b@example.com", "c@example.com", ADDRESS])
    mail.send_mail(SUBJECT + " refused", BODY, SENDER, [ADDRESS])
    sendflare_sandbox_settings.queue_faults("ok", "lost_response")
    Worker(contacts=False, threads=1).run_once()
    assert list(QueuedRecipient.objects.order_by("id").values_list("state", flat=True)) == [
        "sent",
        "unknown",
        "failed",
        "failed",
    ]
    first, refused = QueuedMessage.objects.order_by("id")
    return {"sent": first, "refused": refused}


def post_action(client: Client, action: str, messages: list[QueuedMessage], **extra: Any) -> Any:
    data = {"action": action, "_selected_action": [m.pk for m in messages], "index": 0, **extra}
    return client.post(reverse(CHANGELIST), data, follow=True)


def test_the_mail_log_shows_hostile_text_as_text(boss: Client, hostile: dict) -> None:
    assert_shown_as_text(boss.get(reverse(CHANGELIST)), SUBJECT, SENDER)
    assert_shown_as_text(boss.get(reverse(CHANGELIST), {"q": SUBJECT}), SUBJECT)
    assert_shown_as_text(boss.get(reverse(CHANGELIST), {"recipient_state": "unknown"}), SUBJECT)


def test_a_message_page_shows_hostile_text_as_text(boss: Client, hostile: dict) -> None:
    for message in hostile.values():
        url = reverse("admin:django_sendflare_queuedmessage_change", args=[message.pk])
        html = assert_shown_as_text(boss.get(url), SUBJECT, BODY, ADDRESS)
        assert escape(message.from_email) in html
    # The refused recipient's error quotes both addresses (and the sandbox's refusal).
    refused = QueuedRecipient.objects.get(message=hostile["refused"])
    assert refused.state == "failed" and ADDRESS in refused.error and SENDER in refused.error
    url = reverse("admin:django_sendflare_queuedmessage_change", args=[hostile["refused"].pk])
    assert escape(refused.error) in boss.get(url).content.decode()
    url = reverse("admin:django_sendflare_queuedmessage_history", args=[hostile["sent"].pk])
    assert_shown_as_text(boss.get(url), SUBJECT)


def test_the_resend_confirmation_and_its_results_show_hostile_text_as_text(
    boss: Client, hostile: dict
) -> None:
    messages = list(hostile.values())
    confirmation = post_action(boss, "resend", messages)
    assert "django_sendflare/admin/resend_unknown_confirmation.html" in [
        t.name for t in confirmation.templates
    ]
    html = assert_shown_as_text(confirmation, SUBJECT)
    unknown = QueuedRecipient.objects.get(state="unknown")
    assert escape(unknown.email) in html and escape(unknown.error) in html
    assert_shown_as_text(post_action(boss, "resend", messages, post="yes"), SUBJECT)
    assert_shown_as_text(post_action(boss, "discard", messages), SUBJECT)


def test_deleting_hostile_mail_shows_it_as_text_and_logs_it_as_text(
    boss: Client, hostile: dict
) -> None:
    message = hostile["sent"]
    url = reverse("admin:django_sendflare_queuedmessage_delete", args=[message.pk])
    assert_shown_as_text(boss.get(url), SUBJECT, ADDRESS)
    assert_shown_as_text(post_action(boss, "delete_selected", [message]), SUBJECT, ADDRESS)
    done = post_action(boss, "delete_selected", [message], post="yes")
    assert_shown_as_text(done)
    assert not QueuedMessage.objects.filter(pk=message.pk).exists()
    # The admin's "Recent actions" name the deleted message by its subject.
    assert_shown_as_text(boss.get(reverse("admin:index")), SUBJECT)
