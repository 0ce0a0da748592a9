"""The frozen settings object's machinery: each row of the table is a typed attribute.

A :class:`Setting` is both a row of the table (key, default, validator, help) and the
descriptor through which the settings object gives its validated value. :class:`FrozenSettings`
validates every row once, when the object is built, and keeps for each key either its value or
its :class:`~django_sendflare.validators.Problem`:

* reading an attribute (``conf.rate_limit``) is *strict for that key*: it returns the value, or
  raises ``SendflareConfigurationError`` with that key's problem. Other keys may be broken.
* :meth:`FrozenSettings.require_valid` is *strict for every key*: it raises, naming every
  invalid key, unless all are valid. Everything that talks to the API calls it first.
* :meth:`FrozenSettings.value_or` is the one *tolerant* read: the value, or a fallback when the
  key is invalid. It is for code that must go on when the settings are broken (the contact
  receivers run inside every user save); the system checks report the problem.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Generic, TypeVar, overload

from ..exceptions import SendflareConfigurationError
from ..validators import Problem, Validator

T = TypeVar("T")
SettingsT = TypeVar("SettingsT", bound="FrozenSettings")


class Setting(Generic[T]):
    """One key of ``settings.SENDFLARE``: a row of the table, read as a typed attribute.

    The key is the attribute's name in upper case (``rate_limit`` -> ``RATE_LIMIT``).
    """

    def __init__(self, default: Any, validator: Validator, help: str) -> None:
        self.default = default
        self.validator = validator
        #: What it does, in one or two sentences (the settings reference shows it).
        self.help = help
        #: The attribute of the settings object, and the key of ``SENDFLARE``.
        self.attribute = self.key = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.attribute, self.key = name, name.upper()

    @overload
    def __get__(self, instance: None, owner: type) -> Setting[T]: ...

    @overload
    def __get__(self, instance: FrozenSettings, owner: type) -> T: ...

    def __get__(self, instance: FrozenSettings | None, owner: type) -> Setting[T] | T:
        if instance is None:
            return self
        value: T = instance.value(self.key)
        return value

    def __repr__(self) -> str:
        return f"<Setting {self.key}>"


def describe(problems: list[Problem]) -> str:
    """The text of an error made of these problems (their messages, hints and first id)."""
    text = " ".join(" ".join(part for part in (p.msg, p.hint) if part) for p in problems)
    return f"{text} [{problems[0].id}]"


def _empty(value: object) -> bool:
    # No == on an arbitrary object: a setting may hold anything, even an object whose == raises.
    return value is None or (isinstance(value, str) and not value)


class FrozenSettings:
    """Every row of a subclass's table, validated from a raw dict (see the module docstring).

    ``unusable`` is a problem of the whole dict (it is not a dict): then every key has it.
    """

    #: The rows of the table, in the order of the class body.
    rows: ClassVar[tuple[Setting[Any], ...]] = ()
    #: Where the raw values come from, in messages.
    source: ClassVar[str] = "SENDFLARE"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.rows = tuple(v for v in vars(cls).values() if isinstance(v, Setting))

    def __init__(self, raw: Mapping[str, Any], *, unusable: Problem | None = None) -> None:
        keys = {row.key: row for row in self.rows}
        problems = [] if unusable else [self._unknown_key(key) for key in raw if key not in keys]
        values: dict[str, Any] = {}
        invalid: dict[str, Problem] = {}
        for row in self.rows:
            value = raw.get(row.key, row.default)
            problem = unusable or row.validator(row.key, value, row.default)
            if problem is None:
                values[row.key] = row.validator.clean(value)
            else:
                invalid[row.key] = problem
                if problem is not unusable:
                    problems.append(problem)
        if unusable:
            problems.append(unusable)
        self.derive(values, invalid)
        given = frozenset(key for key, value in raw.items() if not _empty(value))
        object.__setattr__(self, "_values", MappingProxyType(values))
        object.__setattr__(self, "_invalid", MappingProxyType(invalid))
        object.__setattr__(self, "_given", given)
        #: Every problem found, warnings (unknown keys) included, as the system checks show them.
        object.__setattr__(self, "problems", tuple(problems))

    _values: Mapping[str, Any]
    _invalid: Mapping[str, Problem]
    _given: frozenset[str]
    problems: tuple[Problem, ...]

    def derive(self, values: dict[str, Any], invalid: dict[str, Problem]) -> None:
        """Turn cleaned values into what the object holds, where a key depends on another."""

    def _unknown_key(self, key: object) -> Problem:
        close = difflib.get_close_matches(str(key), [row.key for row in self.rows], n=1)
        return Problem(
            "sendflare.W001",
            f"{self.source} has an unknown key {key!r}: it is ignored.",
            f"Did you mean {close[0]!r}?"
            if close
            else "Remove it; the settings reference lists every key.",
            level="warning",
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: change settings.{self.source}")

    def __delattr__(self, name: str) -> None:
        self.__setattr__(name, None)

    def value(self, key: str) -> Any:
        """The value of ``key``; SendflareConfigurationError when it is invalid."""
        problem = self._invalid.get(key)
        if problem is not None:
            raise SendflareConfigurationError(describe([problem]))
        return self._values[key]

    def value_or(self, key: str, fallback: Any) -> Any:
        """The value of ``key``, or ``fallback`` when it is invalid: THE tolerant read.

        Only for code that must go on with broken settings; the system checks report them.
        """
        return fallback if key in self._invalid else self._values[key]

    def is_given(self, key: str) -> bool:
        """Whether the raw settings give ``key`` a value (not missing, None or empty)."""
        return key in self._given

    @property
    def errors(self) -> list[Problem]:
        """The problems that make the settings unusable for whoever reads every key."""
        return [p for p in self.problems if p.level == "error"]

    def require_valid(self: SettingsT) -> SettingsT:
        """Return the settings; SendflareConfigurationError naming every invalid key if any."""
        errors = self.errors
        if errors:
            raise SendflareConfigurationError(describe(errors))
        return self

    def __repr__(self) -> str:
        # Secrets (the token, the limiter's options) are never shown, nor are invalid values.
        shown = ", ".join(
            f"{row.attribute}={self._values[row.key]!r}"
            for row in self.rows
            if not row.validator.secret and row.key in self._values
        )
        return f"{type(self).__name__}({shown})"
