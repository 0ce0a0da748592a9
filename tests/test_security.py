"""Secrets stay secret, redirects are refused, error texts name the request, never its URL."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import responses
from django.core import mail
from django.utils.log import AdminEmailHandler
from django.views.debug import ExceptionReporter

from django_sendflare import exceptions as exc
from django_sendflare.backends import EmailBackend
from django_sendflare.client import SendflareClient
from django_sendflare.retry import RetryPolicy

from .envelopes import envelope
from .localserver import recording_server

TOKEN = "tok-SECRET-4f9a1c7e2b"


def free_port() -> int:
    """A loopback port with nothing listening on it: the API is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def closing_server() -> Iterator[str]:
    """Accepts each connection, reads the request, then closes without answering."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.recv(65536)
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()


@pytest.fixture
def down_api(settings, sendflare_backend):
    def configure(url: str) -> None:
        settings.SENDFLARE = {
            "API_TOKEN": TOKEN,
            "API_URL": url,
            "RATE_LIMIT": 0,
            "MAX_RETRIES": 0,
        }

    return configure


class CapturingAdminEmailHandler(AdminEmailHandler):
    """Django's handler, unchanged, except that the mail it would send is kept."""

    def __init__(self) -> None:
        super().__init__(include_html=True)
        self.sent: list[tuple[str, str, str | None]] = []

    def send_mail(self, subject, message, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.sent.append((subject, message, kwargs.get("html_message")))


def report_of(error: BaseException) -> tuple[str, str]:
    """The text and HTML report AdminEmailHandler mails for ``error`` (DEBUG=False)."""
    handler = CapturingAdminEmailHandler()
    logger = logging.getLogger("tests.security.report")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise error
        except type(error):
            logger.exception("Sending failed")
    finally:
        logger.removeHandler(handler)
    ((_, text, html),) = handler.sent
    assert html is not None
    return text, html


@pytest.mark.parametrize("api", ["refused", "closed"])
def test_the_token_is_not_in_the_admin_error_report(down_api, settings, api):
    # Issue 9, failure 4: urllib3's frame locals (the Authorization header) reached the report
    # through the chained exception.
    assert settings.DEBUG is False
    with closing_server() as closed_url:
        down_api(f"http://127.0.0.1:{free_port()}" if api == "refused" else closed_url)
        with pytest.raises(exc.SendflareAPIError) as excinfo:
            mail.send_mail("S", "B", "f@example.com", ["a@example.com"])
    error = excinfo.value
    text, html = report_of(error)
    assert TOKEN not in text
    assert TOKEN not in html
    assert type(error).__name__ in text and "POST /v1/send" in text
    # Exactly as ExceptionReporter builds it for an email, straight from the exception.
    reporter = ExceptionReporter(None, type(error), error, error.__traceback__, is_email=True)
    assert TOKEN not in reporter.get_traceback_text()
    assert TOKEN not in reporter.get_traceback_html()
    assert error.__cause__ is None and error.__context__ is None


def test_no_token_in_texts_reprs_or_logs(down_api, caplog):
    caplog.set_level(logging.DEBUG)
    down_api(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(exc.SendflareConnectionError) as excinfo:
        mail.send_mail("S", "B", "f@example.com", ["a@example.com"])
    error = excinfo.value
    for text in (str(error), repr(error), caplog.text):
        assert TOKEN not in text
    assert "POST /v1/send" in str(error) and "ConnectionRefusedError" in str(error)
    assert "a@example.com" in caplog.text


def test_credentials_in_an_api_url_stay_out_of_errors_and_reprs(caplog):
    # The settings refuse such a URL (check E002); a client built by hand can still have one.
    caplog.set_level(logging.DEBUG)
    # No local holds the URL: the frames of this test are part of the report too.
    client = SendflareClient(
        TOKEN,
        api_url=f"http://user:url-password@127.0.0.1:{free_port()}",
        retry=RetryPolicy(max_retries=0),
    )
    with pytest.raises(exc.SendflareConnectionError) as excinfo:
        client.send(from_email="f@example.com", to="a@example.com", subject="S", body="B")
    for text in (str(excinfo.value), repr(excinfo.value), caplog.text, repr(client)):
        assert "url-password" not in text
        assert TOKEN not in text
    text, html = report_of(excinfo.value)
    assert "url-password" not in text and "url-password" not in html
    assert TOKEN not in text and TOKEN not in html


class _RedirectHandler(BaseHTTPRequestHandler):
    target = ""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(307)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_307_to_another_host_is_an_error_and_re_posts_nothing(settings, sendflare_backend):
    # Issue 9, failure 5: the message was re-posted to the other host and counted as sent.
    with recording_server() as elsewhere:
        handler = type("Handler", (_RedirectHandler,), {"target": elsewhere.url + "/v1/send"})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            settings.SENDFLARE = {
                "API_TOKEN": TOKEN,
                "API_URL": f"http://127.0.0.1:{server.server_address[1]}",
                "RATE_LIMIT": 0,
            }
            with pytest.raises(exc.SendflareRedirectError) as excinfo:
                mail.send_mail("S", "B", "f@example.com", ["a@example.com"])
            message = mail.EmailMessage("S", "B", "f@example.com", ["a@example.com"])
            assert EmailBackend(fail_silently=True).send_messages([message]) == 0
        finally:
            server.shutdown()
            server.server_close()
        assert elsewhere.bodies == []
    error = excinfo.value
    assert error.status_code == 307 and error.scope == "account" and not error.retryable
    assert repr(f"{elsewhere.url}/v1/send") in str(error) and "API_URL" in str(error)


@responses.activate
def test_every_3xx_is_a_redirect_error_without_credentials_in_the_text():
    responses.post(
        "https://api.test.invalid/v1/send",
        status=302,
        headers={"Location": "https://user:pw@evil.example/x?token=abc"},
    )
    client = SendflareClient(TOKEN, api_url="https://api.test.invalid")
    with pytest.raises(exc.SendflareRedirectError) as excinfo:
        client.send(from_email="f@example.com", to="a@example.com", subject="S", body="B")
    text = str(excinfo.value)
    assert "evil.example/x" in text
    assert "pw" not in text and "abc" not in text
    assert len(responses.calls) == 1


@responses.activate
def test_a_service_code_wins_over_the_http_status():
    # 403 with 100048: a refused sender, not a refused token.
    responses.post(
        "https://api.test.invalid/v1/send",
        status=403,
        json=envelope(100048, message="The sender's email address does not exist"),
    )
    client = SendflareClient(TOKEN, api_url="https://api.test.invalid")
    with pytest.raises(exc.SendflareUnknownSender) as excinfo:
        client.send(from_email="f@example.com", to="a@example.com", subject="S", body="B")
    assert not isinstance(excinfo.value, exc.SendflareAuthenticationError)
    assert excinfo.value.scope == "sender" and not excinfo.value.account_level
    assert "from 'f@example.com'" in str(excinfo.value)
