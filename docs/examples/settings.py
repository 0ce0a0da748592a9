"""The settings of a project that sends through Sendflare (included in the docs).

``tests/test_docs_examples.py`` runs Django's system checks against them.
"""

import os

import django

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_sendflare",  # adds its contact actions to the stock UserAdmin
    "django_sendflare.sandbox",  # optional: the local API emulator (development, tests)
]

# Secrets come from the environment, never from the settings file.
SENDFLARE = {
    "API_TOKEN": os.environ.get("SENDFLARE_API_TOKEN", ""),
    "APP_ID": os.environ.get("SENDFLARE_APP_ID"),  # for contacts; None turns them off
}

if django.VERSION >= (6, 1):
    # Django 6.1: one backend per mailer; OPTIONS override SENDFLARE's keys for that mailer.
    MAILERS = {
        "default": {"BACKEND": "django_sendflare.backends.EmailBackend"},
        "newsletters": {
            "BACKEND": "django_sendflare.backends.EmailBackend",
            "OPTIONS": {
                "provider": "sendkit",
                "api_token": os.environ.get("SENDKIT_API_TOKEN", ""),
            },
        },
    }
else:
    # Django 5.2 and 6.0.
    EMAIL_BACKEND = "django_sendflare.backends.EmailBackend"

# Addresses of a sender domain of your Sendflare account: Django's defaults (webmaster@localhost,
# root@localhost) are refused by the API, and the system checks say so.
DEFAULT_FROM_EMAIL = "noreply@example.com"
SERVER_EMAIL = "errors@example.com"  # mail_admins() and error reports
