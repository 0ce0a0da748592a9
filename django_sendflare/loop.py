"""The one worker loop: a pass, a wait, again, until told to stop.

``sendflare_worker`` (:mod:`django_sendflare.worker`) and ``sync_contacts --watch``
(:mod:`django_sendflare.contacts.watch`) differ only in what one pass delivers; the rest is
here, once:

* the loop polls: after a pass that made progress it looks again at once (there may be more),
  after an idle one it waits ``interval`` seconds, and after a pass that met an account error
  (a refused token, a used-up quota: every request would fail the same way) it waits at least
  :data:`~django_sendflare.outcomes.ACCOUNT_ERROR_WAIT`;
* ``stop`` (a :class:`threading.Event`, set by SIGTERM or Ctrl-C through :func:`stop_on_signals`)
  ends the loop after the pass under way, whose requests in flight are finished, and cuts a wait
  short;
* before each pass, :func:`~django.db.close_old_connections`: a long-running process must drop
  connections that broke or passed ``CONN_MAX_AGE``;
* a :class:`~django.db.DatabaseError` (a restarted server) is logged and the loop goes on with
  a fresh connection after the wait; any other exception is a bug and ends the loop.

``--once`` is one pass, without the loop: the commands call their worker's pass directly.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import DatabaseError, close_old_connections

from .outcomes import ACCOUNT_ERROR_WAIT

logger = logging.getLogger(__name__)

R = TypeVar("R")


@dataclass(frozen=True)
class Pass(Generic[R]):
    """What one pass did, as the loop needs to know it."""

    #: The pass's own report (given to ``on_report`` when ``news``).
    report: R
    #: Something was delivered or tried: there may be more right away.
    progressed: bool
    #: Worth reporting (a user held by another worker, say, is no news).
    news: bool
    #: The account error that stopped the pass, if one did (the loop then waits longer).
    account_error: object | None = None


class WorkerLoop(Generic[R]):
    """Runs ``run_pass`` until ``stop`` is set; see the module's docstring."""

    def __init__(
        self,
        run_pass: Callable[[], Pass[R]],
        *,
        stop: threading.Event,
        interval: float,
        on_report: Callable[[R], None] | None = None,
        name: str = "Sendflare worker",
    ) -> None:
        self.run_pass = run_pass
        self.stop = stop
        self.interval = interval
        self.on_report = on_report
        self.name = name

    def run(self) -> None:
        """Loop until ``stop`` is set; the pass under way is finished first."""
        while not self.stop.is_set():
            close_old_connections()
            wait = self.step()
            if wait:
                self.stop.wait(wait)
        close_old_connections()

    def step(self) -> float:
        """One pass; return the seconds to wait before the next one."""
        try:
            result = self.run_pass()
        except DatabaseError:
            logger.exception("%s: database error; retrying in %.0fs", self.name, self.interval)
            return self.interval
        if self.on_report is not None and result.news:
            self.on_report(result.report)
        if result.account_error is not None:
            wait = max(self.interval, ACCOUNT_ERROR_WAIT)
            logger.error("%s: %s; waiting %.0fs", self.name, result.account_error, wait)
            return wait
        return 0.0 if result.progressed else self.interval


@contextlib.contextmanager
def stop_on_signals(
    stop: threading.Event, notice: Callable[[], None] | None = None
) -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT (Ctrl-C) set ``stop`` (after ``notice()``).

    The previous handlers are put back at the end. Outside the main thread (a test calling the
    command from a thread) signals cannot be handled there, and nothing is installed.
    """
    previous: dict[signal.Signals, Any] = {}

    def request_stop(signum: int, frame: Any) -> None:
        if notice is not None:
            notice()
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, request_stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
