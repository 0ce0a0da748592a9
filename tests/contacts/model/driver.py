"""The model test's ONE door into the library: every call the model makes goes through here.

When the library's functions are renamed or moved, only this module changes; the state machine
(``test_model.py``) speaks of users, admin actions, commands, faults and time, never of modules.

Everything here runs in the test's thread, against the real code and the sandbox's standalone
server (real HTTP on loopback). Two things a single thread cannot do for real are emulated, and
said so where they are:

* "concurrently": :meth:`Driver.full_sync_with_interleaving` runs other work at a chosen moment
  of a full sync (after its listing was read, just before its first write), which is the
  interleaving that matters for "deletes win"; and
* "a worker killed mid-run": :meth:`Driver.deliver_and_die` makes the worker stop dead at its
  Nth API call, without running the cleanup a killed process would never run.
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, suppress
from dataclasses import dataclass
from typing import Any
from unittest import mock

from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import F, Q
from django.test import override_settings

from django_sendflare.client import get_client
from django_sendflare.contacts import full_sync as _sync
from django_sendflare.contacts import outbox as _outbox
from django_sendflare.contacts import services as _services
from django_sendflare.models import ContactChange, ContactSyncState
from django_sendflare.queue.leases import Lease
from django_sendflare.sandbox.pytest_plugin import SandboxHandle

APP_ID = "model-app"
#: Attempts before a change is parked as failed (small, so that the model reaches it).
MAX_ATTEMPTS = 3
#: The client's read timeout and how long a "hang" holds the answer back (bounded hangs).
READ_TIMEOUT = 0.25
HANG_SECONDS = 0.35
#: Contacts per page of the listing in a full sync: one, so that a few contacts make pages.
PAGE_SIZE = 1
#: Nothing listens on port 1 of loopback: a shared limiter there is "down" (refused at once).
DEAD_REDIS_URL = "redis://127.0.0.1:1/5"


class LibraryCrash(AssertionError):
    """A raw exception reached an entry point a user sees (command, admin action): I5."""


class WorkerKilled(BaseException):
    """Raised inside a worker to stop it dead (BaseException: no ``except Exception`` eats it)."""


@dataclass(frozen=True)
class RemoteContact:
    """A contact as the sandbox holds it (what the model compares)."""

    email: str
    status: str
    first_name: str
    last_name: str


@dataclass
class CommandRun:
    """The outcome of one management command."""

    ok: bool
    output: str


def _nothing(kind: str, email: str) -> None:
    pass


class _InterposedClient:
    """A real client whose API calls call ``before(kind, email)`` first and ``after(kind,
    email)`` once they returned (not when they raised); everything else is the client's own.

    ``iter_contacts`` is the client's own, run on this object, so that its pages go through
    ``list_contacts`` here too.
    """

    def __init__(
        self,
        client: Any,
        before: Callable[[str, str], None] = _nothing,
        after: Callable[[str, str], None] = _nothing,
    ) -> None:
        self._client = client
        self._before = before
        self._after = after

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _call(self, kind: str, method: str, kwargs: dict[str, Any]) -> Any:
        email = str(kwargs.get("email", ""))
        self._before(kind, email)
        result = getattr(self._client, method)(**kwargs)
        self._after(kind, email)
        return result

    def list_contacts(self, **kwargs: Any) -> Any:
        return self._call("list", "list_contacts", kwargs)

    def iter_contacts(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        return type(self._client).iter_contacts(self, **kwargs)  # type: ignore[no-any-return]

    def save_contact(self, **kwargs: Any) -> Any:
        return self._call("save", "save_contact", kwargs)

    def delete_contact(self, **kwargs: Any) -> Any:
        return self._call("delete", "delete_contact", kwargs)


class Driver:
    """Drives Django users, the admin's services, the commands, the sandbox and the clock."""

    def __init__(self, sandbox: SandboxHandle) -> None:
        self.sandbox = sandbox
        self._limiter_down = False
        self._override: override_settings | None = None
        self._configure()

    def close(self) -> None:
        """Put the settings back."""
        if self._override is not None:
            self._override.disable()
            self._override = None

    # -- configuration --------------------------------------------------------------------

    def _configure(self) -> None:
        conf: dict[str, Any] = {
            "API_URL": self.sandbox.url,
            "API_TOKEN": self.sandbox.token,
            "APP_ID": APP_ID,
            "SYNC_CONTACTS": True,
            # No retries inside the client: every fault reaches the code under test.
            "MAX_RETRIES": 0,
            "TIMEOUT": (1.0, READ_TIMEOUT),
            "RATE_LIMIT": 0,
            "CONTACTS_MAX_ATTEMPTS": MAX_ATTEMPTS,
        }
        if self._limiter_down:
            conf.update(
                RATE_LIMIT=1000,
                RATE_LIMITER="django_sendflare.ratelimit.RedisRateLimiter",
                RATE_LIMITER_OPTIONS={"url": DEAD_REDIS_URL},
            )
        # One override at a time (stacking one per change would nest without end).
        self.close()
        self._override = override_settings(SENDFLARE=conf)
        self._override.enable()

    def set_limiter_down(self, down: bool) -> None:
        """Point the shared (Redis) limiter at a server that is not there, or go back."""
        self._limiter_down = down
        self._configure()

    def reset(self) -> None:
        """A clean slate for one run of the model: no users, no outbox, no contacts, no faults."""
        self._limiter_down = False
        self._configure()
        get_user_model().objects.all().delete()
        ContactChange.objects.all().delete()
        ContactSyncState.objects.all().delete()
        self.sandbox.reset()
        self.sandbox.clear_faults()

    # -- Django's side: real saves and deletes (the receivers record the outbox rows) ----

    def create_user(self, username: str, email: str, first_name: str) -> int:
        user = get_user_model().objects.create_user(
            username=username, email=email, first_name=first_name
        )
        return int(user.pk)

    def _update_user(self, pk: int, **fields: Any) -> None:
        user = get_user_model().objects.get(pk=pk)
        for name, value in fields.items():
            setattr(user, name, value)
        user.save()

    def rename(self, pk: int, first_name: str) -> None:
        self._update_user(pk, first_name=first_name)

    def change_email(self, pk: int, email: str) -> None:
        self._update_user(pk, email=email)

    def deactivate(self, pk: int) -> None:
        self._update_user(pk, is_active=False)

    def delete_user(self, pk: int) -> None:
        get_user_model().objects.get(pk=pk).delete()

    # -- the admin's actions (the services behind them) ----------------------------------

    def admin_sync(self, pks: list[int]) -> list[str]:
        """ "Sync to Sendflare" on these users; the outcome of each."""
        users = list(get_user_model().objects.filter(pk__in=pks).order_by("pk"))
        with _entry_point("the admin action 'Sync to Sendflare'"):
            return [r.outcome.value for r in _services.sync_users(users).results]

    def admin_delete(self, pks: list[int]) -> list[str]:
        """ "Delete Sendflare contact" on these users; the outcome of each."""
        users = list(get_user_model().objects.filter(pk__in=pks).order_by("pk"))
        with _entry_point("the admin action 'Delete Sendflare contact'"):
            return [r.outcome.value for r in _services.delete_user_contacts(users)]

    # -- the commands ---------------------------------------------------------------------

    def deliver_pending(self) -> CommandRun:
        """``manage.py sync_contacts --pending`` (what is due now)."""
        return self._command("--pending")

    def full_sync(self) -> CommandRun:
        """``manage.py sync_contacts`` (a full sync, small pages)."""
        return self._command("--page-size", str(PAGE_SIZE), "--no-progress")

    def _command(self, *args: str) -> CommandRun:
        out = io.StringIO()
        with _entry_point(f"manage.py sync_contacts {' '.join(args)}"), redirect_stderr(out):
            try:
                call_command("sync_contacts", *args, stdout=out, stderr=out)
            except CommandError as error:
                return CommandRun(False, f"{out.getvalue()}\n{error}")
        return CommandRun(True, out.getvalue())

    def full_sync_with_interleaving(self, meanwhile: Callable[[], None], spare: str = "") -> bool:
        """A full sync during which ``meanwhile`` runs: once its plan is made, just before its
        first write that is not for the address ``spare`` (or after the sync, when it makes
        none).

        ``meanwhile`` stands for another process (a worker, the admin, a user deleting their
        account) acting while the sync applies its plan: what the sync does after it was
        planned before it. ``spare`` is the address of the user ``meanwhile`` acts on: a call
        the sync is already making for that user cannot see what happens after the user was
        re-read (a race no design closes), so the sync's call for it is let through first.
        Returns whether the sync completed.
        """
        pending = [meanwhile]
        spared = spare.strip().lower()

        def before(kind: str, email: str) -> None:
            if kind != "list" and pending and email.strip().lower() != spared:
                pending.pop()()

        client = _InterposedClient(get_client(), before=before)
        with _entry_point("the full sync"):
            try:
                report = _sync.run_sync(client=client, page_size=PAGE_SIZE)  # type: ignore[arg-type]
                ok = report.ok
            except _sync.SyncAborted:
                ok = False
        if pending:
            pending.pop()()
        return ok

    def deliver_and_die(self, calls_before_death: int) -> None:
        """A ``--pending`` worker that is SIGKILLed at its ``calls_before_death + 1``-th API call.

        Emulated in-process: the call raises :class:`WorkerKilled`, and the worker's lease
        releases (which a killed process never runs) are suppressed during the run. Whatever
        the worker had leased stays leased, exactly as the dead process left it.
        """
        calls = [0]

        def before(kind: str, email: str) -> None:
            calls[0] += 1
            if calls[0] > calls_before_death:
                raise WorkerKilled

        client = _InterposedClient(get_client(), before=before)
        no_release = mock.patch.object(Lease, "release", lambda *a, **k: None)
        no_release_all = mock.patch.object(Lease, "release_all", lambda *a, **k: None)
        with no_release, no_release_all, suppress(WorkerKilled):
            _outbox.deliver_pending(client=client)  # type: ignore[arg-type]

    def deliver_with_a_second_worker(self, calls_before: int) -> None:
        """Two ``--pending`` workers at once: the second runs whole just before the first makes
        its ``calls_before + 1``-th API call (holding that user's lease, its batch picked).

        One thread: the second worker's run is the interleaving, at that call boundary.
        """
        calls = [0]

        def before(kind: str, email: str) -> None:
            calls[0] += 1
            if calls[0] == calls_before + 1:
                _outbox.deliver_pending()

        client = _InterposedClient(get_client(), before=before)
        with _entry_point("two sync_contacts --pending workers"):
            _outbox.deliver_pending(client=client)  # type: ignore[arg-type]
        if calls[0] <= calls_before:
            with _entry_point("the second sync_contacts --pending worker"):
                _outbox.deliver_pending()

    # -- the clock ------------------------------------------------------------------------

    def advance_clock(self, seconds: float, *, leases: bool = True) -> None:
        """Let ``seconds`` pass for the outbox's backoffs and (unless not) the users' leases.

        Done by moving the stored deadlines back, so that nothing else about time is faked.
        """
        delta = datetime.timedelta(seconds=seconds)
        ContactChange.objects.update(next_attempt_at=F("next_attempt_at") - delta)
        if leases:
            ContactSyncState.objects.filter(lease_until__isnull=False).update(
                lease_until=F("lease_until") - delta
            )

    # -- faults ---------------------------------------------------------------------------

    def set_fault_rate(self, kind: str, rate: float, seed: int) -> None:
        """From now on, API requests fail with ``kind`` at ``rate`` (seeded: reproducible).

        ``kind`` is a sandbox fault kind, or ``"hang"``: an answer held back longer than the
        client's read timeout (the request is processed).
        """
        sandbox_kind = "latency" if kind == "hang" else kind
        self.sandbox.set_faults(rates={sandbox_kind: rate}, seed=seed, slow=HANG_SECONDS)

    def queue_faults(self, *kinds: str) -> None:
        """The next API requests get these faults in order (``"ok"``: none)."""
        self.sandbox.queue_faults(*("latency" if k == "hang" else k for k in kinds))

    def clear_fault_queue(self) -> None:
        """Forget the queued faults not used yet (the rates stay)."""
        faults = self.sandbox.sandbox.faults()
        self.sandbox.set_faults(
            rates=faults["rates"], seed=faults["seed"], slow=faults["slow"], queue=()
        )

    def clear_faults(self) -> None:
        self.sandbox.set_faults(slow=HANG_SECONDS)

    # -- Sendflare's side -----------------------------------------------------------------

    def remote_contacts(self) -> dict[str, RemoteContact]:
        """The sandbox's contacts by normalised address (read without faults)."""
        return {
            c["emailAddress"].strip().lower(): RemoteContact(
                c["emailAddress"], c["status"], c["firstName"], c["lastName"]
            )
            for c in self.sandbox.contacts(APP_ID)
        }

    def unsubscribe_at_sendflare(self, email: str) -> bool:
        return self.sandbox.unsubscribe(APP_ID, email)

    def delete_at_sendflare(self, email: str) -> bool:
        return self.sandbox.remove_contact(APP_ID, email)

    # -- what the library has recorded (for I3, I4, I5) ------------------------------------

    def recorded_addresses(self) -> set[str]:
        """Every address the library still has a record of (outbox rows, sync state)."""
        found: set[str] = set()
        for email, previous in ContactChange.objects.values_list("email", "previous_email"):
            found.update((email, previous))
        for synced, stale in ContactSyncState.objects.values_list("synced_email", "stale_emails"):
            found.update((synced, *stale))
        return {a.strip().lower() for a in found if a and a.strip()}

    def recorded_unsubscribed(self) -> set[str]:
        """The user keys whose contact the library has recorded as Unsubscribed."""
        states = ContactSyncState.objects.filter(
            Q(remote_status="Unsubscribed") | Q(unsubscribed_at__isnull=False)
        )
        return set(states.values_list("user_key", flat=True))

    def failed_changes(self) -> dict[int, tuple[str, int, str]]:
        """Changes parked as failed: id -> (user key, attempts, last error)."""
        return {
            row_id: (key, attempts, error)
            for row_id, key, attempts, error in ContactChange.objects.filter(
                state=ContactChange.State.FAILED
            ).values_list("id", "user_key", "attempts", "last_error")
        }


@contextmanager
def _entry_point(name: str) -> Iterator[None]:
    """Turn any exception other than the entry point's own into an I5 failure."""
    try:
        yield
    except (AssertionError, WorkerKilled):
        raise
    except Exception as error:
        raise LibraryCrash(
            f"I5: a raw {type(error).__module__}.{type(error).__name__} reached {name}: {error}"
        ) from error
