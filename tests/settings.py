"""Settings for the test suite.

DATABASE_URL and REDIS_URL are read with django-environ. Without them the suite uses SQLite and
skips the tests that need PostgreSQL or Redis (``--require-services`` makes them fail instead).
"""

import os
import tempfile

import django
import environ

env = environ.Env()

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"

DATABASES = {"default": env.db("DATABASE_URL", default="sqlite://:memory:")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A test database in a file, not in shared-cache memory: there, a thread that writes while
    # another holds a transaction fails at once ("database table is locked") instead of
    # waiting, and the tests run workers, live servers and admin actions in threads. WAL lets
    # readers go on beside a writer; IMMEDIATE takes the write lock at BEGIN, so that waiting
    # (the busy timeout) works instead of failing on a lock upgrade.
    DATABASES["default"]["TEST"] = {
        "NAME": os.path.join(tempfile.gettempdir(), f"django-sendflare-tests-{os.getpid()}.sqlite3")
    }
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

REDIS_URL = env.str("REDIS_URL", default="")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_sendflare",
    "django_sendflare.sandbox",
]

# Django 5.2 has no django.tasks: the django-tasks backport stands in (the "tasks" extra).
if django.VERSION < (6, 0):
    try:
        import django_tasks  # noqa: F401
    except ImportError:
        pass
    else:
        INSTALLED_APPS.append("django_tasks")
        TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}

# A real task backend for the queued-mail task test (the "test" extra installs it).
try:
    import django_tasks_db  # noqa: F401
except ImportError:
    pass
else:
    INSTALLED_APPS.append("django_tasks_db")

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"

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

STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SENDFLARE = {
    "API_TOKEN": "test-token-not-secret",
    "API_URL": "https://api.sendflare.io",
    "APP_ID": "test-app",
    # Tests that exercise the limiter build their own; a process-wide limiter would slow every test.
    "RATE_LIMIT": 0,
}
DEFAULT_FROM_EMAIL = "noreply@example.com"
SERVER_EMAIL = "server@example.com"
# Django 6.0 takes plain addresses; 5.2 only (name, address) pairs.
ADMINS = ["admin@example.com"] if django.VERSION >= (6, 0) else [("Admin", "admin@example.com")]

# The backend under test. Django's test runner swaps it for locmem during each test; the tests
# that send through Sendflare put it back with the `sendflare_backend` fixture.
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django_sendflare.backends.EmailBackend"}}
else:
    EMAIL_BACKEND = "django_sendflare.backends.EmailBackend"
