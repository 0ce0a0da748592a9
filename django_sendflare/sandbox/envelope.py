"""The documented response envelope and service codes.

Every API response is ``{requestId, code, success, message, ts, data}``; ``code`` 0 means success.
The codes come from the SendKit document's error table, which applies to both providers.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

SUCCESS = 0
BAD_PARAMETERS = 100033
TOO_LARGE = 100023
RATE_LIMITED = 100025
INVALID_SIGNATURE = 100029
INVALID_SENDING_DOMAIN = 100030
DAILY_QUOTA = 100031
SUBSCRIPTION_EXPIRED = 100047
UNKNOWN_SENDER = 100048
NOT_ACTIVATED = 100049

#: The documents' wording for each code, used as the envelope's message.
MESSAGES: dict[int, str] = {
    SUCCESS: "Successfully",
    BAD_PARAMETERS: "Bad request parameters",
    TOO_LARGE: "Email too large",
    RATE_LIMITED: "Exceeding the maximum sending limit",
    INVALID_SIGNATURE: "Invalid signature",
    INVALID_SENDING_DOMAIN: "The sending domain is invalid",
    DAILY_QUOTA: "You have reached the maximum daily sending limit",
    SUBSCRIPTION_EXPIRED: (
        "Your subscription has expired. Please renew to continue using the service"
    ),
    UNKNOWN_SENDER: "The sender's email address does not exist",
    NOT_ACTIVATED: "Please activate your account",
}


def new_request_id() -> str:
    """Return a fresh request id (a uuid4 string, as in the documented examples)."""
    return str(uuid.uuid4())


def now_ms() -> int:
    """Return the server timestamp in milliseconds since the epoch."""
    return int(time.time() * 1000)


def envelope(
    code: int,
    *,
    request_id: str,
    data: Any = None,
    detail: str = "",
) -> dict[str, Any]:
    """Build one envelope; ``detail`` (what was wrong) follows the documented message."""
    message = MESSAGES.get(code, "Error")
    if detail:
        message = f"{message}: {detail}"
    return {
        "requestId": request_id,
        "code": code,
        "success": code == SUCCESS,
        "message": message,
        "ts": now_ms(),
        "data": data,
    }


def to_json_bytes(value: Any) -> bytes:
    """Serialise ``value`` as compact UTF-8 JSON."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
