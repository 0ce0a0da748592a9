"""The mail log's changelist shows the status summary above its list."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from django_sendflare.models import QueuedMessage, QueuedRecipient

pytestmark = pytest.mark.django_db


def test_the_mail_log_shows_the_summary_and_the_problems(admin_client):
    url = reverse("admin:django_sendflare_queuedmessage_changelist")
    page = admin_client.get(url).content.decode()
    assert "Mail is flowing" in page
    message = QueuedMessage.objects.create(
        from_email="f@example.com", next_attempt_at=timezone.now() - datetime.timedelta(hours=1)
    )
    QueuedRecipient.objects.create(message=message, email="a@x.org", state="queued")
    page = admin_client.get(url).content.decode()
    assert "Mail is not flowing" in page
    assert "1 queued" in page and "is a worker running?" in page
