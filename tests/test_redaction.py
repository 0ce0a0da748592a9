"""Credentials in URLs are masked wherever we print a URL."""

from __future__ import annotations

import pytest

from django_sendflare.checks import check_settings
from django_sendflare.conf import load_settings
from django_sendflare.exceptions import SendflareConfigurationError
from django_sendflare.redaction import mask_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.sendflare.io", "https://api.sendflare.io"),
        ("https://user:s3cr3t-Pa55@api.example.com/v2", "https://***:***@api.example.com/v2"),
        ("https://s3cr3t-Pa55@api.example.com", "https://***@api.example.com"),
        ("redis://:s3cr3t-Pa55@redis:6379/0", "redis://***:***@redis:6379/0"),
        # An unencoded "@" in the password: the whole userinfo goes, up to the last "@".
        ("https://u:s3cr3t@Pa55@host/p", "https://***:***@host/p"),
        ("https://host/p?api_key=s3cr3t-Pa55&page=2", "https://host/p?api_key=***&page=2"),
        ("https://host/?page=2&token=s3cr3t-Pa55", "https://host/?page=2&token=***"),
        ("https://host/?Access_Token=s3cr3t-Pa55#x", "https://host/?Access_Token=***#x"),
        ("https://host/#access_token=s3cr3t-Pa55", "https://host/#access_token=***"),
        (
            "https://host/?password=s3cr3t-Pa55;sig=s3cr3t-Pa55",
            "https://host/?password=***;sig=***",
        ),
        ("https://host/?token=", "https://host/?token="),
        # Generated passwords pasted unencoded: base64's "/" and "+", an "@", a ":".
        ("redis://:s3cr/3t+Pa55==@redis:6379/0", "redis://***:***@redis:6379/0"),
        ("https://u:a/b@c:d@host/v2?x=1", "https://***:***@host/v2?x=1"),
        # An "@" in the query (a contact's address) is not taken for credentials.
        (
            "https://api.sendflare.io/v1/contact?appId=1&emailAddress=a@example.com",
            "https://api.sendflare.io/v1/contact?appId=1&emailAddress=a@example.com",
        ),
        # Malformed URLs (what an error message shows) are masked too, and never raise.
        ("https://u:s3cr3t-Pa55@host:99999", "https://***:***@host:99999"),
        ("https://u:s3cr3t-Pa55@[::1/x?key=s3cr3t-Pa55", "https://***:***@[::1/x?key=***"),
        ("not a url", "not a url"),
    ],
)
def test_mask_url(url: str, expected: str) -> None:
    assert mask_url(url) == expected


def test_mask_url_takes_anything() -> None:
    assert mask_url(None) == "None"
    assert mask_url(b"x") == "b'x'"


@pytest.mark.parametrize(
    "url",
    [
        "https://user:s3cr3t-Pa55@api.sendflare.io",  # credentials: E002
        "https://api.sendflare.io?token=s3cr3t-Pa55",  # a query: E002
        "https://user:s3cr3t-Pa55@api.sendflare.io:99999",  # malformed: E002
        "http://user:s3cr3t-Pa55@mail.example.com",  # plain http: E003
        "ftp://user:s3cr3t-Pa55@api.sendflare.io",  # not http(s): E002
        "https://user:s3cr3t-Pa55@api.sendflare.io/v1",  # /v1: E002
        "https://user:s3cr3t/Pa55@api.sendflare.io",  # an unencoded "/": a bad port, E002
    ],
)
def test_check_e002_and_e003_never_print_credentials_of_api_url(settings, url: str) -> None:
    settings.SENDFLARE = {"API_TOKEN": "t", "API_URL": url}
    [message] = check_settings()
    assert message.id in ("sendflare.E002", "sendflare.E003")
    assert "api.sendflare.io" in message.msg or "mail.example.com" in message.msg
    assert "s3cr3t" not in str(message)
    with pytest.raises(SendflareConfigurationError) as excinfo:
        load_settings()
    assert "s3cr3t" not in str(excinfo.value)


def test_error_text_masks_url_credentials_and_the_given_secrets() -> None:
    from django_sendflare.redaction import error_text

    error = ConnectionError(
        "Error 111 connecting to redis://:hunter2@10.0.0.1:6379 (Bearer tok123)"
    )
    text = error_text(error, "tok123", "")
    assert "hunter2" not in text and "tok123" not in text
    assert "10.0.0.1:6379" in text and "Error 111" in text
