"""The sandbox engine: turns one API request into one decision, with no HTTP server involved.

Both front ends (the Django views and the standalone server) hand it a :class:`SandboxRequest` and
carry out the :class:`SandboxResponse`: wait ``delay`` seconds, then either drop the connection
(``drop``) or answer with ``status``, ``headers`` and ``body``. Order of checks for an API request:
route, injected fault, token, rate limit, injected account state, size, JSON, fields, injected
invalid sending domain, sender allow-list, daily quota.
"""

from __future__ import annotations

import copy
import datetime
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django_sendflare.sandbox import envelope as env
from django_sendflare.sandbox.faults import (
    DROP_KINDS,
    UNPROCESSED_KINDS,
    FaultPlan,
    FaultSettings,
)
from django_sendflare.sandbox.ratelimit import SlidingWindowLimiter
from django_sendflare.sandbox.store import Contact, LogEntry, Message, Store, contact_key
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

logger = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_SIZE = 10 * 1024 * 1024
DEFAULT_RATE_LIMIT = 5

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


@dataclass
class SandboxConfig:
    """Everything fixed at start; faults can also be changed at run time."""

    #: The only Bearer token accepted; None accepts any non-empty token.
    token: str | None = None
    #: Accepted requests per second per token, all endpoints together; 0 turns the limit off.
    rate_limit: int = DEFAULT_RATE_LIMIT
    #: Largest ``POST /v1/send`` request body, in bytes, before code 100023.
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: Sender addresses accepted by ``/v1/send`` (case-insensitive); empty accepts any sender.
    allowed_senders: tuple[str, ...] = ()
    #: Accepted sends per token per UTC day before code 100031; 0 turns the quota off.
    daily_quota: int = 0
    #: Answer service errors with HTTP 200 (envelope only) instead of 4xx.
    errors_as_http_200: bool = False
    #: Faults injected from the start (and restored by a reset).
    faults: FaultSettings = field(default_factory=FaultSettings)

    def __post_init__(self) -> None:
        """Validate, raising ValueError with a readable message."""
        if self.token is not None and not self.token.strip():
            raise ValueError("token must be non-empty (or None to accept any token)")
        for name in ("rate_limit", "max_message_size", "daily_quota"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0")
        self.allowed_senders = tuple(self.allowed_senders)

    def describe(self) -> dict[str, Any]:
        """Return a JSON summary (the token itself is not shown)."""
        return {
            "tokenRequired": self.token is not None,
            "rateLimit": self.rate_limit,
            "maxMessageSize": self.max_message_size,
            "allowedSenders": list(self.allowed_senders),
            "dailyQuota": self.daily_quota,
            "errorsAsHttp200": self.errors_as_http_200,
        }


@dataclass(frozen=True)
class SandboxRequest:
    """One HTTP request, as a front end received it (``path`` without any mount prefix)."""

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str:
        """Return a header value (case-insensitive name), or ``""``."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return ""


@dataclass
class SandboxResponse:
    """What a front end must do: wait ``delay``, then drop the connection or answer."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    fault: str | None = None
    #: The envelope's code, when the body is an envelope.
    code: int | None = None

    def json(self) -> Any:
        """Decode the body as JSON (for tests and the Django front end)."""
        return json.loads(self.body.decode("utf-8"))


def json_response(
    status: int, value: Any, headers: dict[str, str] | None = None
) -> SandboxResponse:
    """Build a JSON response."""
    return SandboxResponse(
        status=status,
        body=env.to_json_bytes(value),
        headers={
            "Content-Type": "application/json; charset=utf-8",
            # Stored text comes back in these bodies: no browser may take one for a page.
            "X-Content-Type-Options": "nosniff",
            **(headers or {}),
        },
    )


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


class Sandbox:
    """One emulated service: configuration, state, limiter and fault plan, behind one lock."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` drives the rate limiter, ``wall_clock`` the daily quota (both injectable)."""
        self.config = config or SandboxConfig()
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.RLock()
        self._store = Store()
        self._limiter = SlidingWindowLimiter(self.config.rate_limit)
        self._faults = FaultPlan(self.config.faults)
        # Keep the seed picked at start (when none was given), so that a reset replays the run.
        self._start_faults = copy.deepcopy(self._faults.settings)
        self._allowed = frozenset(sender.lower() for sender in self.config.allowed_senders)
        self._day = ""

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

    def _today(self) -> str:
        now = datetime.datetime.fromtimestamp(self._wall_clock(), tz=datetime.timezone.utc)
        day = now.date().isoformat()
        # One string per day, shared by every contact saved that day (a million contacts would
        # otherwise hold two million copies of it).
        if day != self._day:
            self._day = day
        return self._day

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

    # -- inspection (thread-safe snapshots) -------------------------------------------------

    def messages(self) -> list[dict[str, Any]]:
        """Every accepted message, oldest first."""
        with self._lock:
            return [message.to_dict() for message in self._store.messages]

    def message(self, message_id: str) -> dict[str, Any] | None:
        """One message by its id (the requestId of its send), or None."""
        with self._lock:
            for message in self._store.messages:
                if message.request_id == message_id:
                    return message.to_dict()
        return None

    def contacts(self, app_id: str) -> list[dict[str, Any]]:
        """The contacts of one appId, in creation order, as the list endpoint shows them."""
        with self._lock:
            return [c.to_api() for c in self._store.contacts.get(app_id, ())]

    def contact_records(self, app_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        """:meth:`contacts` (the first ``limit`` only, if given), each with ``statusDefaulted``
        (created without a status)."""
        with self._lock:
            book = self._store.contacts.get(app_id)
            if book is None:
                return []
            chosen = book if limit is None else book.page(0, limit)
            return [c.to_inspection() for c in chosen]

    def contact_count(self, app_id: str) -> int:
        """How many contacts one appId has."""
        with self._lock:
            return len(self._store.contacts.get(app_id, ()))

    def app_ids(self) -> list[str]:
        """Every appId that has (or had) contacts."""
        with self._lock:
            return list(self._store.contacts)

    def requests(self) -> list[dict[str, Any]]:
        """The log of API requests, oldest first."""
        with self._lock:
            return [entry.to_dict() for entry in self._store.log]

    def faults(self) -> dict[str, Any]:
        """The fault settings in force, with what is left of the queue."""
        with self._lock:
            return self._faults.to_dict()

    def set_faults(self, settings: FaultSettings) -> None:
        """Replace the fault plan (the generators restart from the seed)."""
        with self._lock:
            self._faults = FaultPlan(copy.deepcopy(settings))

    def queue_faults(self, kinds: list[str]) -> None:
        """Append kinds (or ``"ok"``) to the fault queue."""
        with self._lock:
            self._faults.queue_faults(kinds)

    def clear_faults(self) -> None:
        """No faults and no latency from now on."""
        self.set_faults(FaultSettings(seed=self._faults.seed))

    def clear_messages(self) -> int:
        """Forget every message; return how many there were."""
        with self._lock:
            count = len(self._store.messages)
            self._store.clear_messages()
            return count

    def clear_contacts(self, app_id: str | None = None) -> int:
        """Forget the contacts of one appId (or all); return how many there were."""
        with self._lock:
            if app_id is None:
                count = sum(len(c) for c in self._store.contacts.values())
            else:
                count = len(self._store.contacts.get(app_id, ()))
            self._store.clear_contacts(app_id)
            return count

    def unsubscribe(self, app_id: str, email: str) -> bool:
        """Mark a contact Unsubscribed, as its recipient's click on an unsubscribe link would.

        Returns False when the appId has no contact at that address (compared like the API does).
        """
        with self._lock:
            contact = self._store.find(app_id, email)
            if contact is None:
                return False
            contact.status = "Unsubscribed"
            contact.last_active_time = self._today()
            return True

    def remove_contact(self, app_id: str, email: str) -> bool:
        """Delete one contact as someone using Sendflare's own dashboard would (no API request).

        Returns False when the appId has no contact at that address.
        """
        with self._lock:
            return self._store.remove(app_id, email)

    def clear_requests(self) -> int:
        """Forget the request log; return how many entries there were."""
        with self._lock:
            count = len(self._store.log)
            self._store.log.clear()
            return count

    def reset(self) -> None:
        """Back to the state at start: no messages, contacts, counts or windows; start faults."""
        with self._lock:
            self._store.reset()
            self._limiter.reset()
            self._faults = FaultPlan(copy.deepcopy(self._start_faults))
