"""Numbers no clock, socket or limiter can use are refused, in the settings and at run time.

Issue 22: ``TIMEOUT = float("inf")`` passed ``manage.py check`` and turned every queued
message into ``unknown`` (an OverflowError inside the request); ``RATE_LIMIT`` 1e309 or 1e-300
failed inside the limiter. Each number setting now has bounds (stated in the settings
reference); each test here shows a good value working and a bad one refused with an error that
names it, before anything is sent or stored.
"""

from __future__ import annotations

import datetime
import math

import pytest
import responses
from django.core.mail import EmailMessage
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError

from django_sendflare import exceptions as exc
from django_sendflare.backends import EmailBackend, QueuedEmailBackend
from django_sendflare.bounds import Integer, Number, Timeout
from django_sendflare.checks import check_settings
from django_sendflare.client import SendflareClient
from django_sendflare.conf import BY_KEY, SETTINGS, get_settings, load_settings
from django_sendflare.mail.purge import purge_sent_mail
from django_sendflare.models import QueuedMessage, QueuedRecipient
from django_sendflare.queue import WorkQueue
from django_sendflare.ratelimit import (
    InProcessRateLimiter,
    RedisRateLimiter,
    get_rate_limiter,
)
from django_sendflare.retry import MAX_RETRY_AFTER, RetryPolicy, backoff_delay

from .envelopes import envelope

TOKEN = "sf-bounds-token"
INF, NAN = float("inf"), float("nan")
REDIS = "django_sendflare.ratelimit.RedisRateLimiter"

#: Per number setting: values at and inside its bounds, values outside them.
CASES: dict[str, tuple[list[object], list[object]]] = {
    "TIMEOUT": (
        [0.01, 3600, (0.01, 3600), [2, 10]],
        [INF, NAN, -INF, 3600.5, 0.001, (5, INF), (NAN, 5), 10**400],
    ),
    "RATE_LIMIT": ([0, 0.01, 5, 10_000], [INF, 1e309, 1e-300, 0.001, 10_000.5, NAN, -INF]),
    "RETRY_MAX_TIME": ([0.5, 3600], [0, INF, NAN, 3600.5, -1]),
    "MAX_RETRIES": ([0, 100], [101, 10**30, INF]),
    "MAX_CONCURRENT_REQUESTS": ([1, 256], [0, 257, 10**9]),
    "CONTACTS_MAX_ATTEMPTS": ([1, 1000], [0, 1001, 2**63]),
    "MAIL_MAX_ATTEMPTS": ([1, 1000], [0, 1001, 2**63]),
    "MAIL_MAX_DUE_AGE": ([1, 900, 604_800], [0, 0.5, INF, NAN, 604_800.5, -1]),
    "MAIL_RETENTION_DAYS": ([None, 0.5, 36_500], [0, INF, NAN, 36_500.5, 1e10]),
}


def test_every_number_setting_has_cases_here():
    numbers = {s.key for s in SETTINGS if isinstance(s.validator, (Number, Integer, Timeout))}
    assert numbers == set(CASES)


@pytest.mark.parametrize(
    ("key", "value"),
    [(key, value) for key, (good, _) in CASES.items() for value in good],
    ids=repr,
)
def test_a_value_within_the_bounds_passes(settings, key, value):
    settings.SENDFLARE = {"API_TOKEN": TOKEN, key: value}
    assert [m.id for m in check_settings()] == []
    load_settings()  # does not raise


@pytest.mark.parametrize(
    ("key", "value"),
    [(key, value) for key, (_, bad) in CASES.items() for value in bad],
    ids=repr,
)
def test_a_value_outside_the_bounds_is_e004_naming_the_setting_and_its_bounds(settings, key, value):
    settings.SENDFLARE = {"API_TOKEN": TOKEN, key: value}
    [message] = check_settings()
    assert message.id == "sendflare.E004"
    assert f"SENDFLARE[{key!r}] must be {BY_KEY[key].validator.expected}" in message.msg
    with pytest.raises(exc.SendflareConfigurationError, match=key):
        load_settings()


def test_manage_py_check_fails_on_an_infinite_timeout(settings, sendflare_backend):
    settings.SENDFLARE = {"API_TOKEN": TOKEN, "TIMEOUT": INF}
    with pytest.raises(SystemCheckError, match="TIMEOUT"):
        call_command("check")


# The issue's three values: nothing is sent, nothing is stored ----------------------------------

ISSUE_VALUES = [("TIMEOUT", INF), ("RATE_LIMIT", 1e309), ("RATE_LIMIT", 1e-300)]


def message(connection) -> EmailMessage:
    return EmailMessage("S", "Body", "f@example.com", ["to@example.com"], connection=connection)


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "value"), ISSUE_VALUES)
def test_sending_now_with_a_bad_number_sends_nothing(
    sendflare_sandbox_settings, settings, key, value
):
    good = dict(settings.SENDFLARE)
    settings.SENDFLARE = {**good, key: value}
    with pytest.raises(exc.SendflareConfigurationError, match=key):
        message(EmailBackend(fail_silently=True)).send()
    assert sendflare_sandbox_settings.requests() == []
    settings.SENDFLARE = good
    assert message(EmailBackend()).send() == 1
    assert len(sendflare_sandbox_settings.messages()) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "value"), ISSUE_VALUES)
def test_queueing_with_a_bad_number_stores_nothing(settings, key, value):
    good = dict(settings.SENDFLARE)
    settings.SENDFLARE = {**good, key: value}
    with pytest.raises(exc.SendflareConfigurationError, match=key):
        message(QueuedEmailBackend()).send()
    assert not QueuedMessage.objects.exists()
    settings.SENDFLARE = good
    assert message(QueuedEmailBackend()).send() == 1
    assert QueuedMessage.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_mail_queued_before_the_timeout_became_infinite_stays_queued(
    sendflare_sandbox_settings, settings, capsys
):
    good = {**settings.SENDFLARE, "RATE_LIMIT": 0, "MAX_RETRIES": 0}
    settings.SENDFLARE = good
    message(QueuedEmailBackend()).send()
    settings.SENDFLARE = {**good, "TIMEOUT": INF}
    with pytest.raises(CommandError):
        call_command("sendflare_worker", "--once", "--no-contacts", "--threads", "1")
    assert "stopped: SENDFLARE['TIMEOUT'] must be" in capsys.readouterr().out
    assert QueuedRecipient.objects.get().state == "queued"  # not unknown: never attempted
    assert sendflare_sandbox_settings.requests() == []
    settings.SENDFLARE = good
    QueuedMessage.objects.update(
        next_attempt_at=datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    )
    call_command("sendflare_worker", "--once", "--no-contacts", "--threads", "1")
    assert QueuedRecipient.objects.get().state == "sent"


# Backend OPTIONS and MAILERS OPTIONS ------------------------------------------------------------


@pytest.mark.parametrize(("option", "value"), [("timeout", INF), ("rate_limit", 1e-300)])
def test_backend_options_are_held_to_the_same_bounds(option, value):
    with pytest.raises(exc.SendflareConfigurationError, match=option.upper()):
        EmailBackend(**{option: value})
    assert EmailBackend(**{option: 3}).conf is not None


def test_mailers_options_are_held_to_the_same_bounds(settings):
    direct = "django_sendflare.backends.EmailBackend"
    settings.MAILERS = {"bulk": {"BACKEND": direct, "OPTIONS": {"timeout": INF}}}
    with pytest.raises(exc.SendflareConfigurationError, match="TIMEOUT"):
        get_settings("bulk").require_valid()
    settings.MAILERS = {"bulk": {"BACKEND": direct, "OPTIONS": {"timeout": 3}}}
    assert get_settings("bulk").read_timeout == 3.0


# The limiter ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [INF, 1e309, 1e-300, NAN, 0, -1, 10_001, "5", True])
def test_a_limiter_refuses_a_rate_it_cannot_space(rate):
    with pytest.raises(exc.SendflareConfigurationError, match="rate"):
        InProcessRateLimiter(rate)


@pytest.mark.parametrize("rate", [0.01, 10_000])
def test_a_limiter_at_its_bounds_hands_out_finite_waits(rate):
    now = [0.0]
    limiter = InProcessRateLimiter(rate, clock=lambda: now[0])
    assert limiter.reserve() == 0
    assert math.isfinite(limiter.reserve())


@pytest.mark.parametrize("timeout", [INF, NAN, 0, 1e9])
def test_redis_limiter_options_are_bounded_before_connecting(settings, timeout):
    with pytest.raises(exc.SendflareConfigurationError, match=r"RATE_LIMITER_OPTIONS.*timeout"):
        RedisRateLimiter(5, url="redis://127.0.0.1:1/0", timeout=timeout)
    options = {"url": "redis://127.0.0.1:1/0", "timeout": timeout}
    conf = load_settings({"RATE_LIMIT": 5, "RATE_LIMITER": REDIS, "RATE_LIMITER_OPTIONS": options})
    with pytest.raises(exc.SendflareConfigurationError, match="timeout"):
        get_rate_limiter(conf)


def test_redis_limiter_takes_a_timeout_within_the_bounds():
    limiter = RedisRateLimiter(5, url="redis://127.0.0.1:1/0", timeout=0.5)
    kwargs = limiter._redis.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 0.5


@pytest.mark.parametrize("seconds", [INF, NAN, -1])
def test_a_pause_no_clock_can_add_is_refused(seconds):
    limiter = InProcessRateLimiter(5, clock=lambda: 0.0)
    with pytest.raises(ValueError, match="pause"):
        limiter.pause(seconds)


def test_a_pause_is_capped_at_a_day():
    limiter = InProcessRateLimiter(5, clock=lambda: 0.0)
    limiter.pause(1e300)
    assert limiter.next_free() == MAX_RETRY_AFTER


# Numbers from the API: Retry-After ---------------------------------------------------------------

URL = "https://api.test.invalid"


def client(sleeps: list[float]) -> SendflareClient:
    return SendflareClient(
        TOKEN, api_url=URL, retry=RetryPolicy(max_retries=3, max_time=30), sleep=sleeps.append
    )


@responses.activate
@pytest.mark.parametrize("header", ["1e300", "99999999999", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_retry_after_beyond_a_day_counts_as_a_day(header):
    responses.post(
        URL + "/v1/send", json=envelope(100025), status=429, headers={"Retry-After": header}
    )
    sleeps: list[float] = []
    with pytest.raises(exc.SendflareRateLimited) as excinfo:
        client(sleeps).send(from_email="a@example.com", to="b@example.com", subject="S", body="B")
    assert excinfo.value.retry_after == MAX_RETRY_AFTER
    assert sleeps == [] and len(responses.calls) == 1  # past the retry budget: not retried


@responses.activate
def test_a_retry_after_within_the_budget_is_waited_for():
    responses.post(
        URL + "/v1/send", json=envelope(100025), status=429, headers={"Retry-After": "2"}
    )
    responses.post(URL + "/v1/send", json=envelope())
    sleeps: list[float] = []
    client(sleeps).send(from_email="a@example.com", to="b@example.com", subject="S", body="B")
    assert sleeps == [2.0]


# The client and the retry policy, built by hand ----------------------------------------------------


@pytest.mark.parametrize("timeout", [INF, (5, INF), NAN, 0, 10**6])
def test_a_client_refuses_a_timeout_no_socket_takes(timeout):
    with pytest.raises(exc.SendflareConfigurationError, match="timeout"):
        SendflareClient(TOKEN, timeout=timeout)
    assert SendflareClient(TOKEN, timeout=(1, 2)).timeout == (1.0, 2.0)


@pytest.mark.parametrize(
    ("field", "value"), [("max_retries", 10**6), ("max_retries", -1), ("max_time", INF)]
)
def test_a_retry_policy_is_held_to_the_settings_bounds(field, value):
    with pytest.raises(exc.SendflareConfigurationError, match=field):
        RetryPolicy(**{field: value})


def test_the_backoff_of_a_much_retried_item_stays_within_its_cap():
    assert backoff_delay(10**6, base=30, cap=3600) <= 3600
    queue = WorkQueue(QueuedMessage, max_attempts=1000)
    assert 1800 <= queue.backoff(1000) <= 3600


# Command-line numbers ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--interval", "inf"], "--interval"),
        (["--interval", "nan"], "--interval"),
        (["--interval", "1e-9"], "--interval"),
        (["--interval", "1e9"], "--interval"),
        (["--threads", "1000000"], "--threads"),
    ],
)
def test_worker_options_out_of_bounds_are_usage_errors(args, named):
    with pytest.raises(CommandError, match=named) as excinfo:
        call_command("sendflare_worker", "--once", *args)
    assert excinfo.value.returncode == 2


@pytest.mark.django_db
@pytest.mark.parametrize("days", ["inf", "nan", "1e10", "-1"])
def test_purge_days_out_of_bounds_are_usage_errors(days):
    with pytest.raises(CommandError, match="--days") as excinfo:
        call_command("purge_sendflare_mail", "--days", days)
    assert excinfo.value.returncode == 2


@pytest.mark.django_db
@pytest.mark.parametrize("days", [INF, NAN, 1e10, -1])
def test_purging_from_code_is_held_to_the_same_bounds(days):
    with pytest.raises(exc.SendflareConfigurationError, match="days"):
        purge_sent_mail(days=days)
    assert purge_sent_mail(days=0) == 0


@pytest.mark.django_db
def test_purge_days_within_the_bounds_run(capsys):
    call_command("purge_sendflare_mail", "--days", "0", "--dry-run")
    assert "0 sent message(s) would be deleted" in capsys.readouterr().out


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        ["--watch", "--interval", "inf"],
        ["--since", "99999999999d", "--dry-run"],
        ["--pending", "--batch-size", str(10**30)],
        ["--dry-run", "--chunk-size", "100001"],
    ],
)
def test_sync_contacts_numbers_out_of_bounds_are_usage_errors(args):
    with pytest.raises(CommandError) as excinfo:
        call_command("sync_contacts", *args)
    assert excinfo.value.returncode == 2
