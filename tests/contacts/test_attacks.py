"""Issue 22, the cases not yet tried: hostile contact fields in every admin page of contacts.

A user's names, address and custom contact data are typed by the user (a sign-up, a profile
form). They are synced to Sendflare and shown to staff: in the user admin and its Sendflare
actions (their confirmation page and their messages), the contact states and the outbox. Every
page must show them as text, never as markup a browser would run.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from django_sendflare.contacts.adapter import ContactAdapter
from django_sendflare.models import ContactChange, ContactSyncState

from .. import admin_pages

APP_ID = "attack-app"

pytestmark = pytest.mark.django_db(transaction=True)

USERNAME = '<b onmouseover=alert("username")>evil</b>'
FIRST = '<script>alert("first")</script>'
LAST = '<img src=x onerror=alert("last")>'
COMPANY = '"><svg/onload=alert("company")>'
#: A valid address with the characters of HTML that an address may hold unquoted.
EMAIL = "o'neil&co@example.com"
#: An address only the user model takes (no validation on save): its sync is refused.
BAD_EMAIL = '"<script>alert(`email`)</script>"@example.com'
PAYLOADS = (USERNAME, FIRST, LAST, COMPANY, EMAIL, BAD_EMAIL)

USERS = "admin:auth_user_changelist"
STATES = "admin:django_sendflare_contactsyncstate_changelist"
OUTBOX = "admin:django_sendflare_contactchange_changelist"


class CompanyAdapter(ContactAdapter):
    """Sends a custom data field, filled from the user's last name."""

    fields = ("firstName", "lastName", "company")

    def get_data(self, user: Any) -> dict[str, Any]:
        return {**super().get_data(user), "company": COMPANY}


def assert_shown_as_text(response: Any, *shown: str) -> str:
    return admin_pages.assert_shown_as_text(response, PAYLOADS, *shown)


def messages_of(response: Any) -> str:
    return " ".join(str(m) for m in response.context["messages"])


@pytest.fixture
def hostile(sendflare_sandbox_settings: Any, settings: Any) -> Any:
    """A user with hostile names, address and data, synced; another whose address is refused."""
    settings.SENDFLARE = {
        **settings.SENDFLARE,
        "APP_ID": APP_ID,
        "SYNC_CONTACTS": True,
        "RATE_LIMIT": 0,
        "MAX_RETRIES": 0,
        "CONTACT_ADAPTER": f"{__name__}.CompanyAdapter",
    }
    model = get_user_model()
    user = model.objects.create_user(USERNAME, EMAIL, first_name=FIRST, last_name=LAST)
    refused = model.objects.create_user("refused", BAD_EMAIL, first_name=FIRST)
    with pytest.raises(CommandError, match="1 user"):  # the refused one
        call_command("sync_contacts", "--pending", stdout=io.StringIO(), stderr=io.StringIO())
    contacts = {c["emailAddress"]: c for c in sendflare_sandbox_settings.contacts(APP_ID)}
    contact = contacts[EMAIL]
    assert (contact["emailAddress"], contact["firstName"], contact["company"]) == (
        EMAIL,
        FIRST,
        COMPANY,
    )
    assert BAD_EMAIL not in contacts
    [change] = ContactChange.objects.all()
    assert change.state == ContactChange.State.FAILED and change.email == BAD_EMAIL
    return user, refused


@pytest.fixture
def boss() -> Client:
    return admin_pages.superuser_client()


def post(client: Client, changelist: str, action: str, pks: list[Any], **extra: Any) -> Any:
    data = {"action": action, "_selected_action": pks, "index": 0, **extra}
    return client.post(reverse(changelist), data, follow=True)


def test_the_user_admin_shows_hostile_contact_fields_as_text(boss: Client, hostile: Any) -> None:
    user, _ = hostile
    assert_shown_as_text(boss.get(reverse(USERS)), USERNAME, FIRST, LAST, EMAIL, BAD_EMAIL)
    assert_shown_as_text(boss.get(reverse(USERS), {"q": FIRST}), FIRST)
    change = reverse("admin:auth_user_change", args=[user.pk])
    assert_shown_as_text(boss.get(change), USERNAME, FIRST, LAST, EMAIL)


def test_the_sync_action_reports_hostile_users_as_text(boss: Client, hostile: Any) -> None:
    user, refused = hostile
    response = post(boss, USERS, "sync_to_sendflare", [user.pk, refused.pk])
    assert_shown_as_text(response, USERNAME, EMAIL, BAD_EMAIL)
    text = messages_of(response)
    assert f"{USERNAME} ({EMAIL}): " in text and f"refused ({BAD_EMAIL}): " in text


def test_the_delete_action_shows_hostile_users_as_text_and_logs_them_as_text(
    boss: Client, hostile: Any
) -> None:
    user, refused = hostile
    confirmation = post(boss, USERS, "delete_sendflare_contact", [user.pk, refused.pk])
    assert "django_sendflare/admin/delete_contact_confirmation.html" in [
        t.name for t in confirmation.templates
    ]
    assert_shown_as_text(confirmation, USERNAME, EMAIL)
    done = post(boss, USERS, "delete_sendflare_contact", [user.pk, refused.pk], post="yes")
    assert_shown_as_text(done, USERNAME, EMAIL)
    assert f"{USERNAME} ({EMAIL}): Sendflare contact deleted" in messages_of(done)
    # The deletion is in the user's history and the admin's recent actions.
    history = reverse("admin:auth_user_history", args=[user.pk])
    assert_shown_as_text(boss.get(history), USERNAME, EMAIL)
    assert_shown_as_text(boss.get(reverse("admin:index")), USERNAME)
    states = list(ContactSyncState.objects.values_list("pk", flat=True))
    cleared = post(boss, STATES, "clear_do_not_sync", states)
    assert_shown_as_text(cleared, USERNAME)


def test_the_contact_states_show_hostile_fields_as_text(boss: Client, hostile: Any) -> None:
    user, _ = hostile
    assert_shown_as_text(boss.get(reverse(STATES)), USERNAME, EMAIL)
    assert_shown_as_text(boss.get(reverse(STATES), {"q": EMAIL}), EMAIL)
    state = ContactSyncState.objects.get(user_key=str(user.pk))
    assert state.synced_data["company"] == COMPANY
    page = reverse("admin:django_sendflare_contactsyncstate_change", args=[state.pk])
    html = assert_shown_as_text(boss.get(page), USERNAME, EMAIL)
    # The synced data, custom field included, is shown as JSON, escaped.
    for value in (FIRST, LAST, COMPANY):
        assert escape(json.dumps(value)) in html


def test_the_outbox_shows_hostile_addresses_and_errors_as_text(boss: Client, hostile: Any) -> None:
    [change] = ContactChange.objects.all()
    assert_shown_as_text(boss.get(reverse(OUTBOX)), BAD_EMAIL)
    assert_shown_as_text(boss.get(reverse(OUTBOX), {"q": BAD_EMAIL}), BAD_EMAIL)
    page = reverse("admin:django_sendflare_contactchange_change", args=[change.pk])
    assert_shown_as_text(boss.get(page), BAD_EMAIL)
    assert_shown_as_text(post(boss, OUTBOX, "retry", [change.pk]), BAD_EMAIL)
    assert_shown_as_text(post(boss, OUTBOX, "delete_selected", [change.pk]), BAD_EMAIL)
    assert_shown_as_text(post(boss, OUTBOX, "discard", [change.pk]))
