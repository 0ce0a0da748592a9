"""Helpers of the tests that look for hostile text in admin pages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client
from django.utils.html import escape


def superuser_client(username: str = "boss") -> Client:
    """A test client logged in as a new superuser."""
    user = get_user_model().objects.create_superuser(username, f"{username}@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def assert_shown_as_text(response: Any, payloads: Iterable[str], *shown: str) -> str:
    """No payload appears as markup; each of ``shown`` appears, escaped (so it was shown).

    Returns the page's HTML.
    """
    assert response.status_code == 200
    html = response.content.decode()
    path = response.request["PATH_INFO"]
    for payload in payloads:
        assert payload not in html, f"{payload!r} is not escaped in {path}"
    for payload in shown:
        assert escape(payload) in html, f"{payload!r} is not shown in {path}"
    return html
