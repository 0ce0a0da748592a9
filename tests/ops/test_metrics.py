"""A scrape of the metrics: the queue's gauges and the delivery counter."""

from __future__ import annotations

import datetime

import pytest
from django.test import RequestFactory
from django.utils import timezone

from django_sendflare.models import QueuedMessage, QueuedRecipient

prometheus_client = pytest.importorskip("prometheus_client")

from django_sendflare import observe  # noqa: E402
from django_sendflare.metrics import QueueCollector, metrics_view  # noqa: E402

pytestmark = pytest.mark.django_db


def scrape() -> str:
    registry = prometheus_client.CollectorRegistry()
    registry.register(QueueCollector())
    response = metrics_view(RequestFactory().get("/metrics"), registry=registry)
    assert response.status_code == 200
    return response.content.decode()


def test_the_gauges_read_the_queue_at_scrape():
    assert "sendflare_queue_depth 0.0" in scrape()
    message = QueuedMessage.objects.create(
        from_email="f@example.com", next_attempt_at=timezone.now() - datetime.timedelta(seconds=90)
    )
    for i, state in enumerate(["queued", "sending", "sent"]):
        QueuedRecipient.objects.create(message=message, position=i, email=f"{i}@x.org", state=state)
    text = scrape()
    assert "sendflare_queue_depth 2.0" in text
    age = float(text.split("\nsendflare_oldest_due_age_seconds ")[1].split()[0])
    assert 90 <= age < 150


def test_the_recipient_counter_counts_outcomes():
    before = (
        prometheus_client.REGISTRY.get_sample_value(
            "sendflare_recipients_total", {"outcome": "unknown"}
        )
        or 0.0
    )
    observe.recipient("unknown")
    after = prometheus_client.REGISTRY.get_sample_value(
        "sendflare_recipients_total", {"outcome": "unknown"}
    )
    assert after == before + 1
    assert "sendflare_recipients_total" in metrics_view(RequestFactory().get("/")).content.decode()
