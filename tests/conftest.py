"""Suite-wide fixtures and the --require-services switch."""

from __future__ import annotations

import django
import pytest
from django.conf import settings as django_settings

BACKEND = "django_sendflare.backends.EmailBackend"
HAS_MAILERS = django.VERSION >= (6, 1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-services",
        action="store_true",
        default=False,
        help="Fail, instead of skip, the tests that need PostgreSQL, Redis or a browser.",
    )


def _missing_service(item: pytest.Item) -> str | None:
    if item.get_closest_marker("postgres") and (
        django_settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql"
    ):
        return "needs PostgreSQL: set DATABASE_URL=postgres://..."
    if item.get_closest_marker("redis") and not django_settings.REDIS_URL:
        return "needs Redis: set REDIS_URL=redis://..."
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = _missing_service(item)
    if reason is None:
        return
    if item.config.getoption("--require-services"):
        pytest.fail(f"--require-services: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def sendflare_backend(settings):
    """Route Django's mail through the Sendflare backend (the test runner swaps in locmem).

    Returns a function that sets the backend's options (MAILERS OPTIONS on Django 6.1, the
    SENDFLARE dict before).
    """

    def configure(**options):
        if HAS_MAILERS:
            settings.MAILERS = {"default": {"BACKEND": BACKEND, "OPTIONS": options}}
        else:
            settings.SENDFLARE = {
                **settings.SENDFLARE,
                **{k.upper(): v for k, v in options.items()},
            }
            settings.EMAIL_BACKEND = BACKEND

    configure()
    return configure
