"""Testing your own app's mail against the sandbox, with Django's TestCase (in the docs).

``tests/test_docs_examples.py`` imports the test case, so the suite runs it as written.
"""

import django
from django.core.mail import send_mail
from django.test import TestCase, override_settings

from django_sendflare.sandbox.engine import SandboxConfig
from django_sendflare.sandbox.server import start_in_thread

BACKEND = "django_sendflare.backends.EmailBackend"


def mail_into(url, token):
    """Settings that send through the Sendflare backend to the API at ``url``."""
    sendflare = {"API_URL": url, "API_TOKEN": token, "RATE_LIMIT": 0}
    if django.VERSION >= (6, 1):
        return {"SENDFLARE": sendflare, "MAILERS": {"default": {"BACKEND": BACKEND}}}
    return {"SENDFLARE": sendflare, "EMAIL_BACKEND": BACKEND}


class WelcomeMailTests(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # One sandbox for the class, on a free loopback port, in a background thread.
        cls.sandbox = start_in_thread(SandboxConfig(token="test-token", rate_limit=0))
        cls.addClassCleanup(cls.sandbox.stop)

    def setUp(self):
        self.sandbox.sandbox.reset()  # forget the previous test's messages
        # Django's test runner installs locmem: route this test's mail to the sandbox.
        routing = override_settings(**mail_into(self.sandbox.url, "test-token"))
        routing.enable()
        self.addCleanup(routing.disable)

    def test_welcome_mail(self):
        send_mail("Welcome", "Hello", "noreply@example.com", ["ann@example.com"])

        [message] = self.sandbox.sandbox.messages()
        self.assertEqual(message["to"], "ann@example.com")
