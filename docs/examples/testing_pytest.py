"""Testing your own app's mail against the sandbox, with pytest (included in the docs).

``tests/test_docs_examples.py`` imports these tests, so the suite runs them as written.
"""

import django
import pytest
from django.core.mail import send_mail

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
def test_signup_survives_an_api_outage(sandbox_mail):
    # The first request gets HTTP 503: the send may have been processed, so it is not retried,
    # and the sandbox holds no message. fail_silently reports it in the return value instead.
    sent = send_mail("Welcome", "Hello", "noreply@example.com", ["ann@example.com"], True)

    assert sent == 0
    assert sandbox_mail.messages() == []
    assert [r["status"] for r in sandbox_mail.requests()] == [503]
