"""Release check: a tiny Django project on the INSTALLED wheel, away from the source tree.

Run it with the Python of a virtualenv where the wheel (not an editable install) is installed:

    /tmp/venv/bin/python .ci/smoke_project.py

It creates a project in a temporary directory and, there:

1. ``manage.py check`` and ``manage.py migrate``;
2. starts the standalone sandbox (``python -m django_sendflare.sandbox --port 0``) and sends a
   message through ``EmailBackend`` into it, found through the sandbox's inspection API;
3. queues a message with ``QueuedEmailBackend`` and delivers it with
   ``manage.py sendflare_worker --once``;
4. renders the admin's delete-contact confirmation page (templates and static of the wheel).

Each step prints one line; the first failure stops the run with status 1 and says why.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SOURCE_TREE = Path(__file__).resolve().parents[1]
TOKEN = "smoke-test-token"  # noqa: S105 - the throw-away sandbox's token

SETTINGS = """
SECRET_KEY = "smoke-test-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_sendflare",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "smoke.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
# SQLite as Django recommends it for concurrent writers (the worker's threads): IMMEDIATE
# transactions wait for the write lock (the timeout) instead of failing on a lock upgrade.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": "db.sqlite3",
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"
DEFAULT_FROM_EMAIL = "noreply@example.com"
SERVER_EMAIL = "errors@example.com"

import os
import django

SENDFLARE = {
    "API_TOKEN": os.environ["SMOKE_API_TOKEN"],
    "API_URL": os.environ.get("SMOKE_API_URL", "http://127.0.0.1:9"),
    "APP_ID": "smoke-app",
}
if django.VERSION >= (6, 1):
    MAILERS = {
        "default": {"BACKEND": "django_sendflare.backends.EmailBackend"},
        # Stores the mail; the worker delivers it with the "default" mailer's settings.
        "queued": {
            "BACKEND": "django_sendflare.backends.QueuedEmailBackend",
            "OPTIONS": {"mailer": "default"},
        },
    }
else:
    EMAIL_BACKEND = "django_sendflare.backends.EmailBackend"
"""

URLS = """
from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
"""

MANAGE = """
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smoke.settings")
from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
"""

SEND = """
from django.core.mail import send_mail
sent = send_mail(
    "Smoke", "It works.", None, ["ann@example.com"], html_message="<p>It works.</p>"
)
print("sent", sent)
"""

QUEUE = """
import django
from django.core.mail import send_mail

if django.VERSION >= (6, 1):
    sent = send_mail("Queued", "Later.", None, ["bob@example.com"], using="queued")
else:
    from django.core.mail import get_connection

    queued = get_connection("django_sendflare.backends.QueuedEmailBackend")
    sent = send_mail("Queued", "Later.", None, ["bob@example.com"], connection=queued)
print("SMOKE queued", sent)
"""

ADMIN_CONFIRMATION = """
from django.contrib.auth import get_user_model
from django.test import Client

User = get_user_model()
User.objects.filter(username__in=["smoke-admin", "smoke-user"]).delete()
admin = User.objects.create_superuser("smoke-admin", "admin@example.com", "smoke-password")
user = User.objects.create_user("smoke-user", "contact@example.com", "smoke-password")
client = Client()
client.force_login(admin)
response = client.post(
    "/admin/auth/user/",
    {"action": "delete_sendflare_contact", "_selected_action": [str(user.pk)]},
)
body = response.content.decode()
print("SMOKE status", response.status_code)
# The wheel's template, inside the admin's own (nothing here is in the test project).
print("SMOKE our template", 'class="sendflare-contacts"' in body)
print("SMOKE the admin's base", 'id="site-name"' in body)
print("SMOKE lists the address", "contact@example.com" in body)
print("SMOKE asks to confirm", 'name="post" value="yes"' in body)
"""


def fail(message: str) -> None:
    print(f"FAIL: {message}", flush=True)
    sys.exit(1)


def run(args: list[str], cwd: Path, env: dict[str, str], what: str) -> str:
    started = time.monotonic()
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        fail(f"{what}: exit status {result.returncode}\n{result.stdout}\n{result.stderr}")
    print(f"ok   {what} ({time.monotonic() - started:.1f} s)", flush=True)
    return result.stdout


@contextmanager
def standalone_sandbox(cwd: Path, env: dict[str, str]) -> Iterator[str]:
    """Run ``python -m django_sendflare.sandbox --port 0``; yield its URL from the log line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "django_sendflare.sandbox", "--port", "0", "--token", TOKEN],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 30
        url = None
        seen = []
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            seen.append(line)
            match = re.search(r"listening on (http://\S+) ", line)
            if match:
                url = match.group(1)
        if url is None:
            fail("the standalone sandbox did not say where it listens:\n" + "".join(seen))
        print(f"ok   the standalone sandbox listens on {url}", flush=True)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def sandbox_messages(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/_sandbox/api/messages", timeout=10) as response:  # noqa: S310 - loopback
        return json.load(response)["messages"]


def main() -> None:
    import django_sendflare

    installed = Path(django_sendflare.__file__).resolve()
    if SOURCE_TREE in installed.parents:
        fail(f"django_sendflare is imported from the source tree ({installed}), not the wheel")
    print(f"ok   django_sendflare {django_sendflare.__version__} from {installed.parent}")

    with tempfile.TemporaryDirectory(prefix="sendflare-smoke-") as tmp:
        project = Path(tmp)
        (project / "smoke").mkdir()
        (project / "smoke" / "__init__.py").write_text("")
        (project / "smoke" / "settings.py").write_text(textwrap.dedent(SETTINGS))
        (project / "smoke" / "urls.py").write_text(textwrap.dedent(URLS))
        (project / "manage.py").write_text(textwrap.dedent(MANAGE))
        env = {
            k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")
        }
        env["SMOKE_API_TOKEN"] = TOKEN
        manage = [sys.executable, "manage.py"]

        run([*manage, "check", "--fail-level", "WARNING"], project, env, "manage.py check")
        run([*manage, "migrate", "--no-input"], project, env, "manage.py migrate")

        with standalone_sandbox(project, env) as url:
            env["SMOKE_API_URL"] = url
            out = run([*manage, "shell", "-c", SEND], project, env, "send_mail via EmailBackend")
            if "sent 1" not in out:
                fail(f"send_mail did not report one message sent: {out!r}")
            messages = sandbox_messages(url)
            if [(m["to"], m["body"]) for m in messages] != [
                ("ann@example.com", "<p>It works.</p>")
            ]:
                fail(f"the sandbox did not receive the message as sent: {messages!r}")
            print("ok   the sandbox received it", flush=True)

            out = run(
                [*manage, "shell", "-c", QUEUE], project, env, "send_mail via QueuedEmailBackend"
            )
            if "SMOKE queued 1" not in out:
                fail(f"send_mail did not report one message queued: {out!r}")
            if len(sandbox_messages(url)) != 1:
                fail("the queued message reached the API before the worker ran")
            run(
                [*manage, "sendflare_worker", "--once"],
                project,
                env,
                "manage.py sendflare_worker --once",
            )
            delivered = [m["to"] for m in sandbox_messages(url)]
            if delivered != ["ann@example.com", "bob@example.com"]:
                fail(f"the worker did not deliver the queued message: {delivered!r}")
            print("ok   the worker delivered the queued message", flush=True)

        out = run(
            [*manage, "shell", "-c", ADMIN_CONFIRMATION],
            project,
            env,
            "the admin's delete-contact confirmation page",
        )
        found = [line for line in out.splitlines() if line.startswith("SMOKE ")]
        expected = [
            "SMOKE status 200",
            "SMOKE our template True",
            "SMOKE the admin's base True",
            "SMOKE lists the address True",
            "SMOKE asks to confirm True",
        ]
        if found != expected:
            fail(f"the confirmation page is not what it should be: {out!r}")
    print("PASS: the installed wheel works in a fresh project", flush=True)


if __name__ == "__main__":
    main()
