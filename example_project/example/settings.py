"""Settings of the example project, from the environment or example_project/.env.

Without SENDFLARE_API_TOKEN the project talks to the sandbox mounted at /sandbox/ in this same
server; with it, to the real Sendflare (or SendKit, with SENDFLARE_PROVIDER=sendkit), and the
sandbox is neither installed nor mounted. The mounted sandbox answers only with DEBUG on.
"""

from pathlib import Path

import django
import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="example-project-insecure-key")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
PORT = env.int("PORT", default=8000)

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo's worker thread writes beside the web server's threads. SQLite's default
    # (deferred) transactions fail at once with "database is locked" when a transaction that
    # has read wants to write while another writes; IMMEDIATE takes the write lock at BEGIN,
    # so that the other waits (up to the timeout) instead. WAL lets readers go on meanwhile.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        transaction_mode="IMMEDIATE",
        timeout=20,
        init_command="PRAGMA journal_mode=WAL",
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_sendflare",  # adds "Sync to Sendflare" and "Delete Sendflare contact" to the user admin
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example.urls"
WSGI_APPLICATION = "example.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

STATIC_URL = "static/"
USE_TZ = True
TIME_ZONE = "UTC"
LOGIN_URL = "admin:login"

# Sendflare. Without a token: the bundled sandbox, served by this very server at /sandbox/.
API_TOKEN = env.str("SENDFLARE_API_TOKEN", default="")
MOUNTED_SANDBOX_URL = f"http://127.0.0.1:{PORT}/sandbox"
API_URL = env.str("SENDFLARE_API_URL", default="" if API_TOKEN else MOUNTED_SANDBOX_URL) or None
# The sandbox is installed and mounted (example/urls.py) only when API_URL points at it: a
# development tool, it has no place in a deployment that talks to the real API.
USE_SANDBOX = API_URL == MOUNTED_SANDBOX_URL
if USE_SANDBOX:
    INSTALLED_APPS.append("django_sendflare.sandbox")
SENDFLARE = {
    "API_TOKEN": API_TOKEN or "sandbox-token",
    "PROVIDER": env.str("SENDFLARE_PROVIDER", default="sendflare"),
    "API_URL": API_URL,
    "APP_ID": env.str("SENDFLARE_APP_ID", default="demo-app"),
}
# The sandbox's own limit matches the documented one; the client spaces its requests to fit.
SENDFLARE_SANDBOX = {"RATE_LIMIT": 5}

DEFAULT_FROM_EMAIL = env.str("SENDFLARE_FROM_EMAIL", default="Example <demo@example.com>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Queued: a view stores the mail in its transaction; the worker thread of `manage.py demo` (in
# production: `manage.py sendflare_worker`) sends it.
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django_sendflare.backends.QueuedEmailBackend"}}
else:
    EMAIL_BACKEND = "django_sendflare.backends.QueuedEmailBackend"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_sendflare": {"handlers": ["console"], "level": "INFO"}},
}
