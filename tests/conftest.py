"""Suite-wide fixtures and the --require-services switch."""

from __future__ import annotations

import pytest
from django.conf import settings


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-services",
        action="store_true",
        default=False,
        help="Fail, instead of skip, the tests that need PostgreSQL, Redis or a browser.",
    )


def _missing_service(item: pytest.Item) -> str | None:
    if item.get_closest_marker("postgres") and (
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql"
    ):
        return "needs PostgreSQL: set DATABASE_URL=postgres://..."
    if item.get_closest_marker("redis") and not settings.REDIS_URL:
        return "needs Redis: set REDIS_URL=redis://..."
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = _missing_service(item)
    if reason is None:
        return
    if item.config.getoption("--require-services"):
        pytest.fail(f"--require-services: {reason}", pytrace=False)
    pytest.skip(reason)
