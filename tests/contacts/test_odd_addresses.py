"""Issue 22, the cases not yet tried: odd addresses through contact sync, from user saves.

The user model takes any text as an address (``create_user`` and ``save()`` run no
validation), so contact sync meets what ``send_mail`` refuses up front: unicode, IDN, the
same address in two cases, 320 characters, NUL bytes. Whatever it meets, the remote list must
end up holding exactly the addresses of the users that can be synced, each once, and never an
address that no user has (a cut-short form, say).
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import DataError, transaction

from django_sendflare.client import SendflareClient
from django_sendflare.models import ContactChange

from ..test_odd_addresses import ADDRESS_254, ADDRESS_320, ADDRESS_320_CUT

APP_ID = "odd-app"
ON_POSTGRES = django_settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sandbox(sendflare_sandbox_settings: Any, settings: Any) -> Any:
    settings.SENDFLARE = {
        **settings.SENDFLARE,
        "APP_ID": APP_ID,
        "SYNC_CONTACTS": True,
        "RATE_LIMIT": 0,
        "MAX_RETRIES": 0,
    }
    return sendflare_sandbox_settings


def user(email: str) -> Any:
    model = get_user_model()
    return model.objects.create_user(f"u{model.objects.count()}", email)


def sync(*options: str) -> str:
    """``sync_contacts`` with these options (none: a full sync); its output (a failure exit
    is not an error here)."""
    out = io.StringIO()
    try:
        call_command("sync_contacts", *(options or ("--no-progress",)), stdout=out, stderr=out)
    except CommandError as error:
        out.write(f"\nexit: {error}")
    return out.getvalue()


def remote(sandbox: Any) -> list[str]:
    return sorted(c["emailAddress"] for c in sandbox.contacts(APP_ID))


def writes(sandbox: Any) -> int:
    return sum(r["method"] != "GET" for r in sandbox.requests())


def test_unicode_and_idn_addresses_are_synced_once_and_stay_in_step(sandbox: Any) -> None:
    user("ada@bücher.example")
    user("jürgen@example.com")
    user("ok@example.com")
    sync("--pending")
    assert remote(sandbox) == ["ada@bücher.example", "jürgen@example.com", "ok@example.com"]
    # A full sync afterwards finds nothing to do: the addresses read back match the users'.
    before = writes(sandbox)
    sync()
    assert writes(sandbox) == before
    assert not ContactChange.objects.exists()


def test_two_users_with_one_address_in_two_cases_make_no_contact(sandbox: Any) -> None:
    user("Bob@Example.com")
    user("bob@example.com")
    user("ok@example.com")
    output = sync("--pending")
    assert "Conflict" in output
    assert remote(sandbox) == ["ok@example.com"]


def test_when_one_of_two_users_of_an_address_goes_the_other_is_synced(sandbox: Any) -> None:
    first = user("Bob@Example.com")
    user("bob@example.com")
    sync("--pending")
    first.delete()
    sync("--pending")
    # The delete ends the conflict: the survivor's parked change is pending again, and the
    # next delivery (the watcher's next pass) creates its contact; no person has to Retry it.
    assert ContactChange.objects.get().state == ContactChange.State.PENDING
    sync("--pending")
    assert remote(sandbox) == ["bob@example.com"]


def test_the_longest_smtp_address_is_synced_whole(sandbox: Any) -> None:
    user(ADDRESS_254)
    sync("--pending")
    assert remote(sandbox) == [ADDRESS_254]


@pytest.mark.skipif(ON_POSTGRES, reason="PostgreSQL refuses the user's save itself (varchar 254)")
def test_a_320_character_address_is_refused_and_spares_the_user_of_its_cut_form(
    sandbox: Any,
) -> None:
    long = user(ADDRESS_320)
    user(ADDRESS_320_CUT)
    assert "not delivered" in sync("--pending")  # the API refuses 320 characters
    assert remote(sandbox) == [ADDRESS_320_CUT]
    long.delete()
    sync("--pending")
    assert remote(sandbox) == [ADDRESS_320_CUT]


@pytest.mark.skipif(ON_POSTGRES, reason="PostgreSQL refuses the user's save itself (varchar 254)")
def test_a_320_character_address_is_never_cut_into_another_address(sandbox: Any) -> None:
    # A subscriber that no user is (signed up through a Sendflare form, say) has the address
    # that the first 254 characters of the long one make.
    SendflareClient(sandbox.token, api_url=sandbox.url).save_contact(
        email=ADDRESS_320_CUT, app_id=APP_ID
    )
    long = user(ADDRESS_320)
    sync("--pending")
    long.email = "other@example.com"
    long.save()
    sync("--pending")
    assert remote(sandbox) == sorted([ADDRESS_320_CUT, "other@example.com"])


@pytest.mark.skipif(not ON_POSTGRES, reason="the PostgreSQL side of the 320-character case")
def test_on_postgresql_a_320_character_address_is_refused_with_the_save(sandbox: Any) -> None:
    with pytest.raises(DataError), transaction.atomic():
        user(ADDRESS_320)
    assert not ContactChange.objects.exists()
    assert remote(sandbox) == []


@pytest.mark.skipif(ON_POSTGRES, reason="PostgreSQL refuses the user's save itself (NUL)")
@pytest.mark.parametrize("address", ["nul\x00@example.com", "nul@example.com\x00"])
def test_an_address_with_a_nul_byte_never_reaches_the_api(sandbox: Any, address: str) -> None:
    user(address)
    user("ok@example.com")
    sync("--pending")
    assert remote(sandbox) == ["ok@example.com"]
    [change] = ContactChange.objects.all()
    assert change.state == ContactChange.State.FAILED


@pytest.mark.skipif(not ON_POSTGRES, reason="the PostgreSQL side of the NUL case")
def test_on_postgresql_an_address_with_a_nul_byte_is_refused_with_the_save(sandbox: Any) -> None:
    with pytest.raises(DataError, match="NUL"), transaction.atomic():
        user("nul\x00@example.com")
    assert not ContactChange.objects.exists()
    assert remote(sandbox) == []
