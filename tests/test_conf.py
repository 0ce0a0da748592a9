"""Settings validation and the system checks."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_sendflare.checks import check_settings
from django_sendflare.conf import BY_KEY, SETTINGS, SendflareSettings, get_settings, load_settings
from django_sendflare.exceptions import SendflareConfigurationError

from .conftest import HAS_MAILERS

TOKEN = "sf-secret-token-123"
INF = float("inf")


def ids(settings, settings_dict):
    settings.SENDFLARE = settings_dict
    return sorted(message.id for message in check_settings())


def test_defaults_and_presets(settings):
    settings.SENDFLARE = {"API_TOKEN": TOKEN}
    conf = get_settings()
    assert conf.api_url == "https://api.sendflare.io"
    assert conf.rate_limit == 5
    assert (conf.connect_timeout, conf.read_timeout) == (5.0, 30.0)

    settings.SENDFLARE = {"API_TOKEN": TOKEN, "PROVIDER": "sendkit", "TIMEOUT": 3}
    conf = get_settings()
    assert conf.api_url == "https://api.sendkit.best"
    assert (conf.connect_timeout, conf.read_timeout) == (3.0, 3.0)


def test_api_url_overrides_provider_and_loses_trailing_slash(settings):
    settings.SENDFLARE = {
        "API_TOKEN": TOKEN,
        "PROVIDER": "sendkit",
        "API_URL": "http://127.0.0.1:8025/",
    }
    assert get_settings().api_url == "http://127.0.0.1:8025"


def test_token_never_in_repr(settings):
    settings.SENDFLARE = {"API_TOKEN": TOKEN}
    assert TOKEN not in repr(get_settings())
    assert TOKEN not in str(get_settings())


@pytest.mark.parametrize(
    ("settings_dict", "expected"),
    [
        ({}, ["sendflare.E001"]),
        ({"API_TOKEN": ""}, ["sendflare.E001"]),
        ({"API_TOKEN": " x\n"}, ["sendflare.E001"]),
        ({"API_TOKEN": TOKEN, "API_URL": "api.sendflare.io"}, ["sendflare.E002"]),
        ({"API_TOKEN": TOKEN, "API_URL": "ftp://api.sendflare.io"}, ["sendflare.E002"]),
        ({"API_TOKEN": TOKEN, "API_URL": "https://api.sendflare.io/v1"}, ["sendflare.E002"]),
        ({"API_TOKEN": TOKEN, "API_URL": "https://host:99999"}, ["sendflare.E002"]),
        ({"API_TOKEN": TOKEN, "API_URL": "http://api.sendflare.io"}, ["sendflare.E003"]),
        ({"API_TOKEN": TOKEN, "API_URL": "http://10.0.0.5:8025"}, ["sendflare.E003"]),
        ({"API_TOKEN": TOKEN, "API_URL": "http://127.0.0.1:8025"}, []),
        ({"API_TOKEN": TOKEN, "API_URL": "http://localhost:8025"}, []),
        ({"API_TOKEN": TOKEN, "API_URL": "http://[::1]:8025"}, []),
        ({"API_TOKEN": TOKEN, "PROVIDER": "mailgun"}, ["sendflare.E005"]),
        ({"API_TOKEN": TOKEN, "RATE_LIMIT": -1}, ["sendflare.E004"]),
        ({"API_TOKEN": TOKEN, "RATE_LIMIT": "5"}, ["sendflare.E004"]),
        ({"API_TOKEN": TOKEN, "RATE_LIMIT": 0}, []),
        ({"API_TOKEN": TOKEN, "TIMEOUT": 0}, ["sendflare.E004"]),
        ({"API_TOKEN": TOKEN, "TIMEOUT": (1, 2, 3)}, ["sendflare.E004"]),
        ({"API_TOKEN": TOKEN, "TIMEOUT": (2, 10)}, []),
        ({"API_TOKEN": TOKEN, "MAX_RETRIES": 1.5}, ["sendflare.E004"]),
        ({"API_TOKEN": TOKEN, "MAX_CONCURRENT_REQUESTS": 0}, ["sendflare.E004"]),
        ({"API_TOKEN": TOKEN, "IGNORE_UNSUPPORTED_FEATURES": "yes"}, ["sendflare.E004"]),
        ({"API_TOKEN": TOKEN, "APP_ID": 123}, ["sendflare.E004"]),
        ({"API_TOKEN": TOKEN, "RATE_LIMT": 3}, ["sendflare.W001"]),
    ],
)
def test_checks_report_each_problem(settings, sendflare_backend, settings_dict, expected):
    assert ids(settings, settings_dict) == expected


def test_check_messages_have_hints_and_never_the_token(settings):
    settings.SENDFLARE = {"API_TOKEN": TOKEN, "API_URL": "http://mail.example.com", "RATE_LIMT": 1}
    messages = check_settings()
    assert all(m.hint for m in messages)
    assert "Did you mean 'RATE_LIMIT'?" in next(
        m.hint for m in messages if m.id == "sendflare.W001"
    )
    assert all(TOKEN not in str(m) for m in messages)


def test_manage_py_check_fails_on_missing_token(settings, sendflare_backend):
    settings.SENDFLARE = {"API_URL": "https://api.sendflare.io"}
    with pytest.raises(SystemCheckError, match="API_TOKEN"):
        call_command("check")


def test_a_missing_token_is_no_error_when_nothing_sends_with_it(settings):
    # The test runner's locmem backend, contacts not synced: SENDFLARE's token is never read.
    assert ids(settings, {"SYNC_CONTACTS": False}) == []
    # A token that is there but broken is still reported.
    assert ids(settings, {"API_TOKEN": " x\n"}) == ["sendflare.E001"]
    # The contact sync sends with it (SYNC_CONTACTS is on by default)...
    assert ids(settings, {"SYNC_CONTACTS": True, "APP_ID": "1"}) == ["sendflare.E001"]
    assert ids(settings, {"APP_ID": "1"}) == ["sendflare.E001"]
    # ... once it records anything: without an APP_ID it does not (W100 says so).
    assert ids(settings, {"SYNC_CONTACTS": True}) == []


@pytest.mark.skipif(not HAS_MAILERS, reason="MAILERS is new in Django 6.1")
def test_mailers_with_tokens_of_their_own_need_none_in_sendflare(settings):
    queued = "django_sendflare.backends.QueuedEmailBackend"
    settings.MAILERS = {
        "default": {"BACKEND": queued, "OPTIONS": {"mailer": "transactional"}},
        "transactional": {
            "BACKEND": "django_sendflare.backends.EmailBackend",
            "OPTIONS": {"api_token": TOKEN},
        },
    }
    assert ids(settings, {}) == []
    # An entry without a token of its own sends with SENDFLARE's.
    settings.MAILERS = {**settings.MAILERS, "bulk": {"BACKEND": queued}}
    assert ids(settings, {}) == ["sendflare.E001"]


def test_sendflare_must_be_a_dict(settings):
    settings.SENDFLARE = "token"
    assert [m.id for m in check_settings()] == ["sendflare.E000"]
    with pytest.raises(SendflareConfigurationError, match="must be a dict"):
        load_settings()


def test_load_settings_raises_with_every_error(settings):
    settings.SENDFLARE = {"API_URL": "nonsense", "RATE_LIMIT": -3}
    with pytest.raises(SendflareConfigurationError) as excinfo:
        load_settings()
    text = str(excinfo.value)
    assert "API_TOKEN" in text and "API_URL" in text and "RATE_LIMIT" in text


def test_overrides_win_and_are_case_insensitive(settings):
    settings.SENDFLARE = {"API_TOKEN": TOKEN, "PROVIDER": "sendflare"}
    conf = load_settings({"provider": "sendkit", "RATE_LIMIT": 2})
    assert conf.api_url == "https://api.sendkit.best"
    assert conf.rate_limit == 2


# The one table --------------------------------------------------------------------------------


def test_every_row_of_the_table_is_an_attribute_of_the_settings_object(settings):
    settings.SENDFLARE = {"API_TOKEN": TOKEN}
    conf = get_settings()
    assert [s.key for s in SETTINGS] == [s.attribute.upper() for s in SETTINGS]
    for setting in SETTINGS:
        assert getattr(SendflareSettings, setting.attribute) is setting
        getattr(conf, setting.attribute)  # every row has a value


@pytest.mark.parametrize("key", [s.key for s in SETTINGS])
def test_every_key_is_validated_by_the_check_and_by_loading(settings, key):
    settings.SENDFLARE = {"API_TOKEN": TOKEN, key: object()}
    [problem] = [m for m in check_settings() if m.level >= 40]
    assert problem.id in BY_KEY[key].validator.check_ids
    assert key in problem.msg
    with pytest.raises(SendflareConfigurationError, match=key):
        load_settings()


def test_defaults_of_the_table_are_what_the_settings_object_holds(settings):
    settings.SENDFLARE = {"API_TOKEN": TOKEN}
    conf = get_settings()
    for setting in SETTINGS:
        if setting.key in ("API_TOKEN", "API_URL", "TIMEOUT"):
            continue
        assert getattr(conf, setting.attribute) == setting.default, setting.key


def test_a_bad_limiter_options_value_is_not_repeated(settings):
    """A Redis URL with a password, given where a dict belongs, is not printed back."""
    settings.SENDFLARE = {"API_TOKEN": TOKEN, "RATE_LIMITER_OPTIONS": "redis://:hunter2@redis:6379"}
    [message] = check_settings()
    assert message.id == "sendflare.E004"
    assert "hunter2" not in message.msg + message.hint
    with pytest.raises(SendflareConfigurationError) as excinfo:
        load_settings()
    assert "hunter2" not in str(excinfo.value)


def test_limiter_options_are_not_in_repr(settings):
    settings.SENDFLARE = {"API_TOKEN": TOKEN, "RATE_LIMITER_OPTIONS": {"url": "redis://:hunter2@r"}}
    assert "hunter2" not in repr(get_settings())


def test_contact_settings_are_read_one_by_one_when_the_token_is_missing(settings):
    """A user save records changes without a token; an invalid SYNC_CONTACTS counts as off."""
    settings.SENDFLARE = {"APP_ID": "app"}
    assert get_settings().records_contacts
    settings.SENDFLARE = {"APP_ID": "app", "SYNC_CONTACTS": "no"}
    assert not get_settings().records_contacts
    settings.SENDFLARE = {"APP_ID": 123}
    assert not get_settings().records_contacts
    settings.SENDFLARE = {"CONTACT_ADAPTER": 5}
    assert get_settings().contact_adapter_path == "django_sendflare.contacts.adapter.ContactAdapter"


# One accessor --------------------------------------------------------------------------------


def test_the_settings_are_built_once_and_again_only_when_they_change(settings):
    settings.SENDFLARE = {"API_TOKEN": TOKEN, "RATE_LIMIT": 2}
    first = get_settings()
    assert get_settings() is first
    settings.SENDFLARE = {"API_TOKEN": TOKEN, "RATE_LIMIT": 3}
    assert get_settings() is not first and get_settings().rate_limit == 3


def test_a_mailer_is_read_from_the_same_cache_and_follows_mailers(settings):
    direct = "django_sendflare.backends.EmailBackend"
    settings.SENDFLARE = {"API_TOKEN": TOKEN, "RATE_LIMIT": 2}
    settings.MAILERS = {
        "queue": {"BACKEND": "x.Queued", "OPTIONS": {"mailer": "bulk"}},
        "bulk": {"BACKEND": direct, "OPTIONS": {"provider": "sendkit", "api_token": "b"}},
    }
    bulk = get_settings("bulk")
    assert (bulk.api_url, bulk.rate_limit) == ("https://api.sendkit.best", 2)
    assert get_settings("bulk") is bulk
    assert get_settings("queue").api_url == "https://api.sendkit.best"
    settings.MAILERS = {"bulk": {"BACKEND": direct, "OPTIONS": {"api_token": "b"}}}
    assert get_settings("bulk").api_url == "https://api.sendflare.io"
    with pytest.raises(SendflareConfigurationError, match="'queue', which is not in"):
        get_settings("queue")


def test_a_user_save_reads_the_cached_settings(settings, monkeypatch, django_user_model, db):
    """Saving a user used to validate seven settings one by one; now it reads one object."""
    from django_sendflare import conf

    builds = []
    build = conf._build
    monkeypatch.setattr(conf, "_build", lambda *a: builds.append(a) or build(*a))
    settings.SENDFLARE = {"APP_ID": "app"}
    user = django_user_model.objects.create(username="u", email="u@example.com")
    user.email = "v@example.com"
    user.save()
    assert len(builds) == 1


def test_each_key_is_strict_on_its_own_and_require_valid_names_every_bad_one(settings):
    settings.SENDFLARE = {"RATE_LIMIT": INF, "APP_ID": "app", "MAX_RETRIES": "3"}
    conf = get_settings()  # never raises for a bad value: it records it
    assert (conf.app_id, conf.sync_contacts) == ("app", True)
    with pytest.raises(SendflareConfigurationError, match=r"SENDFLARE\['RATE_LIMIT'\].*E004"):
        conf.rate_limit  # noqa: B018
    with pytest.raises(SendflareConfigurationError) as excinfo:
        conf.require_valid()
    assert all(key in str(excinfo.value) for key in ("API_TOKEN", "RATE_LIMIT", "MAX_RETRIES"))
    assert conf.value_or("RATE_LIMIT", 0) == 0  # the one tolerant read, said out loud
    assert conf.value_or("APP_ID", None) == "app"


def test_the_settings_object_is_frozen(settings):
    settings.SENDFLARE = {"API_TOKEN": TOKEN}
    with pytest.raises(AttributeError, match="frozen"):
        get_settings().rate_limit = 9  # type: ignore[misc]


def test_a_sendflare_that_is_no_dict_fails_no_user_save(settings, django_user_model, db):
    from django_sendflare.models import ContactChange

    settings.SENDFLARE = "token"
    conf = get_settings()
    assert not conf.records_contacts
    with pytest.raises(SendflareConfigurationError, match="must be a dict"):
        conf.app_id  # noqa: B018
    django_user_model.objects.create(username="u", email="u@example.com")
    assert not ContactChange.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_worker_needs_no_sendflare_token_when_its_mailer_has_one(
    sendflare_sandbox, settings, capsys
):
    """Built by hand, so that it runs before Django 6.1 too: MAILERS is only read here."""
    from django.core.mail import EmailMessage

    from django_sendflare.backends import QueuedEmailBackend
    from django_sendflare.models import QueuedRecipient

    settings.MAILERS = {
        "default": {
            "BACKEND": "django_sendflare.backends.QueuedEmailBackend",
            "OPTIONS": {"mailer": "transactional"},
        },
        "transactional": {
            "BACKEND": "django_sendflare.backends.EmailBackend",
            "OPTIONS": {"api_url": sendflare_sandbox.url, "api_token": sendflare_sandbox.token},
        },
    }
    settings.SENDFLARE = {"RATE_LIMIT": 0, "MAIL_MAX_ATTEMPTS": 3}
    backend = QueuedEmailBackend(alias="default", mailer="transactional")
    EmailMessage("S", "B", "f@example.com", ["a@example.com"], connection=backend).send()
    call_command("sendflare_worker", "--once")
    assert [m["to"] for m in sendflare_sandbox.messages()] == ["a@example.com"]
    assert "1 sent" in capsys.readouterr().out
    assert QueuedRecipient.objects.get().state == "sent"
