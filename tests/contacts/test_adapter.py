"""The mapping of users to contacts."""

from __future__ import annotations

import datetime
import decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from django_sendflare.contacts.adapter import (
    Contact,
    ContactAdapter,
    format_value,
    get_adapter,
    normalize_email,
)


class FullAdapter(ContactAdapter):
    """Every data field the API knows, from attributes set on the test user."""

    fields = (
        "language",
        "firstName",
        "lastName",
        "phoneNumber",
        "birthday",
        "company",
        "vipLevel",
        "amount",
    )

    def get_status(self, user: Any) -> str:
        return "Confirmed" if getattr(user, "newsletter", True) else "Unsubscribed"

    def get_data(self, user: Any) -> dict[str, Any]:
        return {
            "language": "fr",
            "firstName": user.first_name,
            "lastName": user.last_name,
            "phoneNumber": None,
            "birthday": datetime.date(1990, 12, 1),
            "company": "  ACME  ",
            "vipLevel": 2,
            "amount": decimal.Decimal("100.50"),
        }


def test_default_adapter_sends_what_the_stock_user_has(make_user: Any) -> None:
    user = make_user("", first_name="Ada", last_name="Lovelace")
    user.email = "  Ada@Example.COM "  # create_user() would lower-case the domain
    contact = ContactAdapter().to_contact(user)
    assert contact.email == "Ada@Example.COM"  # trimmed, case kept for sending
    assert contact.key == "ada@example.com"  # compared lower-cased
    assert contact.status == "Confirmed"
    assert dict(contact.data) == {"firstName": "Ada", "lastName": "Lovelace"}
    assert contact.filled_data() == {"firstName": "Ada", "lastName": "Lovelace"}


def test_default_adapter_leaves_empty_fields_out_of_a_create(make_user: Any) -> None:
    contact = ContactAdapter().to_contact(make_user("a@example.com", first_name="Ada"))
    assert dict(contact.data) == {"firstName": "Ada", "lastName": ""}
    assert contact.filled_data() == {"firstName": "Ada"}


def test_default_adapter_syncs_active_users_with_an_address(make_user: Any) -> None:
    adapter = ContactAdapter()
    assert adapter.should_sync(make_user("a@example.com"))
    assert not adapter.should_sync(make_user("b@example.com", is_active=False))
    assert not adapter.should_sync(make_user(""))
    assert not adapter.should_sync(make_user("   "))


def test_the_email_field_comes_from_get_email_field_name(
    make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = make_user("a@example.com", first_name="other@example.com")
    monkeypatch.setattr(get_user_model(), "EMAIL_FIELD", "first_name")
    assert ContactAdapter().get_email(user) == "other@example.com"
    assert AbstractBaseUser.get_email_field_name.__func__  # type: ignore[attr-defined]


def test_a_custom_adapter_formats_every_field(make_user: Any) -> None:
    user = make_user("a@example.com", first_name="Ada", last_name="L")
    user.newsletter = False
    contact = FullAdapter().to_contact(user)
    assert contact.status == "Unsubscribed"
    assert dict(contact.data) == {
        "amount": "100.50",
        "birthday": "01/12",  # DD/MM: the API keeps no year
        "company": "ACME",
        "firstName": "Ada",
        "language": "fr",
        "lastName": "L",
        "phoneNumber": "",
        "vipLevel": "2",  # the API's data is a record of strings
    }
    assert "phoneNumber" not in contact.filled_data()


def test_get_data_outside_fields_is_an_error(make_user: Any) -> None:
    class Sloppy(ContactAdapter):
        def get_data(self, user: Any) -> dict[str, Any]:
            return {"firstName": "A", "company": "ACME"}

    with pytest.raises(ValueError, match="company"):
        Sloppy().to_contact(make_user("a@example.com"))


def test_contact_rejects_unknown_fields_and_statuses() -> None:
    with pytest.raises(ValueError, match="nickname"):
        Contact("a@example.com", data={"nickname": "x"})
    with pytest.raises(ValueError, match="Subscribed"):
        Contact("a@example.com", status="Subscribed")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("birthday", datetime.date(2000, 3, 7), "07/03"),
        ("birthday", datetime.datetime(2000, 3, 7, 12, 0), "07/03"),
        ("company", datetime.date(2000, 3, 7), "2000-03-07"),
        ("vipLevel", 3, "3"),
        ("vipLevel", True, "1"),
        ("amount", decimal.Decimal("1E+2"), "100"),
        ("amount", None, ""),
        ("firstName", "  Ada ", "Ada"),
    ],
)
def test_format_value(name: str, value: Any, expected: str) -> None:
    assert format_value(name, value) == expected


def test_normalize_email() -> None:
    assert normalize_email("  John.Doe@Example.COM\n") == "john.doe@example.com"
    assert normalize_email(None) == ""


def test_the_adapter_is_loaded_from_settings(settings: Any) -> None:
    settings.SENDFLARE = {**settings.SENDFLARE, "CONTACT_ADAPTER": f"{__name__}.FullAdapter"}
    assert isinstance(get_adapter(), FullAdapter)
