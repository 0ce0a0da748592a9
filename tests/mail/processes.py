"""Running ``manage.py sendflare_worker`` as a real process against the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], object], timeout: float = 60.0) -> None:
    """Poll ``condition`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def database_url() -> str:
    """The URL of the test database this process uses (the worker must use the same)."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}{port}/{db['NAME']}"


def start_worker(*args: str) -> subprocess.Popen[str]:
    """Start a worker process with the current SENDFLARE settings; returns the process."""
    return start_command("sendflare_worker", "--no-contacts", *args)


def start_command(*args: str, **extra_env: str) -> subprocess.Popen[str]:
    """Run ``manage.py <args>`` as a process on the test database and SENDFLARE settings."""
    env = {
        **os.environ,
        **extra_env,
        "DATABASE_URL": database_url(),
        "SENDFLARE_TEST_JSON": json.dumps(settings.SENDFLARE),
        "DJANGO_SETTINGS_MODULE": "tests.mail.worker_settings",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
