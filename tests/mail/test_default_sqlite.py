"""``sendflare_worker --once`` on the database ``startproject`` writes: a file SQLite, no OPTIONS.

No WAL, deferred transactions, the default 5 s timeout: the settings a newcomer runs first. The
worker's threads claim messages at once; before, the second claim met ``database is locked``
and the command died with a traceback after sending the mail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 12

# DATABASES exactly as django-admin startproject writes it (Django 5.2 to 6.1).
SETTINGS = """\
import json
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "not-secret"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django_sendflare",
]
DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.sqlite3',
        'NAME': BASE_DIR / 'db.sqlite3',
    }
}
EMAIL_BACKEND = "django_sendflare.backends.QueuedEmailBackend"
SENDFLARE = json.loads(os.environ["SENDFLARE_TEST_JSON"])
"""

ENQUEUE = textwrap.dedent(
    f"""
    from django.core import mail
    for n in range({MESSAGES}):
        mail.send_mail(f"m{{n}}", "B", "f@example.com", [f"a{{n}}@example.com", f"b{{n}}@example.com"])
    """
)

STATES = textwrap.dedent(
    """
    from django_sendflare.models import QueuedRecipient
    print(sorted(set(QueuedRecipient.objects.values_list("state", flat=True))))
    """
)


@pytest.fixture
def project(tmp_path, sendflare_sandbox):
    """A project directory with startproject's database settings, migrated, SENDFLARE -> sandbox."""
    (tmp_path / "newcomer_settings.py").write_text(SETTINGS)
    conf = {
        "API_URL": sendflare_sandbox.url,
        "API_TOKEN": sendflare_sandbox.token,
        "RATE_LIMIT": 0,
        "MAX_CONCURRENT_REQUESTS": 8,
    }
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "newcomer_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "SENDFLARE_TEST_JSON": json.dumps(conf),
    }
    env.pop("DATABASE_URL", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "django", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    migrated = run("migrate", "-v", "0")
    assert migrated.returncode == 0, migrated.stderr
    return run


def test_the_worker_delivers_everything_on_the_default_sqlite_settings(project, sendflare_sandbox):
    enqueued = project("shell", "-v", "0", "-c", ENQUEUE)
    assert enqueued.returncode == 0, enqueued.stderr

    worker = project("sendflare_worker", "--once", "--threads", "8")

    output = worker.stdout + worker.stderr
    assert "Traceback" not in output and "database is locked" not in output, output
    assert worker.returncode == 0, output
    assert f"{MESSAGES} message(s): {2 * MESSAGES} sent" in worker.stdout
    sent = sorted(m["to"] for m in sendflare_sandbox.messages())
    expected = sorted(f"{p}{n}@example.com" for n in range(MESSAGES) for p in "ab")
    assert sent == expected  # each once
    states = project("shell", "-v", "0", "-c", STATES)
    assert states.stdout.strip() == "['sent']", states.stdout + states.stderr
