"""System checks of the contact settings."""

from __future__ import annotations

from typing import Any

from django_sendflare.checks import check_contacts


def ids(settings: Any, **overrides: Any) -> list[str]:
    settings.SENDFLARE = {**settings.SENDFLARE, **overrides}
    return [message.id for message in check_contacts()]


def test_no_warning_by_default(settings: Any) -> None:
    assert ids(settings) == []


def test_sync_on_without_app_id_warns(settings: Any) -> None:
    assert ids(settings, APP_ID=None) == ["sendflare.W100"]
    assert ids(settings, APP_ID=None, SYNC_CONTACTS=False) == []


def test_an_adapter_that_cannot_be_imported_is_an_error(settings: Any) -> None:
    assert ids(settings, CONTACT_ADAPTER="nowhere.Adapter") == ["sendflare.E100"]


def test_enqueue_task_needs_the_tasks_framework(settings: Any) -> None:
    from django_sendflare.task_hooks import tasks_available

    expected = [] if tasks_available() is None else ["sendflare.E101"]
    assert ids(settings, CONTACTS_ENQUEUE_TASK=True) == expected
