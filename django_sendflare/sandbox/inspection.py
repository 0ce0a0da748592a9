"""The inspection endpoints under ``/_sandbox/``: HTML pages for people, a JSON API for tests.

They need no token and are never subject to faults or the rate limit. They are meant for local use
only: anyone who can reach them can read every message and change the faults.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote

from django_sendflare.sandbox import pages
from django_sendflare.sandbox.engine import Sandbox, SandboxResponse, json_response
from django_sendflare.sandbox.faults import FaultSettings
from django_sendflare.sandbox.jsonbody import InvalidRequest, decode_json

#: The JSON endpoints, for the index at ``GET /_sandbox/api/``.
API_INDEX = {
    "messages": "GET, DELETE /_sandbox/api/messages; GET /_sandbox/api/messages/<id>",
    "contacts": "GET, DELETE /_sandbox/api/contacts[?appId=[&emailAddress=]]; "
    "POST /_sandbox/api/contacts/unsubscribe",
    "faults": "GET, PUT, DELETE /_sandbox/api/faults; POST /_sandbox/api/faults/queue",
    "requests": "GET, DELETE /_sandbox/api/requests",
    "reset": "POST /_sandbox/api/reset",
}


def _html(status: int, text: str) -> SandboxResponse:
    return SandboxResponse(
        status=status,
        body=text.encode("utf-8"),
        headers={"Content-Type": "text/html; charset=utf-8", **pages.SECURITY_HEADERS},
    )


def _not_allowed(allowed: str) -> SandboxResponse:
    return json_response(405, {"error": "method not allowed"}, {"Allow": allowed})


def _body_json(body: bytes) -> Any:
    # The same decoding as the API's: nothing the fault settings keep may break a later page.
    if not body:
        return None
    try:
        return decode_json(body)
    except InvalidRequest as exc:
        raise ValueError(exc.detail) from None


def handle_inspection(
    sandbox: Sandbox, method: str, rest: str, query: str, body: bytes, base: str
) -> SandboxResponse:
    """Answer ``{method} /_sandbox/{rest}``; ``base`` is the URL of ``/_sandbox/`` for links."""
    rest = rest.strip("/")
    params = {name: values[-1] for name, values in parse_qs(query).items()}
    try:
        if rest == "api" or rest.startswith("api/"):
            return _api(sandbox, method, rest[3:].strip("/"), params, body)
        return _page(sandbox, method, rest, params, base)
    except ValueError as exc:
        return json_response(400, {"error": str(exc)})


def _page(
    sandbox: Sandbox, method: str, rest: str, params: dict[str, str], base: str
) -> SandboxResponse:
    if method not in ("GET", "HEAD"):
        return _not_allowed("GET, HEAD")
    if rest == "":
        return _html(200, pages.inbox(sandbox.messages(), base))
    if rest.startswith("messages/"):
        message = sandbox.message(unquote(rest[len("messages/") :]))
        if message is None:
            return _html(404, pages.not_found(base))
        return _html(200, pages.message_page(message, base))
    if rest == "contacts":
        app_ids = [params["appId"]] if params.get("appId") else sandbox.app_ids()
        # A page a browser can show: the first rows of each appId, and how many there are.
        shown = {a: sandbox.contact_records(a, limit=pages.MAX_CONTACT_ROWS) for a in app_ids}
        totals = {a: sandbox.contact_count(a) for a in app_ids}
        return _html(200, pages.contacts_page(shown, base, totals))
    return _html(404, pages.not_found(base))


def _api(
    sandbox: Sandbox, method: str, rest: str, params: dict[str, str], body: bytes
) -> SandboxResponse:
    if rest == "":
        if method != "GET":
            return _not_allowed("GET")
        return json_response(200, {"config": sandbox.config.describe(), "endpoints": API_INDEX})
    if rest == "messages":
        if method == "GET":
            messages = sandbox.messages()
            return json_response(200, {"count": len(messages), "messages": messages})
        if method == "DELETE":
            return json_response(200, {"deleted": sandbox.clear_messages()})
        return _not_allowed("GET, DELETE")
    if rest.startswith("messages/"):
        if method != "GET":
            return _not_allowed("GET")
        message = sandbox.message(unquote(rest[len("messages/") :]))
        if message is None:
            return json_response(404, {"error": "no such message"})
        return json_response(200, message)
    if rest == "contacts":
        return _contacts(sandbox, method, params.get("appId"), params.get("emailAddress"))
    if rest == "contacts/unsubscribe":
        return _unsubscribe(sandbox, method, body)
    if rest == "faults":
        return _faults(sandbox, method, body)
    if rest == "faults/queue":
        if method != "POST":
            return _not_allowed("POST")
        data = _body_json(body)
        kinds = data.get("faults") if isinstance(data, dict) else data
        if not isinstance(kinds, list):
            raise ValueError('expected {"faults": [kind, ...]} or a JSON list of kinds')
        sandbox.queue_faults(kinds)
        return json_response(200, sandbox.faults())
    if rest == "requests":
        if method == "GET":
            entries = sandbox.requests()
            return json_response(200, {"count": len(entries), "requests": entries})
        if method == "DELETE":
            return json_response(200, {"deleted": sandbox.clear_requests()})
        return _not_allowed("GET, DELETE")
    if rest == "reset":
        if method != "POST":
            return _not_allowed("POST")
        sandbox.reset()
        return json_response(200, {"reset": True})
    return json_response(404, {"error": "no such inspection endpoint", "endpoints": API_INDEX})


def _contacts(
    sandbox: Sandbox, method: str, app_id: str | None, email: str | None
) -> SandboxResponse:
    if method == "GET":
        if app_id:
            contacts = sandbox.contact_records(app_id)
            return json_response(
                200, {"appId": app_id, "count": len(contacts), "contacts": contacts}
            )
        apps = {a: sandbox.contact_records(a) for a in sandbox.app_ids()}
        return json_response(200, {"apps": apps})
    if method == "DELETE":
        if email:
            # One contact, deleted "at Sendflare" (as its dashboard would): no API request.
            if not app_id:
                raise ValueError("emailAddress needs an appId")
            return json_response(200, {"deleted": int(sandbox.remove_contact(app_id, email))})
        return json_response(200, {"deleted": sandbox.clear_contacts(app_id or None)})
    return _not_allowed("GET, DELETE")


def _unsubscribe(sandbox: Sandbox, method: str, body: bytes) -> SandboxResponse:
    """``POST /_sandbox/api/contacts/unsubscribe``: what the recipient's unsubscribe link does."""
    if method != "POST":
        return _not_allowed("POST")
    data = _body_json(body)
    if not isinstance(data, dict):
        raise ValueError('expected {"appId": ..., "emailAddress": ...}')
    app_id, email = data.get("appId"), data.get("emailAddress")
    if not isinstance(app_id, str) or not app_id or not isinstance(email, str) or not email:
        raise ValueError('expected {"appId": ..., "emailAddress": ...} (non-empty strings)')
    if not sandbox.unsubscribe(app_id, email):
        return json_response(404, {"error": "no such contact"})
    return json_response(200, {"unsubscribed": True})


def _faults(sandbox: Sandbox, method: str, body: bytes) -> SandboxResponse:
    if method == "GET":
        return json_response(200, sandbox.faults())
    if method == "PUT":
        sandbox.set_faults(FaultSettings.from_dict(_body_json(body)))
        return json_response(200, sandbox.faults())
    if method == "DELETE":
        sandbox.clear_faults()
        return json_response(200, sandbox.faults())
    return _not_allowed("GET, PUT, DELETE")
