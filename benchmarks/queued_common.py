"""What the queued-sending benchmarks share: Django settings on a real database, the worker.

Not a benchmark. ``configure()`` sets Django up (SQLite in a temporary file, or the PostgreSQL
of ``--database-url``) with django_sendflare installed and migrated; the worker subprocesses of
``queued_drain.py`` call it with the same arguments through ``SENDFLARE_BENCH`` (JSON).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (str(ROOT), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

import django  # noqa: E402
from django.conf import settings  # noqa: E402

TOKEN = "bench-token-not-secret"  # noqa: S105 - a fake token for a fake local server
FROM = "bench@example.com"


def database(url: str | None, *, synchronous: str = "NORMAL") -> dict[str, Any]:
    """Django's DATABASES entry for ``url`` (None: a fresh SQLite file, WAL, ``synchronous``)."""
    if not url:
        path = os.path.join(tempfile.mkdtemp(prefix="sendflare-bench-"), "bench.sqlite3")
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            "OPTIONS": {
                "init_command": f"PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous}",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
        }
    import environ

    return environ.Env.db_url_config(url)


def configure(options: dict[str, Any]) -> None:
    """Set Django up from ``options``: database, api_url, rate_limit, redis_url, threads, apps.

    ``apps`` are more INSTALLED_APPS (the other queues ``queued_enqueue.py --mass`` compares).
    """
    sendflare: dict[str, Any] = {
        "API_TOKEN": TOKEN,
        "API_URL": options["api_url"],
        "RATE_LIMIT": options.get("rate_limit", 5),
        "TIMEOUT": (5.0, 30.0),
        "MAX_CONCURRENT_REQUESTS": options.get("threads", 4),
    }
    if options.get("redis_url"):
        sendflare["RATE_LIMITER"] = "django_sendflare.ratelimit.RedisRateLimiter"
        sendflare["RATE_LIMITER_OPTIONS"] = {
            "url": options["redis_url"],
            "prefix": f"sendflare:bench:{options.get('run_id', '')}:",
        }
    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django_sendflare",
            *options.get("apps", ()),
        ],
        DATABASES={"default": options["database"]},
        # django-post-office renders every subject and body as a template.
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        SENDFLARE=sendflare,
        EMAIL_BACKEND="django_sendflare.backends.QueuedEmailBackend",
        DEFAULT_FROM_EMAIL=FROM,
        LOGGING_CONFIG=None,
    )
    django.setup()


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def environment(options: dict[str, Any]) -> dict[str, str]:
    """The environment of a worker subprocess configured like this process."""
    return {**os.environ, "SENDFLARE_BENCH": json.dumps(options), "PYTHONPATH": str(ROOT)}


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
