"""The backend owns its client through Django's open() / close() contract."""

from __future__ import annotations

import pytest
import responses
from django.core.mail import EmailMessage

from django_sendflare.backends import EmailBackend

from .envelopes import envelope

SEND = "https://api.sendflare.io/v1/send"


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(SEND, json=envelope())
        yield mock


def test_open_creates_the_client_once_and_close_releases_it(sendflare_backend):
    backend = EmailBackend()
    assert backend.client is None  # nothing is opened by merely building a backend
    assert backend.open() is True
    client = backend.client
    assert client is not None
    assert backend.open() is False and backend.client is client
    closed = []
    client.session.close = lambda: closed.append(True)  # type: ignore[method-assign]
    backend.close()
    assert backend.client is None and closed == [True]
    backend.close()  # closing a closed backend is harmless, as in Django's backends


def test_send_messages_opens_and_closes_when_not_open(sendflare_backend, api):
    backend = EmailBackend()
    assert backend.send_messages([EmailMessage("S", "B", None, ["a@example.com"])]) == 1
    assert backend.client is None


def test_an_open_connection_is_reused_and_left_open(sendflare_backend, api):
    with EmailBackend() as connection:
        client = connection.client
        assert client is not None
        connection.send_messages([EmailMessage("S", "B", None, ["a@example.com"])])
        connection.send_messages([EmailMessage("S", "B", None, ["b@example.com"])])
        assert connection.client is client
    assert connection.client is None
    assert len(api.calls) == 2


def test_a_failed_send_still_closes_what_it_opened(sendflare_backend, api):
    api.replace(responses.POST, SEND, json=envelope(100049))
    backend = EmailBackend(fail_silently=True)
    assert backend.send_messages([EmailMessage("S", "B", None, ["a@example.com"])]) == 0
    assert backend.client is None


def test_a_client_that_cannot_be_opened_fails_the_batch_with_statuses(
    sendflare_backend, api, monkeypatch
):
    from django_sendflare import exceptions as exc
    from django_sendflare.client import SendflareClient

    def broken(conf):
        raise OSError("the limiter's socket at redis://:pw@10.0.0.1 is gone")

    monkeypatch.setattr(SendflareClient, "from_settings", broken)
    messages = [EmailMessage("S", "B", None, [f"r{i}@example.com"]) for i in range(2)]
    with pytest.raises(exc.SendflareUnexpectedError, match="OSError") as excinfo:
        EmailBackend().send_messages(messages)
    assert excinfo.value.message_statuses == [m.sendflare_status for m in messages]
    assert ":pw@" not in str(excinfo.value)
    assert EmailBackend(fail_silently=True).send_messages(messages) == 0
    assert len(api.calls) == 0
