"""Django's default senders, which the API refuses, are reported when Sendflare sends."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from django_sendflare.backends import EmailBackend
from django_sendflare.checks import check_default_senders

SMTP = "django.core.mail.backends.smtp.EmailBackend"
SENDFLARE = "django_sendflare.backends.EmailBackend"
QUEUED = "django_sendflare.backends.QueuedEmailBackend"


class ProjectBackend(EmailBackend):
    """A project's own subclass of the backend, in a module of the project."""


def ids(settings, **values) -> list[str]:
    for name, value in values.items():
        setattr(settings, name, value)
    return [message.id for message in check_default_senders()]


@pytest.fixture
def defaults(settings):
    """Django's own defaults for both senders, and the SMTP backend for every mailer."""
    settings.DEFAULT_FROM_EMAIL = "webmaster@localhost"
    settings.SERVER_EMAIL = "root@localhost"
    settings.EMAIL_BACKEND = SMTP
    settings.MAILERS = {"default": {"BACKEND": SMTP}}
    return settings


def test_the_defaults_are_reported_when_email_backend_is_sendflare(defaults) -> None:
    assert ids(defaults, EMAIL_BACKEND=SENDFLARE) == ["sendflare.W002", "sendflare.W003"]


def test_nothing_is_reported_when_sendflare_does_not_send(defaults) -> None:
    assert ids(defaults) == []


@pytest.mark.parametrize("alias", ["default", "bulk"])
@pytest.mark.parametrize("backend", [SENDFLARE, QUEUED])
def test_any_mailers_entry_counts(defaults, alias: str, backend: str) -> None:
    mailers = {"default": {"BACKEND": SMTP}, alias: {"BACKEND": backend, "OPTIONS": {}}}
    assert ids(defaults, MAILERS=mailers) == ["sendflare.W002", "sendflare.W003"]
    [message, _] = check_default_senders()
    assert f"MAILERS[{alias!r}]" in message.msg


def test_a_subclass_of_the_backend_counts(defaults) -> None:
    assert ids(defaults, EMAIL_BACKEND="tests.test_default_senders.ProjectBackend") == [
        "sendflare.W002",
        "sendflare.W003",
    ]


def test_real_addresses_pass_and_each_default_is_reported_alone(defaults) -> None:
    defaults.EMAIL_BACKEND = SENDFLARE
    assert ids(defaults, DEFAULT_FROM_EMAIL="Example <noreply@example.com>") == ["sendflare.W003"]
    assert ids(defaults, SERVER_EMAIL="errors@example.com") == []
    assert ids(defaults, SERVER_EMAIL="root@intranet") == ["sendflare.W003"]


def test_the_message_names_the_setting_the_value_and_the_consequence(defaults) -> None:
    defaults.EMAIL_BACKEND = SENDFLARE
    [from_email, server_email] = check_default_senders()
    assert "DEFAULT_FROM_EMAIL" in from_email.msg
    assert "'webmaster@localhost'" in from_email.msg
    assert "password reset" in from_email.msg
    assert "100033" in from_email.msg
    assert "'root@localhost'" in server_email.msg
    assert "DEFAULT_FROM_EMAIL =" in from_email.hint


def test_manage_py_check_shows_the_warning(defaults, capsys) -> None:
    defaults.EMAIL_BACKEND = SENDFLARE
    call_command("check")
    assert "sendflare.W002" in capsys.readouterr().err
