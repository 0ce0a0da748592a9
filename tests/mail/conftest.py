"""Fixtures of the queued-mail tests: the queued backend as Django's mailer."""

from __future__ import annotations

import pytest

from ..conftest import HAS_MAILERS

QUEUED = "django_sendflare.backends.QueuedEmailBackend"
DIRECT = "django_sendflare.backends.EmailBackend"


def queued_for(alias: str, **options: object) -> dict[str, dict]:
    """MAILERS (Django 6.1): "default" queues the mail that the entry ``alias`` delivers."""
    return {
        "default": {"BACKEND": QUEUED, "OPTIONS": {"mailer": alias}},
        alias: {"BACKEND": DIRECT, "OPTIONS": options},
    }


@pytest.fixture
def queued_backend(settings):
    """Route Django's mail into the queue (MAILERS on Django 6.1, EMAIL_BACKEND before)."""

    def configure(**options):
        if HAS_MAILERS:
            settings.MAILERS = {"default": {"BACKEND": QUEUED, "OPTIONS": options}}
        else:
            settings.SENDFLARE = {
                **settings.SENDFLARE,
                **{k.upper(): v for k, v in options.items()},
            }
            settings.EMAIL_BACKEND = QUEUED

    configure()
    return configure


@pytest.fixture
def sandbox(sendflare_sandbox_settings, queued_backend, settings):
    """The sandbox, with SENDFLARE pointed at it and quick client retries."""
    settings.SENDFLARE = {
        **settings.SENDFLARE,
        "RATE_LIMIT": 0,
        "MAX_RETRIES": 1,
        "RETRY_MAX_TIME": 5.0,
        "TIMEOUT": (2.0, 1.0),
    }
    return sendflare_sandbox_settings
