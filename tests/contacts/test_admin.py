"""The admin actions, through the test client."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from django_sendflare.admin import SendflareUserAdminMixin
from django_sendflare.contacts import full_sync
from django_sendflare.exceptions import SendflareAmbiguousError
from django_sendflare.models import ContactChange, ContactSyncState

from .fakes import FakeClient

CHANGELIST = "admin:auth_user_changelist"


@pytest.fixture
def admin_client_(make_user: Any) -> Client:
    user = make_user("boss@example.com", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(make_user: Any) -> Client:
    """Staff that may view and change users, without the Sendflare delete permission."""
    user = make_user("staff@example.com", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "change_user"]))
    client = Client()
    client.force_login(user)
    return client


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def post_action(client: Client, action: str, users: list[Any], **extra: Any) -> Any:
    data = {"action": action, "_selected_action": [u.pk for u in users], "index": 0, **extra}
    return client.post(reverse(CHANGELIST), data, follow=True)


def test_the_stock_user_admin_has_the_actions() -> None:
    assert isinstance(admin.site.get_model_admin(get_user_model()), SendflareUserAdminMixin)


def test_sync_to_sendflare(admin_client_: Client, make_user: Any, fake_api: FakeClient) -> None:
    ada = make_user("ada@example.com", first_name="Ada")
    off = make_user("off@example.com", is_active=False)
    ContactChange.objects.all().delete()
    response = post_action(admin_client_, "sync_to_sendflare", [ada, off])
    assert response.status_code == 200
    assert [(c.method, c.email) for c in fake_api.calls] == [("save", "ada@example.com")]
    text = messages_of(response)
    assert any("(ada@example.com): synced to Sendflare." in m for m in text)
    assert any("(off@example.com): not synced (inactive, or no address)." in m for m in text)
    assert ContactChange.objects.count() == 0


def test_delete_asks_for_confirmation_then_deletes_and_marks(
    admin_client_: Client, make_user: Any, fake_api: FakeClient
) -> None:
    ada = make_user("ada@example.com")
    bob = make_user("bob@example.com")
    fake_api.add("ada@example.com")
    fake_api.add("bob@example.com")
    ContactChange.objects.all().delete()

    response = post_action(admin_client_, "delete_sendflare_contact", [ada, bob])
    assert response.status_code == 200
    assert "django_sendflare/admin/delete_contact_confirmation.html" in [
        t.name for t in response.templates
    ]
    page = response.content.decode()
    assert "ada@example.com" in page and "bob@example.com" in page
    assert 'name="post" value="yes"' in page
    assert fake_api.calls == []  # nothing before confirmation

    data = {
        "action": "delete_sendflare_contact",
        "_selected_action": [ada.pk, bob.pk],
        "post": "yes",
    }
    response = admin_client_.post(reverse(CHANGELIST), data, follow=True)
    # One read of the list for the action (the live status, before the evidence is deleted).
    assert [c.method for c in fake_api.calls].count("list") == 1
    assert sorted((c.method, c.email) for c in fake_api.writes()) == [
        ("delete", "ada@example.com"),
        ("delete", "bob@example.com"),
    ]
    text = messages_of(response)
    assert sum("Sendflare contact deleted" in m for m in text) == 2  # one per user
    assert set(
        ContactSyncState.objects.filter(do_not_sync=True).values_list("user_key", flat=True)
    ) == {str(ada.pk), str(bob.pk)}

    # No later change or full sync re-creates them.
    ada.first_name = "Ada"
    ada.save()
    fake_api.reset_calls()
    from django_sendflare.contacts.outbox import deliver_pending

    deliver_pending(client=fake_api, include_not_due=True)  # type: ignore[arg-type]
    full_sync.run_sync()
    assert [c for c in fake_api.writes() if c.email in ("ada@example.com", "bob@example.com")] == []
    assert fake_api.get("ada@example.com") is None


def test_delete_reports_a_failure_per_user_and_the_worker_finishes_it(
    admin_client_: Client, make_user: Any, fake_api: FakeClient
) -> None:
    ada = make_user("ada@example.com")
    bob = make_user("bob@example.com")
    fake_api.add("ada@example.com")
    fake_api.add("bob@example.com")
    ContactChange.objects.all().delete()
    fake_api.fail_on = lambda call: (
        SendflareAmbiguousError("timed out") if call.email == "bob@example.com" else None
    )
    data = {
        "action": "delete_sendflare_contact",
        "_selected_action": [ada.pk, bob.pk],
        "post": "yes",
    }
    text = messages_of(admin_client_.post(reverse(CHANGELIST), data, follow=True))
    assert any("ada@" in m and "Sendflare contact deleted" in m for m in text)
    assert any("bob@" in m and "will be retried" in m for m in text)
    fake_api.fail_on = None
    from django_sendflare.contacts.outbox import deliver_pending

    deliver_pending(client=fake_api, include_not_due=True)  # type: ignore[arg-type]
    assert fake_api.contacts == {}


def test_sync_clears_the_do_not_sync_mark(
    admin_client_: Client, make_user: Any, fake_api: FakeClient
) -> None:
    ada = make_user("ada@example.com")
    ContactSyncState.objects.create(user_key=str(ada.pk), do_not_sync=True)
    post_action(admin_client_, "sync_to_sendflare", [ada])
    assert fake_api.get("ada@example.com") is not None
    assert not ContactSyncState.objects.get(user_key=str(ada.pk)).do_not_sync


def test_without_the_permission_the_delete_action_is_hidden_and_refused(
    staff_client: Client, make_user: Any, fake_api: FakeClient
) -> None:
    ada = make_user("ada@example.com")
    fake_api.add("ada@example.com")
    page = staff_client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    choices = [value for value, _ in page.context["action_form"].fields["action"].choices]
    assert "sync_to_sendflare" in choices
    assert "delete_sendflare_contact" not in choices

    data = {"action": "delete_sendflare_contact", "_selected_action": [ada.pk], "post": "yes"}
    response = staff_client.post(reverse(CHANGELIST), data, follow=True)
    assert fake_api.calls == []
    assert not ContactSyncState.objects.filter(do_not_sync=True).exists()
    assert response.status_code == 200

    # Granted the permission, the same staff may.
    staff = get_user_model().objects.get(email="staff@example.com")
    staff.user_permissions.add(Permission.objects.get(codename="delete_sendflare_contact"))
    staff_client.post(reverse(CHANGELIST), data, follow=True)
    assert [c.method for c in fake_api.calls] == ["list", "delete"]


def test_outbox_admin_lists_and_retries_and_discards(admin_client_: Client, make_user: Any) -> None:
    ContactChange.objects.all().delete()
    make_user("a@example.com")
    make_user("b@example.com")
    ContactChange.objects.update(
        state=ContactChange.State.FAILED, attempts=10, last_error="HTTP 502 from the API"
    )
    changelist = reverse("admin:django_sendflare_contactchange_changelist")
    page = admin_client_.get(changelist + "?state__exact=failed")
    assert page.status_code == 200
    assert "HTTP 502 from the API" in page.content.decode()
    first, second = ContactChange.objects.order_by("id")
    admin_client_.post(changelist, {"action": "retry", "_selected_action": [first.pk], "index": 0})
    first.refresh_from_db()
    assert (first.state, first.attempts) == ("pending", 0)
    admin_client_.post(
        changelist, {"action": "discard", "_selected_action": [second.pk], "index": 0}
    )
    assert not ContactChange.objects.filter(pk=second.pk).exists()


def test_sync_state_admin_clears_marks(admin_client_: Client, make_user: Any) -> None:
    state = ContactSyncState.objects.create(user_key="42", do_not_sync=True)
    changelist = reverse("admin:django_sendflare_contactsyncstate_changelist")
    assert admin_client_.get(changelist).status_code == 200
    admin_client_.post(
        changelist, {"action": "clear_do_not_sync", "_selected_action": [state.pk], "index": 0}
    )
    state.refresh_from_db()
    assert not state.do_not_sync


def test_sync_pushes_the_contact_whatever_the_recorded_state_says(
    admin_client_: Client, make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    ada = make_user("ada@example.com", first_name="Ada")
    deliver()
    fake_api.contacts.clear()  # gone at Sendflare; the recorded state still says it is there
    fake_api.reset_calls()
    response = post_action(admin_client_, "sync_to_sendflare", [ada])
    assert [(c.method, c.email) for c in fake_api.calls] == [("save", "ada@example.com")]
    assert fake_api.get("ada@example.com") is not None
    assert any("synced to Sendflare" in m for m in messages_of(response))


def test_sync_above_the_cap_puts_the_rest_in_the_outbox(
    admin_client_: Client, make_user: Any, fake_api: FakeClient, monkeypatch: Any
) -> None:
    from django_sendflare.contacts import services

    monkeypatch.setattr(services, "MAX_SYNC_USERS", 2)
    users = [make_user(f"u{i}@example.com") for i in range(5)]
    ContactChange.objects.all().delete()
    response = post_action(admin_client_, "sync_to_sendflare", users)
    assert len(fake_api.writes()) == 2  # synced now
    text = messages_of(response)
    assert any("3 more user(s) were put in the outbox" in m for m in text)
    queued = ContactChange.objects.filter(kind=ContactChange.Kind.SYNC)
    assert queued.count() == 3
    # The worker pushes them, whatever their recorded state says.
    from django_sendflare.contacts.outbox import deliver_pending

    deliver_pending(client=fake_api)  # type: ignore[arg-type]
    assert len(fake_api.writes()) == 5


def test_sync_state_admin_shows_the_user_and_no_status_for_a_deleted_contact(
    admin_client_: Client, make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    ada = make_user("ada@example.com", username="ada")
    deliver()
    changelist = reverse("admin:django_sendflare_contactsyncstate_changelist")
    page = admin_client_.get(changelist).content.decode()
    assert "ada (ada@example.com)" in page
    assert "Confirmed" in page
    from django_sendflare.contacts import services

    services.delete_user_contacts([ada], client=fake_api)  # type: ignore[arg-type]
    page = admin_client_.get(changelist).content.decode()
    [row] = [r for r in page.split("<tr") if "ada (ada@example.com)" in r]
    assert "Confirmed" not in row  # no status for a deleted contact
    state = ContactSyncState.objects.get(user_key=str(ada.pk))
    detail = admin_client_.get(
        reverse("admin:django_sendflare_contactsyncstate_change", args=[state.pk])
    )
    assert detail.status_code == 200 and "ada (ada@example.com)" in detail.content.decode()


def test_sync_state_admin_shows_an_unsubscribe_seen_at_sendflare(
    admin_client_: Client, make_user: Any, fake_api: FakeClient, deliver: Any
) -> None:
    make_user("ada@example.com", username="ada")
    deliver()
    fake_api.get("ada@example.com")["status"] = "Unsubscribed"  # type: ignore[index]
    full_sync.run_sync()
    changelist = reverse("admin:django_sendflare_contactsyncstate_changelist")
    page = admin_client_.get(changelist).content.decode()
    assert "Unsubscribed at Sendflare" in page or "unsubscribed at sendflare" in page.lower()
    [row] = [r for r in page.split("<tr") if "ada (ada@example.com)" in r]
    assert "Unsubscribed" in row and 'field-unsubscribed_at nowrap">-' not in row


def test_the_delete_confirmation_has_djangos_breadcrumbs(
    admin_client_: Client, make_user: Any
) -> None:
    import django

    ada = make_user("ada@example.com")
    page = post_action(admin_client_, "delete_sendflare_contact", [ada]).content.decode()
    # Django 6.1 made the breadcrumbs an <ol>; 5.2 and 6.0 style only div.breadcrumbs.
    expected = (
        '<ol class="breadcrumbs">' if django.VERSION >= (6, 1) else '<div class="breadcrumbs">'
    )
    assert expected in page
    assert reverse(CHANGELIST) in page.split("breadcrumbs")[1]
