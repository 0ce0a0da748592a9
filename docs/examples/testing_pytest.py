"""Testing your own app's mail against the sandbox, with pytest (included in the docs).

``tests/test_docs_examples.py`` imports these tests, so the suite runs them as written.
"""

import django
import pytest
from django.core.mail import send_mail

from django_sendflare.exceptions import SendflareAPIError

BACKEND = "django_sendflare.backends.EmailBackend"


@pytest.fixture
def sandbox_mail(settings, sendflare_sandbox_settings):
    """Send this test's mail through the real backend, into a fresh sandbox.

    Django's test runner replaces the email backend with locmem for every test: put the
    Sendflare backend back, or the mail never reaches the sandbox.
    """
    if django.VERSION >= (6, 1):
        settings.MAILERS = {"default": {"BACKEND": BACKEND}}
    else:
        settings.EMAIL_BACKEND = BACKEND
    return sendflare_sandbox_settings


def test_welcome_mail(sandbox_mail):
    send_mail("Welcome", "Hello", "noreply@example.com", ["ann@example.com"])

    [message] = sandbox_mail.messages()
    assert message["to"] == "ann@example.com"
    assert message["subject"] == "Welcome"


@pytest.mark.sendflare_sandbox(faults={"queue": ["503"]})
def test_an_api_outage_is_reported_not_retried(sandbox_mail):
    # The first request gets HTTP 503: the send may have been processed, so it is not retried
    # (that could mail Ann twice), and the error says so.
    with pytest.raises(SendflareAPIError) as raised:
        send_mail("Welcome", "Hello", "noreply@example.com", ["ann@example.com"])

    assert raised.value.may_have_been_processed
    assert [r["status"] for r in sandbox_mail.requests()] == [503]
    assert sandbox_mail.messages() == []
