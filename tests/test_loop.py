"""The one worker loop: waits, database errors, account errors, stop, signals."""

from __future__ import annotations

import os
import signal
import threading

import pytest
from django.db import OperationalError

from django_sendflare.loop import Pass, WorkerLoop, stop_on_signals
from django_sendflare.outcomes import ACCOUNT_ERROR_WAIT


class Passes:
    """Plays the given passes in order (an exception is raised), then stops the loop."""

    def __init__(self, stop: threading.Event, *passes: Pass[str] | Exception) -> None:
        self.stop = stop
        self.passes = list(passes)
        self.calls = 0

    def __call__(self) -> Pass[str]:
        self.calls += 1
        item = self.passes.pop(0)
        if not self.passes:
            self.stop.set()
        if isinstance(item, Exception):
            raise item
        return item


IDLE = Pass("idle", progressed=False, news=False)
BUSY = Pass("busy", progressed=True, news=True)


def test_the_wait_follows_what_the_pass_did():
    stop = threading.Event()
    loop = WorkerLoop(Passes(stop, BUSY, IDLE), stop=stop, interval=2.0)
    assert loop.step() == 0.0  # progress: look again at once
    assert loop.step() == 2.0
    held = Pass("held", progressed=True, news=True, account_error="token refused")
    loop = WorkerLoop(Passes(stop, held), stop=stop, interval=2.0)
    assert loop.step() == ACCOUNT_ERROR_WAIT


def test_a_database_error_is_logged_and_the_loop_goes_on(caplog):
    stop = threading.Event()
    passes = Passes(stop, OperationalError("server restarted"), BUSY)
    reports: list[str] = []
    loop = WorkerLoop(passes, stop=stop, interval=0.01, on_report=reports.append)
    loop.run()
    assert passes.calls == 2
    assert reports == ["busy"]
    assert "database error" in caplog.text and "server restarted" in caplog.text


def test_a_bug_ends_the_loop():
    stop = threading.Event()
    loop = WorkerLoop(Passes(stop, ValueError("bug"), BUSY), stop=stop, interval=0.01)
    with pytest.raises(ValueError, match="bug"):
        loop.run()


def test_only_news_is_reported_and_stop_cuts_the_wait_short():
    stop = threading.Event()
    reports: list[str] = []
    loop = WorkerLoop(lambda: IDLE, stop=stop, interval=30.0, on_report=reports.append)
    thread = threading.Thread(target=loop.run)
    thread.start()
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert reports == []


def test_sigterm_sets_stop_and_the_handlers_are_put_back():
    stop = threading.Event()
    before = signal.getsignal(signal.SIGTERM)
    notices: list[str] = []
    with stop_on_signals(stop, lambda: notices.append("stopping")):
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
    assert notices == ["stopping"]
    assert signal.getsignal(signal.SIGTERM) is before
