"""Decoding of JSON request bodies into values the sandbox can store and show afterwards.

Python's decoder takes two things no later page could cope with: a lone UTF-16 surrogate
(``"\\ud800"`` decodes to a string with no UTF-8 form, so every page showing it would fail) and
nesting some thousand levels deep (``RecursionError``). Both are refused here, at request time,
with 100033, by the API and the inspection endpoints alike.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django_sendflare.sandbox.envelope import BAD_PARAMETERS

#: Deeper JSON is refused: a documented body is at most 2 levels deep.
MAX_JSON_DEPTH = 32

# A lone UTF-16 surrogate: JSON's "\ud800" decodes to one, yet it is no character, has no UTF-8
# form, and could be neither stored as text nor shown by the inspection pages.
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


class InvalidRequest(Exception):
    """A request the service would refuse, with the service code to answer."""

    def __init__(self, detail: str, code: int = BAD_PARAMETERS) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def decode_json(body: bytes) -> Any:
    """Decode a JSON request body, refusing what could not be stored or shown afterwards.

    Refused: bytes that are not UTF-8, text that is not JSON, nesting deeper than
    :data:`MAX_JSON_DEPTH`, and any string (key or value) holding a lone surrogate.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            f"the request body is not UTF-8 (byte {exc.start}: {exc.reason})"
        ) from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise InvalidRequest(
            f"the request body is nested deeper than {MAX_JSON_DEPTH} levels"
        ) from None
    except ValueError as exc:
        raise InvalidRequest(f"the request body is not valid JSON ({exc})") from None
    _check_storable(value)
    return value


def _check_storable(value: Any) -> None:
    # Iterative, so that no depth of nesting can exhaust the stack here.
    pending: list[tuple[Any, str, int]] = [(value, "", 0)]
    while pending:
        item, where, depth = pending.pop()
        if isinstance(item, str):
            check_text(item, where or "the request body")
            continue
        if not isinstance(item, (dict, list)):
            continue
        if depth >= MAX_JSON_DEPTH:
            raise InvalidRequest(f"the request body is nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                check_text(key, f"a key of '{where}'" if where else "a key")
                pending.append((child, f"{where}.{key}" if where else key, depth + 1))
        else:
            pending.extend((child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item))


def check_text(value: str, where: str) -> None:
    """Refuse a string holding a lone surrogate, which is not text (no UTF-8 form)."""
    match = _SURROGATE_RE.search(value)
    if match is not None:
        raise InvalidRequest(
            f"{_quoted(where)} holds U+{ord(match.group()):04X}, a lone surrogate: not text"
        )


def _quoted(where: str) -> str:
    return where if where.startswith(("a key", "the request")) else f"'{where}'"
