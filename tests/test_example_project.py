"""The example project's configuration: sandbox by default, the real API with the variables set.

(The browser test in tests/browser/ drives the running example.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "example_project"
PRINT_SETTINGS = (
    "import json; from django.conf import settings; from django_sendflare.conf import get_settings; "
    "c = get_settings(); print(json.dumps({'url': c.api_url, 'app': c.app_id, "
    "'db': settings.DATABASES['default']['ENGINE'], 'sandbox': settings.USE_SANDBOX}))"
)


def example_settings(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SENDFLARE_", "DJANGO_"))}
    clean.pop("DATABASE_URL", None)
    clean.pop("PORT", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PRINT_SETTINGS],
        cwd=EXAMPLE,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_by_default_the_example_uses_sqlite_and_the_mounted_sandbox():
    assert example_settings() == {
        "url": "http://127.0.0.1:8000/sandbox",
        "app": "demo-app",
        "db": "django.db.backends.sqlite3",
        "sandbox": True,
    }
    assert example_settings(PORT="8123")["url"] == "http://127.0.0.1:8123/sandbox"


def test_with_a_token_the_example_talks_to_the_real_provider():
    assert example_settings(SENDFLARE_API_TOKEN="real-token", SENDFLARE_APP_ID="42") == {
        "url": "https://api.sendflare.io",
        "app": "42",
        "db": "django.db.backends.sqlite3",
        "sandbox": False,
    }
    sendkit = example_settings(SENDFLARE_API_TOKEN="real-token", SENDFLARE_PROVIDER="sendkit")
    assert sendkit["url"] == "https://api.sendkit.best"


def test_the_example_passes_django_checks():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_pointed_at_another_sandbox_the_example_does_not_mount_its_own():
    standalone = example_settings(SENDFLARE_API_URL="http://127.0.0.1:8025")
    assert (standalone["url"], standalone["sandbox"]) == ("http://127.0.0.1:8025", False)
