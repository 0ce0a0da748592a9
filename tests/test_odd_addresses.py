"""Issue 22, the cases not yet tried: odd addresses through ``send_mail``, with both backends.

Unicode and IDN addresses, the same address in several cases, 320-character addresses (the
longest an address's parts allow) and NUL bytes. Each is either sent to the address the caller
meant, once, or refused before anything is stored or sent, with an error that names it: never
cut short into another address, never sent twice, never half a batch.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.core.mail import EmailMessage

from django_sendflare import exceptions as exc
from django_sendflare.models import QueuedMessage, QueuedRecipient
from django_sendflare.worker import Worker

from .conftest import HAS_MAILERS

pytestmark = pytest.mark.django_db(transaction=True)

BACKENDS = {
    "immediate": "django_sendflare.backends.EmailBackend",
    "queued": "django_sendflare.backends.QueuedEmailBackend",
}

#: 64 + 1 + 255 = 320 characters: the longest local part and the longest domain.
LONGEST_DOMAIN = ("b" * 63 + ".") * 3 + "b" * 59 + ".com"
ADDRESS_320 = "a" * 64 + "@" + LONGEST_DOMAIN
#: What a column of 254 characters would keep of it: another valid address.
ADDRESS_320_CUT = ADDRESS_320[:254]
#: The longest address SMTP carries: 254 characters.
ADDRESS_254 = "a" * 64 + "@" + ("c" * 63 + ".") * 2 + "c" * 57 + ".com"


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, sendflare_sandbox_settings: Any, settings: Any) -> str:
    """Each test runs with the backend that sends and with the one that queues (+ the worker)."""
    settings.SENDFLARE = {**settings.SENDFLARE, "RATE_LIMIT": 0, "MAX_RETRIES": 0}
    if HAS_MAILERS:
        settings.MAILERS = {"default": {"BACKEND": BACKENDS[request.param]}}
    else:
        settings.EMAIL_BACKEND = BACKENDS[request.param]
    return request.param


def deliver(*messages: EmailMessage) -> None:
    """Send the messages; for the queued backend, then run the worker once."""
    with mail.get_connection() as connection:
        connection.send_messages(list(messages))
    Worker(contacts=False, threads=1).run_once()


def delivered_to(sandbox: Any) -> list[str]:
    return sorted(m["to"] for m in sandbox.messages())


def assert_refused_and_nothing_kept(sandbox: Any, error: pytest.ExceptionInfo[Any], value: str):
    assert repr(value) in str(error.value), str(error.value)
    assert sandbox.requests() == []
    assert not QueuedMessage.objects.exists()


def test_an_idn_domain_is_sent_as_punycode(backend, sendflare_sandbox_settings):
    deliver(EmailMessage("S", "B", "f@example.com", ["Ada <ada@Bücher.example>"]))
    assert delivered_to(sendflare_sandbox_settings) == ["ada@xn--bcher-kva.example"]


def test_a_unicode_local_part_is_refused_before_anything_of_the_batch(
    backend, sendflare_sandbox_settings
):
    # The API is documented with ASCII addresses only; SMTPUTF8 local parts cannot be spelt
    # in ASCII, so the whole batch is refused up front, naming the address.
    good = EmailMessage("S", "B", "f@example.com", ["ok@example.com"])
    bad = EmailMessage("S", "B", "f@example.com", ["jürgen@example.com"])
    with pytest.raises(exc.SendflareInvalidAddress) as error:
        deliver(good, bad)
    assert_refused_and_nothing_kept(sendflare_sandbox_settings, error, "jürgen@example.com")


def test_one_address_in_several_cases_is_sent_once(backend, sendflare_sandbox_settings):
    message = EmailMessage(
        "S",
        "B",
        "f@example.com",
        to=["Ada@Example.com"],
        cc=["ada@example.com"],
        bcc=["ADA@EXAMPLE.COM", "Bob@Example.com"],
    )
    deliver(message)
    assert delivered_to(sendflare_sandbox_settings) == ["Ada@Example.com", "Bob@Example.com"]
    if backend == "queued":
        assert QueuedRecipient.objects.count() == 2
    else:
        assert sorted(message.sendflare_status.recipients) == ["Ada@Example.com", "Bob@Example.com"]


def test_a_320_character_address_is_refused_never_cut_to_254(backend, sendflare_sandbox_settings):
    assert len(ADDRESS_320) == 320
    with pytest.raises(exc.SendflareInvalidAddress, match="320 characters long") as error:
        deliver(EmailMessage("S", "B", "f@example.com", [ADDRESS_254, ADDRESS_320]))
    assert_refused_and_nothing_kept(sendflare_sandbox_settings, error, ADDRESS_320)
    # The longest address SMTP can carry is sent, whole.
    assert len(ADDRESS_254) == 254
    deliver(EmailMessage("S", "B", "f@example.com", [ADDRESS_254]))
    assert delivered_to(sendflare_sandbox_settings) == [ADDRESS_254]


@pytest.mark.parametrize(
    "address", ["a\x00b@example.com", "ab@exa\x00mple.com", "ab@example.com\x00"]
)
def test_a_nul_byte_in_an_address_is_refused(backend, sendflare_sandbox_settings, address):
    with pytest.raises(exc.SendflareInvalidInput) as error:
        deliver(EmailMessage("S", "B", "f@example.com", ["ok@example.com", address]))
    assert_refused_and_nothing_kept(sendflare_sandbox_settings, error, address)


@pytest.mark.parametrize("field", ["subject", "body", "from_email"])
def test_a_nul_byte_in_the_subject_body_or_sender_is_refused(
    backend, sendflare_sandbox_settings, field
):
    fields = {"subject": "S", "body": "B", "from_email": "f@example.com", field: "x\x00y"}
    if field == "from_email":
        fields[field] = "f\x00@example.com"
    message = EmailMessage(to=["ok@example.com"], **fields)
    with pytest.raises(exc.SendflareInvalidInput):
        deliver(message)
    assert sendflare_sandbox_settings.requests() == []
    assert not QueuedMessage.objects.exists()
