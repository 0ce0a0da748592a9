"""The django-health-check plugin, inside the library's own view: healthy, then each rule."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from django_sendflare import exceptions as exc
from django_sendflare.models import QueuedMessage
from django_sendflare.records import hold_account, release_account

pytest.importorskip("health_check")

# The view runs the check in a thread of its own: it must see committed rows.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.ops.urls")]


def probe(client) -> tuple[int, str]:
    response = client.get("/health/", headers={"accept": "application/json"})
    return response.status_code, response.content.decode()


def test_the_view_is_200_while_mail_flows(client):
    assert probe(client) == (200, '{"Sendflare()": "OK"}')


def test_stalled_mail_makes_the_view_fail(client):
    QueuedMessage.objects.create(
        from_email="f@example.com",
        next_attempt_at=timezone.now() - datetime.timedelta(hours=1),
    )
    code, body = probe(client)
    assert code == 500
    assert "is a worker running?" in body


def test_a_held_account_makes_the_view_fail_until_released(client, settings):
    hold_account("", exc.SendflareDailyLimitReached("Daily limit reached", code=40004))
    code, body = probe(client)
    assert code == 500 and "held since" in body
    assert settings.SENDFLARE["API_TOKEN"] not in body
    release_account("")
    assert probe(client)[0] == 200
