"""``manage.py sync_contacts``: output, exit status, --pending and the --watch worker."""

from __future__ import annotations

import datetime
import io
import os
import signal
import threading
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from django_sendflare.management.commands.sync_contacts import Command, parse_since
from django_sendflare.models import ContactChange

from .fakes import FakeClient


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("sync_contacts", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def exit_status(*args: str) -> int:
    """Run the command as manage.py does and return its exit status."""
    command = Command(stdout=io.StringIO(), stderr=io.StringIO())
    try:
        command.run_from_argv(["manage.py", "sync_contacts", *args])
    except SystemExit as exit:
        return int(exit.code or 0)
    return 0


@pytest.fixture
def world(make_user: Any, fake_api: FakeClient) -> FakeClient:
    """Three users; remote: one up to date, one stale, one without a user, one unsubscribed."""
    make_user("same@example.com", first_name="Same")
    make_user("stale@example.com", first_name="New")
    make_user("new@example.com")
    make_user("unsub@example.com")
    ContactChange.objects.all().delete()
    fake_api.add("same@example.com", firstName="Same")
    fake_api.add("stale@example.com", firstName="Old")
    fake_api.add("unsub@example.com", status="Unsubscribed")
    fake_api.add("orphan@example.com")
    return fake_api


def test_dry_run_prints_the_plan_and_calls_nothing(world: FakeClient) -> None:
    out, _ = run("--dry-run", "--prune", "--force")
    assert world.writes() == []
    assert "Plan (dry run: nothing is changed):" in out
    assert "  create   new@example.com (user" in out
    assert "  update   stale@example.com (user" in out and "firstName 'Old' -> 'New'" in out
    assert "  delete   orphan@example.com (no user)" in out
    assert "  status   unsub@example.com" in out and "Unsubscribed in Sendflare" in out
    assert "Would: create 1, update 1, re-create 0, delete 1; 3 API call(s)." in out


def test_dry_run_without_prune_lists_extras_as_kept(world: FakeClient) -> None:
    out, _ = run("--dry-run")
    assert "  extra    orphan@example.com (no user; kept, --prune deletes it)" in out
    assert "delete 0" in out


def test_dry_run_lists_conflicts(world: FakeClient, make_user: Any) -> None:
    make_user("NEW@example.com ")
    out, _ = run("--dry-run")
    assert "  conflict new@example.com: users" in out


def test_a_sync_prints_a_summary_and_exits_zero(world: FakeClient) -> None:
    out, _ = run()
    assert "Done: 1 created, 1 updated, 0 re-created, 0 deleted, 0 failed; 2 API call(s)" in out
    assert "1 without a user" in out
    assert exit_status() == 0  # a second run: nothing to do


def test_a_failed_call_exits_non_zero(world: FakeClient) -> None:
    from django_sendflare.exceptions import SendflareBadParameters

    world.fail_on = lambda call: SendflareBadParameters("nope") if call.method == "save" else None
    with pytest.raises(CommandError, match="2 call\\(s\\) failed") as caught:
        run()
    assert caught.value.returncode == 1
    assert exit_status() == 1


def test_a_refused_prune_exits_non_zero(world: FakeClient) -> None:
    with pytest.raises(CommandError, match="pruning was refused"):
        run("--prune")  # 1 extra of 4 contacts: 25%
    assert all(c.method != "delete" for c in world.calls)


def test_an_unreadable_list_exits_non_zero(world: FakeClient) -> None:
    world.down = True
    assert exit_status() == 1


@pytest.mark.parametrize(
    "args",
    [
        ("--pending", "--prune"),
        ("--watch", "--dry-run"),
        ("--since", "7d", "--prune"),
        ("--force",),
        ("--retry-failed",),
        ("--page-size", "501"),
        ("--since", "yesterday-ish"),
    ],
)
def test_bad_option_combinations_exit_2(
    args: tuple[str, ...], fake_api: FakeClient, db: Any
) -> None:
    assert exit_status(*args) == 2
    assert fake_api.calls == []


def test_parse_since() -> None:
    now = timezone.now()
    assert abs((now - parse_since("12h")) - datetime.timedelta(hours=12)) < datetime.timedelta(
        seconds=5
    )
    assert parse_since("2024-05-01") == datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone.utc)
    assert parse_since("2024-05-01T10:00:00+02:00").hour == 10


def test_pending_delivers_and_exits(make_user: Any, fake_api: FakeClient) -> None:
    make_user("a@example.com")
    make_user("b@example.com")
    out, _ = run("--pending")
    assert "Delivered: 2 saved; 2 API call(s)." in out
    assert ContactChange.objects.count() == 0


def test_pending_exits_non_zero_when_a_delivery_fails(make_user: Any, fake_api: FakeClient) -> None:
    make_user("a@example.com")
    fake_api.down = True
    with pytest.raises(CommandError, match="1 user\\(s\\) not delivered"):
        run("--pending")
    assert ContactChange.objects.get().attempts == 1


def test_retry_failed_puts_failed_changes_back(make_user: Any, fake_api: FakeClient) -> None:
    make_user("a@example.com")
    ContactChange.objects.update(state=ContactChange.State.FAILED, attempts=10)
    out, _ = run("--pending", "--retry-failed")
    assert "1 failed change(s) put back to pending." in out
    assert [c.method for c in fake_api.calls] == ["save"]


@pytest.mark.django_db(transaction=True)
def test_watch_delivers_until_sigterm(make_user: Any, fake_api: FakeClient) -> None:
    make_user("a@example.com")
    delivered = threading.Event()

    def watch_calls() -> None:
        # Saves a second user once the worker runs, then asks it to stop like a supervisor.
        # Whatever happens here, the worker is stopped: a failure must not hang the suite.
        try:
            for _ in range(1500):
                if fake_api.calls:
                    break
                threading.Event().wait(0.02)
            make_user("b@example.com")
            for _ in range(1500):
                if len(fake_api.calls) >= 2:
                    delivered.set()
                    break
                threading.Event().wait(0.02)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=watch_calls)
    helper.start()
    out, _ = run("--watch", "--interval", "0.05")
    helper.join()
    assert delivered.is_set()
    assert sorted(c.email for c in fake_api.calls) == ["a@example.com", "b@example.com"]
    assert "Stopped." in out
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is restored
