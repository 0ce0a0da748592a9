"""The shortcuts of ``parse_address``: the same answers as without them.

Bulk enqueue spent most of its validation time in ``email.utils.getaddresses``; a bare ASCII
dot-atom address skips it, and the answer for an address (a batch's sender, mostly) is
remembered. These tests say that neither changes what is accepted or refused.
"""

from __future__ import annotations

import re
from email.utils import getaddresses

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from django_sendflare import payload
from django_sendflare.exceptions import SendflareInvalidAddress

plain = st.from_regex(payload._PLAIN_ADDRESS, fullmatch=True)
NEVER = re.compile(r"(?!)")


def outcome(text: str) -> tuple[str, str]:
    try:
        return "address", payload.parse_address(text, field="to")
    except SendflareInvalidAddress as error:
        return "refused", str(error)


@given(plain)
@example("ann.lee+news@mail.example.com")
@example("a@b.c")
def test_the_parser_returns_a_plain_address_unchanged(text):
    assert getaddresses([text]) == [("", text)]


# Valid, invalid (a domain label starting with "-", a TLD of digits) and too long, alike.
@given(
    st.one_of(plain, st.builds("{}@{}.example".format, st.text("ab-", min_size=1), st.text("a-")))
)
@example("-@x.example")
@example("a@-b.example")
@example("a@b.123")
@example("a" * 250 + "@b.example")
def test_the_shortcut_answers_as_the_parser_does(text):
    fast = outcome(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(payload, "_PLAIN_ADDRESS", NEVER)  # every address through the parser
        payload._parse_address.cache_clear()  # and none remembered from the shortcut
        assert outcome(text) == fast
    payload._parse_address.cache_clear()


@pytest.mark.parametrize(
    "text",
    ["Ann <ann@example.com>", "ann@example.com (Ann)", "a..b@example.com", "a@b@example.com"],
)
def test_what_is_not_plain_still_goes_through_the_parser(text):
    assert not payload._PLAIN_ADDRESS.fullmatch(text)


def test_a_refused_address_is_refused_every_time_and_an_accepted_one_is_the_same():
    for _ in range(2):
        with pytest.raises(SendflareInvalidAddress, match="no public domain"):
            payload.parse_address("root@localhost", field="from")
    assert payload.parse_address("Ann <ann@b\u00fccher.example>", field="to") == (
        "ann@xn--bcher-kva.example"
    )
    assert payload.parse_address("Ann <ann@b\u00fccher.example>", field="to") == (
        "ann@xn--bcher-kva.example"
    )
