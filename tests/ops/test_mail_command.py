"""sendflare_mail list|retry|discard: the filters, --dry-run, and the unknown-retry refusal."""

from __future__ import annotations

import datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_sendflare.models import QueuedMessage, QueuedRecipient

pytestmark = pytest.mark.django_db(transaction=True)


def message(*states: str, mailer: str = "", age_days: float = 0, to: str = "r") -> QueuedMessage:
    msg = QueuedMessage.objects.create(
        mailer=mailer, from_email="f@example.com", subject="S", state="done"
    )
    if age_days:
        created = timezone.now() - datetime.timedelta(days=age_days)
        QueuedMessage.objects.filter(pk=msg.pk).update(created_at=created)
    for i, state in enumerate(states):
        QueuedRecipient.objects.create(
            message=msg, position=i, email=f"{to}{i}@x.org", state=state, error="refused"
        )
    return msg


def mail(*args: str) -> str:
    out = StringIO()
    call_command("sendflare_mail", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def states(msg: QueuedMessage) -> list[str]:
    return list(msg.recipients.order_by("position").values_list("state", flat=True))


def test_list_filters_by_state_address_mailer_age_and_id():
    old = message("failed", "sent", age_days=3)
    new = message("failed", mailer="bulk", to="b")
    assert mail("list").endswith("3 recipient(s).\n")
    assert mail("list", "--state", "failed").endswith("2 recipient(s).\n")
    assert mail("list", "--to", "B0@x.org").count("\n") == 2  # one row and the total
    assert f"{new.pk}\t" in mail("list", "--mailer", "bulk")
    assert f"{old.pk}\t" not in mail("list", "--mailer", "bulk")
    assert mail("list", "--older-than", "2d").endswith("2 recipient(s).\n")
    assert f"{new.pk}\t" in mail("list", "--newer-than", "1d")
    assert mail("list", str(old.pk), "--state", "sent").endswith("1 recipient(s).\n")


def test_retry_failed_acts_at_once_and_dry_run_changes_nothing():
    msg = message("failed", "sent")
    assert "Would retry 1 message(s)" in mail("retry", "--dry-run")
    assert states(msg) == ["failed", "sent"]
    assert "1 recipient(s) of 1 message(s) queued again" in mail("retry")
    assert states(msg) == ["queued", "sent"]
    msg.refresh_from_db()
    assert msg.state == "pending"


def test_retrying_unknown_recipients_is_refused_without_yes():
    msg = message("unknown", "failed")
    with pytest.raises(CommandError) as refused:
        mail("retry")
    assert refused.value.returncode == 2
    assert "mail a person twice" in str(refused.value)
    assert states(msg) == ["unknown", "failed"]  # nothing done
    mail("retry", "--state", "failed")  # the failed one alone needs no --yes
    assert states(msg) == ["unknown", "queued"]
    mail("retry", "--yes")
    assert states(msg) == ["queued", "queued"]


def test_discard_acts_at_once_on_the_matching_messages_only():
    keep = message("queued", mailer="other")
    drop = message("queued", "failed", "unknown", mailer="bulk")
    assert "Would discard from 1 message(s)" in mail("discard", "--mailer", "bulk", "--dry-run")
    assert states(drop) == ["queued", "failed", "unknown"]
    assert "2 recipient(s) of 1 message(s) discarded" in mail("discard", "--mailer", "bulk")
    assert states(drop) == ["discarded", "discarded", "unknown"]  # unknown may have been sent
    assert states(keep) == ["queued"]


@pytest.mark.parametrize(
    "args", [["list", "--state", "lost"], ["list", "--older-than", "yesterday-ish"]]
)
def test_bad_filters_are_usage_errors(args):
    with pytest.raises(CommandError) as raised:
        mail(*args)
    assert raised.value.returncode == 2
