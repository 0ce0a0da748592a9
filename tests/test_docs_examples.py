"""The documentation's code samples, run as the docs show them (docs/examples/*.py).

Each page includes its sample from docs/examples/ with ``literalinclude``; this module loads
those files and runs them against the sandbox, so a sample that stops working fails the suite.
"""

from __future__ import annotations

import datetime
import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from django.contrib.admin import AdminSite
from django.contrib.auth import get_user_model
from django.core import checks
from django.test import RequestFactory, override_settings

from django_sendflare.exceptions import SendflareAPIError

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def load(name: str, *, fresh: bool = False) -> ModuleType:
    """Import docs/examples/<name>.py by its path (docs/ is not a package); ``fresh``: again."""
    module_name = f"docs_examples_{name}"
    if module_name in sys.modules and not fresh:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


# The testing how-to's samples are tests: importing them here makes the suite collect them.
_pytest_sample = load("testing_pytest")
sandbox_mail = _pytest_sample.sandbox_mail
test_welcome_mail = _pytest_sample.test_welcome_mail
test_an_api_outage_is_reported_not_retried = (
    _pytest_sample.test_an_api_outage_is_reported_not_retried
)
WelcomeMailTests = load("testing_testcase").WelcomeMailTests


@pytest.fixture
def sandbox(sandbox_mail, settings):
    return sandbox_mail


@pytest.mark.django_db  # some of Django 6.1's own checks read the database
def test_the_settings_sample_passes_the_system_checks(monkeypatch):
    monkeypatch.setenv("SENDFLARE_API_TOKEN", "a-token")
    monkeypatch.setenv("SENDFLARE_APP_ID", "123")
    sample = load("settings", fresh=True)  # reads the environment set above
    assert sample.SENDFLARE == {"API_TOKEN": "a-token", "APP_ID": "123"}

    with override_settings(
        SENDFLARE=sample.SENDFLARE,
        DEFAULT_FROM_EMAIL=sample.DEFAULT_FROM_EMAIL,
        SERVER_EMAIL=sample.SERVER_EMAIL,
    ):
        problems = [m for m in checks.run_checks() if m.id and m.id.startswith("sendflare.")]
    assert problems == []
    backends = (
        [mailer["BACKEND"] for mailer in sample.MAILERS.values()]
        if hasattr(sample, "MAILERS")
        else [sample.EMAIL_BACKEND]
    )
    assert set(backends) == {"django_sendflare.backends.EmailBackend"}


@pytest.mark.django_db
def test_the_settings_sample_without_a_token_fails_the_checks(monkeypatch):
    monkeypatch.delenv("SENDFLARE_API_TOKEN", raising=False)
    sample = load("settings", fresh=True)

    backend = (
        {"MAILERS": sample.MAILERS}
        if hasattr(sample, "MAILERS")
        else {"EMAIL_BACKEND": sample.EMAIL_BACKEND}
    )
    with override_settings(SENDFLARE=sample.SENDFLARE, **backend):
        ids = {m.id for m in checks.run_checks()}
    assert "sendflare.E001" in ids


def test_send_welcome_reaches_every_recipient_with_the_html_body(sandbox):
    message = load("sending").send_welcome("ann@example.com")

    assert message.sendflare_status.sent
    received = {m["to"]: m for m in sandbox.messages()}
    assert set(received) == {"ann@example.com", "team@example.com"}
    assert received["team@example.com"]["body"] == "<p>Hello! Your account is ready.</p>"


def test_send_and_list_failures_names_the_recipient_that_failed(sandbox):
    from django.core.mail import EmailMultiAlternatives

    messages = [
        EmailMultiAlternatives("One", "1", "noreply@example.com", ["ann@example.com"]),
        EmailMultiAlternatives("Two", "2", "noreply@example.com", ["bob@example.com"]),
    ]
    sandbox.queue_faults("500")  # the first request fails; the second is still sent

    failed = load("sending").send_and_list_failures(messages)

    assert len(failed) == 1
    assert [m["to"] for m in sandbox.messages()] == [
        a for a in ("ann@example.com", "bob@example.com") if a not in failed
    ]


def test_send_and_list_failures_is_empty_when_all_went_out(sandbox):
    from django.core.mail import EmailMessage

    messages = [EmailMessage("One", "1", "noreply@example.com", ["ann@example.com"])]
    assert load("sending").send_and_list_failures(messages) == []


@pytest.fixture
def signal_samples():
    """The sample receivers, connected for one test only."""
    from django_sendflare.signals import post_send, pre_send

    yield load("signals", fresh=True)
    pre_send.disconnect(dispatch_uid="docs-example-skip-test-domains")
    post_send.disconnect(dispatch_uid="docs-example-log-failures")


def test_the_signal_samples_cancel_and_log(sandbox, caplog, signal_samples):
    from django.core.mail import EmailMessage

    cancelled = EmailMessage("Hi", "x", "noreply@example.com", ["ann@example.invalid"])
    failing = EmailMessage("Hello", "x", "noreply@example.com", ["bob@example.com"])
    sandbox.queue_faults("500")  # the one request of the batch: the cancelled message makes none

    with (
        caplog.at_level(logging.WARNING, logger="docs_examples_signals"),
        pytest.raises(SendflareAPIError),
    ):
        load("sending").default_mailer().send_messages([cancelled, failing])

    assert cancelled.sendflare_status.status == {"cancelled"}
    assert [r["path"] for r in sandbox.requests()] == ["/v1/send"]
    assert "'Hello' not sent to bob@example.com" in caplog.text


def test_the_client_tour(sendflare_sandbox, capsys):
    listed = load("client").tour(sendflare_sandbox.url, sendflare_sandbox.token)

    assert listed == ["c@example.com"]
    assert sendflare_sandbox.contacts("123") == []
    assert [m["to"] for m in sendflare_sandbox.messages()] == ["b@example.com"]
    assert "c@example.com Confirmed" in capsys.readouterr().out


def test_the_adapter_sample_maps_a_profile():
    user = get_user_model()(
        username="ann", email=" Ann@Example.com ", first_name="Ann", last_name="Lee"
    )
    user.profile = SimpleNamespace(
        language="fr", birthday=datetime.date(1990, 4, 7), level=2, newsletter=False
    )
    adapter = load("adapter").MyAdapter()

    contact = adapter.to_contact(user)

    assert contact.email == "Ann@Example.com"
    assert contact.status == "Unsubscribed"
    assert dict(contact.data) == {
        "firstName": "Ann",
        "lastName": "Lee",
        "language": "fr",
        "birthday": "07/04",
        "vipLevel": "2",
    }
    assert adapter.should_sync(user)
    user.is_staff = True
    assert not adapter.should_sync(user)


@pytest.mark.django_db
def test_the_admin_sample_offers_both_contact_actions(admin_user):
    admin_class = load("admin").MyUserAdmin
    model_admin = admin_class(get_user_model(), AdminSite())
    request = RequestFactory().get("/admin/auth/user/")
    request.user = admin_user

    actions = model_admin.get_actions(request)

    assert {"sync_to_sendflare", "delete_sendflare_contact"} <= set(actions)
    assert "date_joined" in model_admin.get_list_display(request)
