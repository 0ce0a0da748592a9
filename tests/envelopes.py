"""Envelope builders shared by the tests that mock HTTP with `responses`."""

from __future__ import annotations

import itertools
from typing import Any

_ids = itertools.count(1)


def envelope(code: int = 0, data: Any = None, message: str | None = None) -> dict[str, Any]:
    """The API's documented response envelope."""
    return {
        "requestId": f"req-{next(_ids)}",
        "code": code,
        "success": code == 0,
        "message": message if message is not None else ("Successfully" if code == 0 else "Error"),
        "ts": 1758864125072,
        "data": data,
    }
