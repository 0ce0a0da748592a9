"""The EmailBackend: every way Django sends mail, mapping, errors, signals and concurrency."""

from __future__ import annotations

import json
import logging
import warnings

import pytest
import responses
from django.core import mail
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.utils.translation import gettext_lazy

from django_sendflare import exceptions as exc
from django_sendflare.backends import EmailBackend
from django_sendflare.signals import CancelSend, post_send, pre_send

from .conftest import BACKEND, HAS_MAILERS
from .envelopes import envelope
from .localserver import recording_server

SEND = "https://api.sendflare.io/v1/send"


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(SEND, json=envelope())
        yield mock


def sent(api) -> list[dict]:
    return [json.loads(call.request.body) for call in api.calls]


def send(message: EmailMessage, **kwargs) -> int:
    return message.send(**kwargs)


def test_each_recipient_of_to_cc_bcc_gets_one_request(sendflare_backend, api):
    message = EmailMessage(
        "Subject",
        "Body",
        "from@example.com",
        to=["a@example.com", "Bee <b@example.com>"],
        cc=["c@example.com", "A@EXAMPLE.COM"],
        bcc=["d@example.com", "b@example.com"],
    )
    assert send(message) == 1
    assert sorted(p["to"] for p in sent(api)) == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
        "d@example.com",
    ]
    assert all(p["from"] == "from@example.com" and p["subject"] == "Subject" for p in sent(api))
    status = message.sendflare_status
    assert status.sent and status.status == {"sent"}
    assert len(status.request_ids) == 4


def test_send_mail_send_mass_mail_and_mail_admins(sendflare_backend, api, settings):
    assert mail.send_mail("S1", "B1", "Site <site@example.com>", ["x@example.com"]) == 1
    assert (
        mail.send_mass_mail(
            [
                ("S2", "B2", None, ["y@example.com", "z@example.com"]),
                ("S3", "B3", None, ["w@example.com"]),
            ]
        )
        == 2
    )
    mail.mail_admins("Broken", "Traceback")
    payloads = sent(api)
    assert payloads[0] == {
        "from": "site@example.com",
        "to": "x@example.com",
        "subject": "S1",
        "body": "B1",
    }
    assert sorted(p["to"] for p in payloads[1:4]) == [
        "w@example.com",
        "y@example.com",
        "z@example.com",
    ]
    assert all(p["from"] == settings.DEFAULT_FROM_EMAIL for p in payloads[1:4])
    assert payloads[4] == {
        "from": settings.SERVER_EMAIL,
        "to": "admin@example.com",
        "subject": settings.EMAIL_SUBJECT_PREFIX + "Broken",
        "body": "Traceback",
    }


def test_html_is_the_body_when_there_is_html(sendflare_backend, api):
    html_only = EmailMessage("S", "<p>Hi</p>", "f@example.com", ["a@example.com"])
    html_only.content_subtype = "html"
    send(html_only)
    both = EmailMultiAlternatives("S", "Hi (text)", "f@example.com", ["a@example.com"])
    both.attach_alternative("<p>Hi (html)</p>", "text/html")
    send(both)
    text = EmailMessage("S", "Just text\nline 2", "f@example.com", ["a@example.com"])
    send(text)
    assert [p["body"] for p in sent(api)] == ["<p>Hi</p>", "<p>Hi (html)</p>", "Just text\nline 2"]


def test_send_mail_html_message_wins(sendflare_backend, api):
    mail.send_mail("S", "text", None, ["a@example.com"], html_message="<b>html</b>")
    assert sent(api)[0]["body"] == "<b>html</b>"


def test_unicode_lazy_strings_idn_and_long_bodies(sendflare_backend, api):
    body = "Grüße aus Köln 🌍\n" * 60_000  # about 1 MB
    message = EmailMessage(
        gettext_lazy("Grüße ✉"), body, "Ünïcode <from@example.com>", ["user@bücher.example"]
    )
    assert send(message) == 1
    payload = sent(api)[0]
    assert payload == {
        "from": "from@example.com",
        "to": "user@xn--bcher-kva.example",
        "subject": "Grüße ✉",
        "body": body,
    }


@pytest.mark.parametrize(
    "bad",
    [
        "not-an-address",
        "a@",
        "two@example.com, three@example.com",
        "x@exa mple.com",
        "root@localhost",
    ],
)
def test_an_invalid_address_raises_before_anything_is_sent(sendflare_backend, api, bad):
    good = EmailMessage("S", "B", "f@example.com", ["ok@example.com"])
    broken = EmailMessage("S", "B", "f@example.com", ["ok2@example.com"], bcc=[bad])
    connection = mail.get_connection() if not HAS_MAILERS else mail.mailers.default
    with pytest.raises(exc.SendflareInvalidAddress, match="address"):
        connection.send_messages([good, broken])
    assert len(api.calls) == 0


def test_an_invalid_from_address_raises(sendflare_backend, api):
    with pytest.raises(exc.SendflareInvalidAddress, match="from"):
        mail.send_mail("S", "B", "nobody", ["a@example.com"])
    assert len(api.calls) == 0


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda m: m.attach("a.txt", "data", "text/plain"), "attachment"),
        (lambda m: setattr(m, "reply_to", ["r@example.com"]), "reply_to"),
        (lambda m: m.extra_headers.update({"X-Tag": "t"}), "X-Tag"),
        (lambda m: m.attach_alternative("BEGIN:VCALENDAR", "text/calendar"), "text/calendar"),
    ],
)
def test_unsupported_features_raise_before_any_request(sendflare_backend, api, change, named):
    message = EmailMultiAlternatives("S", "B", "f@example.com", ["a@example.com"])
    change(message)
    with pytest.raises(exc.SendflareUnsupportedFeature, match=named):
        send(message)
    assert len(api.calls) == 0


def test_unsupported_features_can_be_dropped_with_a_warning(sendflare_backend, api, caplog):
    sendflare_backend(ignore_unsupported_features=True)
    message = EmailMessage("S", "B", "f@example.com", ["a@example.com"], reply_to=["r@example.com"])
    message.attach("a.txt", "data", "text/plain")
    assert send(message) == 1
    assert "attachment" in caplog.text and "reply_to" in caplog.text
    assert sent(api)[0]["body"] == "B"


def test_fail_silently_covers_api_errors(sendflare_backend, api):
    api.replace(responses.POST, SEND, json=envelope(100048, message="sender does not exist"))
    sendflare_backend(fail_silently=True)
    message = EmailMessage("S", "B", "f@example.com", ["a@example.com"])
    if HAS_MAILERS:
        assert message.send() == 0
    else:
        assert message.send(fail_silently=True) == 0
    recipient = message.sendflare_status.recipients["a@example.com"]
    assert recipient.status == "failed"
    assert isinstance(recipient.error, exc.SendflareUnknownSender)


def test_fail_silently_never_hides_a_configuration_error(settings):
    settings.SENDFLARE = {"API_URL": "https://api.sendflare.io"}
    with pytest.raises(exc.SendflareConfigurationError, match="API_TOKEN"):
        EmailBackend(fail_silently=True)


def test_an_api_error_is_raised_without_fail_silently(sendflare_backend, api):
    api.replace(responses.POST, SEND, json=envelope(100031, message="daily limit"))
    with pytest.raises(exc.SendflareDailyLimitReached) as excinfo:
        mail.send_mail("S", "B", None, ["a@example.com"])
    assert excinfo.value.code == 100031
    assert excinfo.value.request_id


def test_partial_failure_sends_the_rest_and_tells_the_caller(sendflare_backend, api):
    api.remove(responses.POST, SEND)

    def answer(request):
        to = json.loads(request.body)["to"]
        code = 100033 if to == "bad@example.com" else 0
        return 200, {}, json.dumps(envelope(code))

    api.add_callback(responses.POST, SEND, callback=answer)
    message = EmailMessage(
        "S", "B", "f@example.com", ["a@example.com", "bad@example.com", "c@example.com"]
    )
    other = EmailMessage("S", "B", "f@example.com", ["d@example.com"])
    backend = EmailBackend()
    with pytest.raises(exc.SendflareBadParameters) as excinfo:
        backend.send_messages([message, other])
    assert len(api.calls) == 4  # everybody was tried
    statuses = excinfo.value.message_statuses
    assert statuses[0] is message.sendflare_status
    assert {r.email: r.status for r in statuses[0].recipients.values()} == {
        "a@example.com": "sent",
        "bad@example.com": "failed",
        "c@example.com": "sent",
    }
    assert statuses[0].status == {"sent", "failed"} and not statuses[0].sent
    assert statuses[1].sent
    assert [r.email for r in statuses[0].failed] == ["bad@example.com"]

    backend.fail_silently = True
    assert backend.send_messages([message, other]) == 1  # only fully sent messages count


def test_an_account_level_error_stops_the_batch(sendflare_backend, api):
    api.replace(responses.POST, SEND, json=envelope(100049, message="activate your account"))
    sendflare_backend(max_concurrent_requests=1)
    message = EmailMessage("S", "B", None, [f"r{i}@example.com" for i in range(5)])
    with pytest.raises(exc.SendflareAccountNotActivated):
        send(message)
    assert len(api.calls) == 1
    assert all(r.status == "failed" for r in message.sendflare_status.recipients.values())
    assert all(r.error.code == 100049 for r in message.sendflare_status.recipients.values())


def test_pre_send_can_change_or_cancel_and_post_send_reports(sendflare_backend, api):
    seen = []

    def change(sender, message, **kwargs):
        if "cancel" in message.subject:
            raise CancelSend
        message.subject = message.subject.upper()

    def report(sender, message, status, **kwargs):
        seen.append((message.subject, status.status))

    pre_send.connect(change)
    post_send.connect(report)
    try:
        count = mail.send_mass_mail(
            [("hello", "B", None, ["a@example.com"]), ("cancel me", "B", None, ["b@example.com"])]
        )
    finally:
        pre_send.disconnect(change)
        post_send.disconnect(report)
    assert count == 1
    assert [p["subject"] for p in sent(api)] == ["HELLO"]
    assert seen == [("HELLO", {"sent"}), ("cancel me", {"cancelled"})]


def test_recipients_of_a_batch_are_sent_concurrently_and_bounded(settings):
    with recording_server(latency=0.2) as server:
        settings.SENDFLARE = {
            "API_TOKEN": "t",
            "API_URL": server.url,
            "RATE_LIMIT": 0,
            "MAX_CONCURRENT_REQUESTS": 4,
        }
        message = EmailMessage("S", "B", "f@example.com", [f"r{i}@example.com" for i in range(12)])
        assert EmailBackend().send_messages([message]) == 1
    assert server.max_in_flight == 4
    assert sorted(b["to"] for b in server.bodies) == sorted(message.to)


def test_unknown_options_are_refused(settings):
    with pytest.raises(
        exc.SendflareConfigurationError, match=r"'api_tokn'.*Did you mean 'api_token'"
    ):
        EmailBackend(api_tokn="x")


@pytest.mark.skipif(not HAS_MAILERS, reason="MAILERS is new in Django 6.1")
def test_mailers_options_override_the_sendflare_dict(settings):
    settings.SENDFLARE = {"API_TOKEN": "dict-token", "RATE_LIMIT": 0}
    settings.MAILERS = {
        "default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
        "marketing": {
            "BACKEND": BACKEND,
            "OPTIONS": {"provider": "sendkit", "api_token": "mailer-token"},
        },
    }
    with responses.RequestsMock() as api:
        api.post("https://api.sendkit.best/v1/send", json=envelope())
        assert mail.send_mail("S", "B", None, ["a@example.com"], using="marketing") == 1
        assert api.calls[0].request.headers["Authorization"] == "Bearer mailer-token"
    assert mail.mailers["marketing"].alias == "marketing"
    settings.MAILERS = {"default": {"BACKEND": BACKEND, "OPTIONS": {"bogus": 1}}}
    with pytest.raises(exc.SendflareConfigurationError, match=r"'bogus'.*mailer 'default'"):
        mail.mailers.default  # noqa: B018


@pytest.mark.skipif(HAS_MAILERS, reason="get_connection(backend, **options) predates MAILERS")
def test_get_connection_options_override_the_sendflare_dict(settings):
    settings.SENDFLARE = {"API_TOKEN": "dict-token", "RATE_LIMIT": 0}
    connection = mail.get_connection(BACKEND, provider="sendkit", api_token="kw-token")
    with responses.RequestsMock() as api:
        api.post("https://api.sendkit.best/v1/send", json=envelope())
        mail.send_mail("S", "B", None, ["a@example.com"], connection=connection)
        assert api.calls[0].request.headers["Authorization"] == "Bearer kw-token"


@pytest.mark.skipif(not HAS_MAILERS, reason="the deprecations are Django 6.1's")
def test_no_deprecation_warnings_on_django_61(sendflare_backend, api):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mail.send_mail("S", "B", None, ["a@example.com"])
        mail.send_mass_mail([("S", "B", None, ["b@example.com"])])
        EmailMessage("S", "B", None, ["c@example.com"]).send()
        mail.mail_admins("S", "B")
        with mail.mailers.default as connection:
            connection.send_messages([EmailMessage("S", "B", None, ["d@example.com"])])
    assert len(api.calls) == 5


def test_failures_are_logged_without_the_token(sendflare_backend, api, caplog, settings):
    caplog.set_level(logging.DEBUG)
    api.replace(responses.POST, SEND, status=401, body="denied")
    with pytest.raises(exc.SendflareAuthenticationError):
        mail.send_mail("S", "B", None, ["a@example.com"])
    assert "a@example.com" in caplog.text
    assert settings.SENDFLARE["API_TOKEN"] not in caplog.text


def test_smtp_credentials_are_refused_with_a_pointer_to_the_token(settings):
    with pytest.raises(exc.SendflareConfigurationError, match="api_token"):
        EmailBackend(password="smtp-password")
    assert EmailBackend(username=None, password=None).conf.api_token == "test-token-not-secret"
