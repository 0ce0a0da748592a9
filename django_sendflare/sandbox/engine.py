"""The sandbox engine: turns one API request into one decision, with no HTTP server involved.

Both front ends (the Django views and the standalone server) hand it a :class:`SandboxRequest` and
carry out the :class:`SandboxResponse`: wait ``delay`` seconds, then either drop the connection
(``drop``) or answer with ``status``, ``headers`` and ``body``. Order of checks for an API request:
route, injected fault, token, rate limit, injected account state, size, JSON, fields, injected
invalid sending domain, sender allow-list, daily quota.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

from django_sendflare.sandbox import envelope as env
from django_sendflare.sandbox.exchange import (
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_RATE_LIMIT,
    SandboxConfig,
    SandboxRequest,
    SandboxResponse,
    json_response,
)
from django_sendflare.sandbox.faults import (
    DROP_KINDS,
    UNPROCESSED_KINDS,
)
from django_sendflare.sandbox.state import SandboxState
from django_sendflare.sandbox.store import Contact, LogEntry, Message, contact_key
from django_sendflare.sandbox.validation import (
    DEFAULT_CONTACT_STATUS,
    ContactPayload,
    InvalidRequest,
    parse_contact,
    parse_delete_query,
    parse_json_object,
    parse_list_query,
    parse_send,
)

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_RATE_LIMIT",
    "Sandbox",
    "SandboxConfig",
    "SandboxRequest",
    "SandboxResponse",
    "json_response",
]

logger = logging.getLogger(__name__)

#: The documented endpoints and their methods.
API_ROUTES: dict[str, tuple[str, ...]] = {
    "/v1/send": ("POST",),
    "/v1/contact": ("GET", "POST", "DELETE"),
}

#: HTTP status of each service error (a guess: the documents give none; see docs/sandbox.rst).
ERROR_STATUS: dict[int, int] = {
    env.BAD_PARAMETERS: 400,
    env.TOO_LARGE: 413,
    env.INVALID_SIGNATURE: 401,
    env.INVALID_SENDING_DOMAIN: 403,
    env.UNKNOWN_SENDER: 403,
    env.DAILY_QUOTA: 403,
    env.SUBSCRIPTION_EXPIRED: 403,
    env.NOT_ACTIVATED: 403,
}

#: The code each injected account state answers with, and whether it refuses sends only.
ACCOUNT_STATE_CODES: dict[str, tuple[int, bool]] = {
    "invalid_signature": (env.INVALID_SIGNATURE, False),
    "daily_limit_reached": (env.DAILY_QUOTA, True),
    "subscription_expired": (env.SUBSCRIPTION_EXPIRED, False),
    "not_activated": (env.NOT_ACTIVATED, False),
}


def _token_hint(token: str) -> str:
    # Enough to tell tokens apart in the inbox without printing a whole credential.
    return "..." + token[-4:] if len(token) > 4 else "..."


_FAULT_PAGES = {
    "500": (500, {"error": "Internal Server Error"}),
    "502": (502, {"error": "Bad Gateway"}),
    "503": (503, {"error": "Service Unavailable"}),
}
_HTML_ERROR_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>sandbox-proxy</center>"
    b"</body></html>\n"
)


class Sandbox(SandboxState):
    """One emulated service: configuration, state, limiter and fault plan, behind one lock.

    The inspection methods (messages, contacts, faults, reset...) come from
    ``state.SandboxState``.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` drives the rate limiter, ``wall_clock`` the daily quota (both injectable)."""
        self.config = config or SandboxConfig()
        super().__init__(self.config.faults, self.config.rate_limit, wall_clock)
        self._clock = clock
        self._allowed = frozenset(sender.lower() for sender in self.config.allowed_senders)

    # -- the API ----------------------------------------------------------------------------

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer one API request (``/v1/...``)."""
        request_id = env.new_request_id()
        methods = API_ROUTES.get(request.path)
        with self._lock:
            if methods is None:
                response = self._error(env.BAD_PARAMETERS, request_id, "no such endpoint", 404)
                kind = None
                delay = 0.0
            elif request.method not in methods:
                response = self._error(env.BAD_PARAMETERS, request_id, "method not allowed", 405)
                response.headers["Allow"] = ", ".join(methods)
                kind = None
                delay = 0.0
            else:
                decision = self._faults.next()
                kind, delay = decision.kind, decision.delay
                if kind in UNPROCESSED_KINDS:
                    response = self._fault_response(kind, request_id)
                else:
                    response = self._process(request, request_id)
            response.delay = delay
            response.fault = kind
            response.drop = kind in DROP_KINDS
            if kind is not None:
                response.headers["X-Sandbox-Fault"] = kind
            self._log(request, response, request_id)
        logger.info(
            "%s %s -> %s%s",
            request.method,
            request.path,
            "dropped" if response.drop else response.status,
            f" (fault: {kind})" if kind else "",
        )
        return response

    def _process(self, request: SandboxRequest, request_id: str) -> SandboxResponse:
        token = self._bearer_token(request)
        if token is None:
            response = self._error(
                env.INVALID_SIGNATURE, request_id, "missing or invalid Bearer token", 401
            )
            response.headers["WWW-Authenticate"] = 'Bearer realm="sendflare-sandbox"'
            return response
        retry_after = self._limiter.acquire(token, self._clock())
        if retry_after:
            response = self._error(env.RATE_LIMITED, request_id, "", 429)
            response.headers["Retry-After"] = str(retry_after)
            return response
        refusal = ACCOUNT_STATE_CODES.get(self._faults.settings.account)
        if refusal is not None and (request.path == "/v1/send" or not refusal[1]):
            return self._error(refusal[0], request_id, "injected account state")
        try:
            data = self._execute(request, token, request_id)
        except InvalidRequest as exc:
            return self._error(exc.code, request_id, exc.detail)
        response = json_response(200, env.envelope(env.SUCCESS, request_id=request_id, data=data))
        response.code = env.SUCCESS
        return response

    def _bearer_token(self, request: SandboxRequest) -> str | None:
        scheme, _, token = request.header("Authorization").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        expected = self.config.token
        if expected is not None and not hmac.compare_digest(token.encode(), expected.encode()):
            return None
        return token

    def _execute(self, request: SandboxRequest, token: str, request_id: str) -> Any:
        if request.path == "/v1/send":
            self._send(request, token, request_id)
            return None
        if request.method == "GET":
            return self._list_contacts(request.query)
        if request.method == "POST":
            self._save_contact(parse_contact(parse_json_object(request.body)))
            return None
        self._delete_contact(request.query)
        return None

    def _send(self, request: SandboxRequest, token: str, request_id: str) -> None:
        if len(request.body) > self.config.max_message_size:
            raise InvalidRequest(
                f"the request is {len(request.body)} bytes; the limit is "
                f"{self.config.max_message_size}",
                env.TOO_LARGE,
            )
        message = parse_send(parse_json_object(request.body))
        domain = message.sender.rpartition("@")[2].lower()
        if domain in self._faults.settings.invalid_sending_domains:
            raise InvalidRequest(
                f"{domain} is not a sending domain of this account", env.INVALID_SENDING_DOMAIN
            )
        if self._allowed and message.sender.lower() not in self._allowed:
            raise InvalidRequest(
                f"{message.sender} is not a sender of this account", env.UNKNOWN_SENDER
            )
        day_key = (token, self._today())
        if self.config.daily_quota and (
            self._store.sends_per_day.get(day_key, 0) >= self.config.daily_quota
        ):
            raise InvalidRequest(f"{self.config.daily_quota} emails per day", env.DAILY_QUOTA)
        self._store.sends_per_day[day_key] = self._store.sends_per_day.get(day_key, 0) + 1
        self._store.add_message(
            Message(
                request_id=request_id,
                sender=message.sender,
                to=message.to,
                subject=message.subject,
                body=message.body,
                ts=int(self._wall_clock() * 1000),
                token_hint=_token_hint(token),
                lists=message.lists,
            )
        )

    def _list_contacts(self, query: str) -> dict[str, Any]:
        params = parse_list_query(query)
        book = self._store.contacts.get(params.app_id)
        total = len(book) if book is not None else 0
        start = (params.page - 1) * params.page_size
        page = book.page(start, params.page_size) if book is not None else []
        return {
            "total": total,
            # The document says "total"; the providers' SDKs read "totalCount". Send both.
            "totalCount": total,
            "page": params.page,
            "pageSize": params.page_size,
            "list": [contact.to_api() for contact in page],
        }

    def _save_contact(self, payload: ContactPayload) -> None:
        book = self._store.book(payload.app_id)
        key = contact_key(payload.email)
        today = self._today()
        existing = book.get(key)
        if existing is None:
            book.add(
                key,
                Contact(
                    email=payload.email,
                    status=payload.status or DEFAULT_CONTACT_STATUS,
                    register_date=today,
                    last_active_time=today,
                    data=dict(payload.data),
                    status_defaulted=payload.status is None,
                ),
            )
            return
        # appId, emailAddress and status take effect on create only: an update merges data.
        existing.data.update(payload.data)
        existing.last_active_time = today

    def _delete_contact(self, query: str) -> None:
        params = parse_delete_query(query)
        # Deleting a contact that does not exist succeeds: a retried delete must not fail.
        self._store.remove(params.app_id, params.email)

    def _error(
        self, code: int, request_id: str, detail: str, status: int | None = None
    ) -> SandboxResponse:
        if status is None:
            status = 200 if self.config.errors_as_http_200 else ERROR_STATUS.get(code, 400)
        response = json_response(status, env.envelope(code, request_id=request_id, detail=detail))
        response.code = code
        return response

    def _fault_response(self, kind: str | None, request_id: str) -> SandboxResponse:
        if kind == "429":
            response = self._error(env.RATE_LIMITED, request_id, "", 429)
            response.headers["Retry-After"] = "1"
            return response
        if kind == "html":
            return SandboxResponse(
                status=502,
                body=_HTML_ERROR_PAGE,
                headers={"Content-Type": "text/html; charset=utf-8"},
            )
        if kind in _FAULT_PAGES:
            status, body = _FAULT_PAGES[kind]
            headers = {"Retry-After": "1"} if status == 503 else {}
            return json_response(status, body, headers)
        # "reset": nothing is sent; the front end drops the connection.
        return SandboxResponse(status=0)

    def _log(self, request: SandboxRequest, response: SandboxResponse, request_id: str) -> None:
        token = self._bearer_token_unchecked(request)
        self._store.add_log(
            LogEntry(
                seq=self._store.take_seq(),
                ts=int(self._wall_clock() * 1000),
                method=request.method,
                path=request.path,
                query=request.query,
                status=response.status or None,
                code=response.code,
                fault=response.fault,
                request_id=request_id if response.status else None,
                token_hint=_token_hint(token) if token else "",
            )
        )

    @staticmethod
    def _bearer_token_unchecked(request: SandboxRequest) -> str:
        _, _, token = request.header("Authorization").strip().partition(" ")
        return token.strip()
