"""The validators of the settings table: what each accepts, and what it keeps."""

from __future__ import annotations

import pytest

from django_sendflare.bounds import Integer, Number, Timeout
from django_sendflare.validators import (
    ApiUrl,
    Boolean,
    Choice,
    DottedPath,
    OptionalText,
    Options,
    Token,
    Validator,
)

CASES: list[tuple[Validator, list[object], list[object]]] = [
    (Boolean(), [True, False], ["yes", 1, 0, None]),
    (Integer(minimum=1), [1, 10], [0, -1, 1.0, True, "2", None]),
    (Integer(minimum=0), [0, 3], [-1, 1.5, False]),
    (Number(), [0.5, 1, 30.0], [0, -1, True, "5", None]),
    (Number(zero_allowed=True), [0, 0.0, 5], [-0.1, None, False]),
    (Number(none_allowed=True), [None, 30, 0.5], [0, -1, "30", True]),
    (Timeout(), [3, 2.5, (1, 10), [1, 10]], [0, (1, 2, 3), (0, 1), ("1", 2), True]),
    (DottedPath(), ["a.B", "x.y.Z"], ["Adapter", 5, None]),
    (Options(), [{}, {"url": "redis://r"}], ["redis://r", None, [("a", 1)]]),
    (OptionalText(), [None, "42"], ["", "  ", 42]),
    (Choice(choices=("a", "b")), ["a", "b"], ["c", None]),
    (Token(), ["t0ken"], [None, "", " t", "t\n", 5]),
    (ApiUrl(), [None, "https://h", "http://127.0.0.1:8025/sandbox"], ["h", "http://h.example"]),
]


@pytest.mark.parametrize(("validator", "good", "bad"), CASES, ids=lambda v: type(v).__name__)
def test_accepts(validator: Validator, good: list[object], bad: list[object]) -> None:
    assert [value for value in good if not validator.accepts(value)] == []
    assert [value for value in bad if validator.accepts(value)] == []
    for value in bad:
        problem = validator("KEY", value, None)
        assert problem is not None and problem.id in validator.check_ids


def test_clean_keeps_what_the_settings_object_needs() -> None:
    assert Number().clean(5) == 5.0 and isinstance(Number().clean(5), float)
    assert Number(none_allowed=True).clean(None) is None
    assert Timeout().clean(3) == (3.0, 3.0)
    assert Timeout().clean([1, 2]) == (1.0, 2.0)
    mapping = {"url": "redis://r"}
    kept = Options().clean(mapping)
    assert kept == mapping
    mapping["url"] = "changed later"
    assert kept == {"url": "redis://r"}
    with pytest.raises(TypeError):
        kept["url"] = "changed through the settings"  # type: ignore[index]


def test_expected_wording() -> None:
    assert Number(none_allowed=True).expected == "a positive number, or None"
    assert Integer(minimum=1).expected == "an integer >= 1"
    assert Choice(choices=("a", "b")).expected == "'a' or 'b'"


def test_a_secret_value_is_described_by_its_type_only() -> None:
    problem = Options()("RATE_LIMITER_OPTIONS", "redis://:pw@r", {})
    assert problem is not None
    assert "pw" not in problem.msg and "a str" in problem.msg
