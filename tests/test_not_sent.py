"""Issue 22, part 2: an error raised before a request left is never "may have been processed".

Each way a request can fail before any byte of it reaches the API (building the client, the
rate limiter's wait, the connection, requests refusing its own setup, a number the socket cannot
take) is tried through the three ways mail and contacts reach the API: the sending backend,
queued mail delivered by ``sendflare_worker --once``, and a user's contact change delivered by
the same worker. Each time the sandbox must have received nothing, and the state a user sees
must say "not sent, tried again" (or "fix the settings"), never ``unknown``: an unknown recipient
is never re-sent automatically, a person has to resend it.
"""

from __future__ import annotations

import contextlib
import io
import socket
import socketserver
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.mail import EmailMessage
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from django_sendflare import exceptions as exc
from django_sendflare.backends import EmailBackend
from django_sendflare.models import ContactChange, QueuedMessage, QueuedRecipient
from django_sendflare.ratelimit import InProcessRateLimiter

from . import admin_pages
from .conftest import HAS_MAILERS
from .localserver import serving

pytestmark = pytest.mark.django_db(transaction=True)

QUEUED = "django_sendflare.backends.QueuedEmailBackend"
APP_ID = "test-app"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class UnbuildableLimiter(InProcessRateLimiter):
    """A limiter that cannot be built from its settings (like RATE_LIMIT = 1e309 did)."""

    def __init__(self, rate: float, key: str = "default", **options: Any) -> None:
        raise OverflowError("cannot convert float infinity to integer")


class EndlessWaitLimiter(InProcessRateLimiter):
    """A limiter whose slot is further away than any clock can wait (RATE_LIMIT = 1e-300):
    ``time.sleep()`` itself raises OverflowError, before the request is written."""

    def reserve(self) -> float:
        return 1e300


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RefusingProxy(socketserver.ThreadingTCPServer):
    """A forward proxy that answers every request, CONNECT included, with 403."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RefuseHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _RefuseHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # the request line and headers
        self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")


@dataclass
class Undo:
    """What a breakage changed outside the settings: environment variables, servers."""

    env: pytest.MonkeyPatch = field(default_factory=pytest.MonkeyPatch)
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __call__(self) -> None:
        self.env.undo()
        self.stack.close()


_Apply = Callable[[Any, Any, Undo], None]


@dataclass(frozen=True)
class Breakage:
    """One way for every request to fail before it leaves: ``apply(sandbox, settings, undo)``."""

    name: str
    apply: _Apply
    #: The settings are at fault: the client cannot even be built.
    configuration: bool = False


def _settings(**values: Any) -> _Apply:
    def apply(sandbox: Any, settings: Any, undo: Undo) -> None:
        settings.SENDFLARE = {**settings.SENDFLARE, **values}

    return apply


def _refused(sandbox: Any, settings: Any, undo: Undo) -> None:
    settings.SENDFLARE = {**settings.SENDFLARE, "API_URL": f"http://127.0.0.1:{closed_port()}"}


def _proxy(url: Callable[[], str]) -> _Apply:
    def apply(sandbox: Any, settings: Any, undo: Undo) -> None:
        undo.env.setenv("HTTP_PROXY", url())

    return apply


def _https(sandbox: Any, settings: Any) -> None:
    # HTTPS to the sandbox's port: whatever fails first, it fails before the TLS handshake.
    port = sandbox.url.rsplit(":", 1)[1]
    settings.SENDFLARE = {**settings.SENDFLARE, "API_URL": f"https://127.0.0.1:{port}"}


def _tunnel_refused(sandbox: Any, settings: Any, undo: Undo) -> None:
    _https(sandbox, settings)
    proxy = undo.stack.enter_context(serving(RefusingProxy()))
    undo.env.setenv("HTTPS_PROXY", proxy.url)


def _missing_ca_bundle(sandbox: Any, settings: Any, undo: Undo) -> None:
    _https(sandbox, settings)  # requests looks for the CA bundle before it connects
    undo.env.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca-bundle.pem")


BREAKAGES = [
    Breakage(
        "the client cannot be built (its limiter)",
        _settings(RATE_LIMIT=5, RATE_LIMITER=f"{__name__}.UnbuildableLimiter"),
        configuration=True,
    ),
    Breakage(
        "the limiter raises instead of giving a slot",
        _settings(RATE_LIMIT=5, RATE_LIMITER=f"{__name__}.EndlessWaitLimiter"),
    ),
    Breakage("the connection is refused", _refused),
    Breakage(
        "the proxy refuses the connection", _proxy(lambda: f"http://127.0.0.1:{closed_port()}")
    ),
    Breakage("the proxy refuses the tunnel (403 to CONNECT)", _tunnel_refused),
    Breakage(
        "requests refuses a SOCKS proxy (no PySocks)",
        _proxy(lambda: f"socks5://127.0.0.1:{closed_port()}"),
    ),
    Breakage("requests finds no CA bundle", _missing_ca_bundle),
]


@pytest.fixture
def sandbox(sendflare_sandbox_settings: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The sandbox; quick retries; no proxy from the environment unless a test sets one."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    settings.SENDFLARE = {
        **settings.SENDFLARE,
        "MAX_RETRIES": 1,
        "RETRY_MAX_TIME": 2.0,
        "TIMEOUT": (2.0, 2.0),
        "APP_ID": APP_ID,
    }
    return sendflare_sandbox_settings


@pytest.fixture
def broken(request: pytest.FixtureRequest, sandbox: Any, settings: Any) -> Any:
    """Apply the test's Breakage; return a function that undoes it."""
    breakage: Breakage = request.param
    working = dict(settings.SENDFLARE)
    undo = Undo()
    request.addfinalizer(undo)
    breakage.apply(sandbox, settings, undo)

    def repair() -> None:
        undo()
        settings.SENDFLARE = working

    return repair


#: Each test below runs once per breakage (``broken`` applies it, ``breakage`` describes it).
every_breakage = pytest.mark.parametrize(
    ("broken", "breakage"),
    [pytest.param(b, b, id=b.name) for b in BREAKAGES],
    indirect=["broken"],
)


def use_backend(settings: Any, backend: str) -> None:
    if HAS_MAILERS:
        settings.MAILERS = {"default": {"BACKEND": backend}}
    else:
        settings.EMAIL_BACKEND = backend


def worker_once() -> None:
    """``sendflare_worker --once``; its non-zero exit (the account cannot send) is expected."""
    with contextlib.suppress(CommandError):
        call_command("sendflare_worker", "--once", stdout=io.StringIO())


def queue_and_deliver(settings: Any, **sendflare: Any) -> None:
    """With these SENDFLARE settings: queue a message to a@example.com, run the worker once."""
    settings.SENDFLARE = {**settings.SENDFLARE, **sendflare}
    use_backend(settings, QUEUED)
    mail.send_mail("S", "B", "f@example.com", ["a@example.com"])
    worker_once()


def make_due(model: Any) -> None:
    model.objects.update(next_attempt_at=timezone.now())


@every_breakage
def test_the_sending_backend_reports_not_sent(sandbox, broken, breakage, settings):
    use_backend(settings, "django_sendflare.backends.EmailBackend")
    messages = [EmailMessage("S", "B", "f@example.com", [f"r{i}@example.com"]) for i in range(2)]
    if breakage.configuration:
        # Invalid settings raise whatever fail_silently says, as every configuration error.
        with pytest.raises(exc.SendflareConfigurationError, match="OverflowError"):
            EmailBackend(fail_silently=True).send_messages(messages)
    else:
        assert EmailBackend(fail_silently=True).send_messages(messages) == 0
        for message in messages:
            (recipient,) = message.sendflare_status.recipients.values()
            assert recipient.status == "failed"
            assert recipient.error is not None
            assert not recipient.error.may_have_been_processed, recipient.error
            assert recipient.error.request == "POST /v1/send"
    assert sandbox.requests() == []


@every_breakage
def test_queued_mail_stays_queued_and_goes_out_once_repaired(sandbox, broken, breakage, settings):
    use_backend(settings, QUEUED)
    mail.send_mail("S", "B", "f@example.com", ["a@example.com", "b@example.com"])
    worker_once()
    rows = list(QueuedRecipient.objects.order_by("position"))
    assert [r.state for r in rows] == ["queued", "queued"]
    assert sandbox.requests() == []
    # Nothing for a person to do but repair the settings: the worker sends it, once.
    broken()
    make_due(QueuedMessage)
    worker_once()
    assert sorted(m["to"] for m in sandbox.messages()) == ["a@example.com", "b@example.com"]
    assert set(QueuedRecipient.objects.values_list("state", flat=True)) == {"sent"}


@every_breakage
def test_a_contact_change_stays_pending_and_goes_out_once_repaired(sandbox, broken, breakage):
    get_user_model().objects.create_user(username="ada", email="ada@example.com")
    worker_once()
    (change,) = ContactChange.objects.all()
    assert change.state == ContactChange.State.PENDING
    assert sandbox.requests() == []
    broken()
    make_due(ContactChange)
    worker_once()
    assert [c["emailAddress"] for c in sandbox.contacts(APP_ID)] == ["ada@example.com"]
    assert not ContactChange.objects.exists()


def test_a_limiter_that_cannot_wait_leaves_queued_mail_queued_with_the_reason(sandbox, settings):
    # The case of the issue (RATE_LIMIT = 1e-300): once "POST /v1/send: The HTTP request failed
    # unexpectedly (OverflowError)" and unknown, although nothing was sent.
    queue_and_deliver(settings, RATE_LIMIT=5, RATE_LIMITER=f"{__name__}.EndlessWaitLimiter")
    row = QueuedRecipient.objects.get()
    assert row.state == "queued"
    assert row.error.startswith("POST /v1/send: Nothing was sent")
    assert "OverflowError" in row.error
    assert sandbox.requests() == []


def test_an_infinite_timeout_never_makes_mail_unknown(sandbox, settings):
    # The issue's own case: SENDFLARE["TIMEOUT"] = float("inf"). The settings may refuse it
    # (a configuration error) or the socket does (OverflowError before connecting): either
    # way nothing reaches the API and the mail waits, queued.
    settings.SENDFLARE = {**settings.SENDFLARE, "TIMEOUT": float("inf")}
    use_backend(settings, QUEUED)
    try:
        mail.send_mail("S", "B", "f@example.com", ["a@example.com"])
    except exc.SendflareConfigurationError:
        return  # refused when queued: nothing stored, the caller told at once
    worker_once()
    assert QueuedRecipient.objects.get().state == "queued"
    assert sandbox.requests() == []


def test_an_infinite_timeout_fails_an_immediate_send_as_not_sent(sandbox, settings):
    settings.SENDFLARE = {**settings.SENDFLARE, "TIMEOUT": float("inf")}
    message = EmailMessage("S", "B", "f@example.com", ["a@example.com"])
    try:
        sent = EmailBackend(fail_silently=True).send_messages([message])
    except exc.SendflareConfigurationError:
        sent = None
    else:
        (recipient,) = message.sendflare_status.recipients.values()
        assert recipient.status == "failed"
        assert recipient.error is not None and not recipient.error.may_have_been_processed
    assert sent in (0, None)
    assert sandbox.requests() == []


def test_a_failure_after_the_request_was_written_is_still_ambiguous(sandbox, settings):
    # The other side of the line: the limiter fails once the request has gone out. The API
    # may have it (here it does): unknown, not re-sent.
    queue_and_deliver(settings, RATE_LIMIT=5, RATE_LIMITER=f"{__name__}.FailsAfterSendingLimiter")
    assert QueuedRecipient.objects.get().state == "unknown"
    assert [m["to"] for m in sandbox.messages()] == ["a@example.com"]


class FailsAfterSendingLimiter(InProcessRateLimiter):
    def sent(self) -> None:
        raise RuntimeError("the limiter's store went away")


class LeakyUnbuildableLimiter(InProcessRateLimiter):
    """A limiter whose construction fails with a text that repeats secrets it was given."""

    def __init__(self, rate: float, key: str = "default", **options: Any) -> None:
        raise ValueError(f"cannot use {options['url']} for key {key}")


def test_a_client_that_cannot_be_built_says_why_without_secrets(sandbox, settings):
    settings.SENDFLARE = {
        **settings.SENDFLARE,
        "RATE_LIMIT": 5,
        "RATE_LIMITER": f"{__name__}.LeakyUnbuildableLimiter",
        "RATE_LIMITER_OPTIONS": {"url": "redis://:hunter2@cache:6379/0"},
    }
    with pytest.raises(exc.SendflareConfigurationError) as error:
        EmailBackend().send_messages([EmailMessage("S", "B", "f@example.com", ["a@example.com"])])
    text = str(error.value)
    assert "ValueError: cannot use redis://***:***@cache:6379/0" in text
    assert "hunter2" not in text and sandbox.token not in text
    assert error.value.__cause__ is None and error.value.__context__ is None
    assert sandbox.requests() == []


def test_the_admin_sync_action_says_it_will_retry_and_sends_nothing(sandbox, settings):
    # The third way to the contact API: an admin action, through the same client.
    boss = admin_pages.superuser_client()
    ada = get_user_model().objects.create_user(username="ada", email="ada@example.com")
    ContactChange.objects.all().delete()
    settings.SENDFLARE = {
        **settings.SENDFLARE,
        "RATE_LIMIT": 5,
        "RATE_LIMITER": f"{__name__}.EndlessWaitLimiter",
    }
    data = {"action": "sync_to_sendflare", "_selected_action": [ada.pk], "index": 0}
    response = boss.post(reverse("admin:auth_user_changelist"), data, follow=True)
    text = " ".join(str(m) for m in response.context["messages"])
    assert "(ada@example.com): " in text and "it will be retried" in text, text
    assert "Nothing was sent" in text
    (change,) = ContactChange.objects.all()
    assert change.state == ContactChange.State.PENDING
    assert sandbox.requests() == []
