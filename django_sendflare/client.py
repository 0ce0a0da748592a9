"""SendflareClient: the only code that speaks HTTP to the Sendflare / SendKit API.

It owns the pooled session, Bearer auth, timeouts, the response envelope and its error codes,
the rate limiter and retries. It knows nothing of Django's email messages, users or models, and
can be used on its own::

    client = SendflareClient("token", api_url="https://api.sendkit.best")
    client.send(from_email="a@example.com", to="b@example.com", subject="Hi", body="Hello")
    for contact in client.iter_contacts(app_id="123"):
        ...
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
)

from . import __version__
from .bounds import Timeout
from .conf import PROVIDER_URLS, SendflareSettings, get_settings
from .exceptions import (
    SERVICE_ERRORS,
    SendflareAmbiguousError,
    SendflareAPIError,
    SendflareAuthenticationError,
    SendflareBadResponse,
    SendflareConfigurationError,
    SendflareConnectionError,
    SendflareRateLimited,
    SendflareRedirectError,
    SendflareRequestNotSent,
    SendflareServerError,
    SendflareUnencodableText,
    SendflareUnexpectedError,
)
from .ratelimit import RateLimiter, get_rate_limiter
from .redaction import error_text, mask_url
from .retry import MAX_RETRY_AFTER, RetryPolicy
from .transport import RequestProgress, SlotAfterConnectAdapter, before_each_request

logger = logging.getLogger(__name__)

CONTACT_STATUSES = ("Confirmed", "Unsubscribed")
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class APIResponse:
    """A successful answer: the envelope's fields."""

    request_id: str | None
    code: int
    message: str
    data: Any
    status_code: int


@dataclass(frozen=True)
class ContactPage:
    """One page of the contact list. ``total`` is None when the API did not say."""

    contacts: list[dict[str, Any]]
    total: int | None
    request_id: str | None


class _BearerAuth(requests.auth.AuthBase):
    """Adds the token to each request; keeps it out of repr() and stops .netrc from replacing it."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "<BearerAuth ***>"

    def text_of(self, error: BaseException) -> str:
        """The text of ``error`` with URL credentials and this token masked."""
        return error_text(error, self._token)


class SendflareClient:
    """A client for one account of the Sendflare (or SendKit) API. Safe to share between threads.

    ``rate_limiter`` spaces every request (None: no limit); ``retry`` says which failures are
    tried again. :meth:`from_settings` builds one from ``settings.SENDFLARE`` with the process's
    shared limiter for that account.
    """

    def __init__(
        self,
        api_token: str,
        *,
        api_url: str = PROVIDER_URLS["sendflare"],
        app_id: str | None = None,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        rate_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 10,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not api_token:
            raise ValueError("api_token is required")
        self.api_url = api_url.rstrip("/")
        self.app_id = app_id
        # Bounded like SENDFLARE['TIMEOUT']: inf would fail inside every request (OverflowError).
        self.timeout: tuple[float, float] = Timeout().require("SendflareClient timeout", timeout)
        self.rate_limiter = rate_limiter
        self.retry = retry if retry is not None else RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self.session = requests.Session()
        self.session.auth = _BearerAuth(api_token)
        self.session.headers["User-Agent"] = f"django-sendflare/{__version__}"
        self.session.headers["Accept"] = "application/json"
        # requests' own retries stay off (the default): it cannot tell a send that may have
        # been processed from one that was not. The pool holds one connection per worker.
        # Its connections take the rate-limit slot once connected (see transport.py).
        adapter = SlotAfterConnectAdapter(pool_connections=1, pool_maxsize=max_connections)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    @classmethod
    def from_settings(cls, conf: SendflareSettings | None = None) -> SendflareClient:
        """A new client configured by ``settings.SENDFLARE`` (or by ``conf``).

        Raises SendflareConfigurationError naming every invalid key of the settings, or what
        failed while the client was built.
        """
        conf = (conf or get_settings()).require_valid()
        try:
            return cls._build(conf)
        except SendflareConfigurationError:
            raise
        except Exception as error:
            # Building makes no request (a limiter's store is reached on first use): what
            # fails here is the settings (a number the limiter cannot use, say), not the API.
            problem = f"{type(error).__name__}: {error_text(error, conf.api_token)}"
        # Raised outside the except clause, as in _attempt(): nothing is chained to it.
        raise SendflareConfigurationError(
            f"The Sendflare client cannot be built from these settings ({problem}): check "
            "SENDFLARE (and the mailer's OPTIONS)"
        )

    @classmethod
    def _build(cls, conf: SendflareSettings) -> SendflareClient:
        return cls(
            conf.api_token,
            api_url=conf.api_url,
            app_id=conf.app_id,
            timeout=(conf.connect_timeout, conf.read_timeout),
            rate_limiter=get_rate_limiter(conf),
            retry=RetryPolicy(
                max_retries=conf.max_retries,
                max_time=conf.retry_max_time,
                retry_ambiguous=conf.retry_ambiguous_sends,
            ),
            max_connections=max(10, conf.max_concurrent_requests),
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {mask_url(self.api_url)}>"

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def __enter__(self) -> SendflareClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # The API.

    def send(self, *, from_email: str, to: str, subject: str, body: str) -> APIResponse:
        """Send one email to one recipient (``POST /v1/send``).

        Not retried after a failure that may have delivered it (unless ``retry.retry_ambiguous``).
        A failure names the addresses of the request (``error.fields``), so that a refused
        value can be found.
        """
        payload = {"from": from_email, "to": to, "subject": subject, "body": body}
        try:
            return self._request("POST", "/v1/send", json_body=payload, idempotent=False)
        except SendflareAPIError as error:
            error.fields = {"from": from_email, "to": to}
            raise

    def list_contacts(
        self, *, app_id: str | None = None, page: int = 1, page_size: int = MAX_PAGE_SIZE
    ) -> ContactPage:
        """One page of the contacts of ``app_id`` (``GET /v1/contact``)."""
        params = {"appId": self._app_id(app_id), "page": page, "pageSize": page_size}
        response = self._request("GET", "/v1/contact", params=params, idempotent=True)
        return _contact_page(response)

    def iter_contacts(
        self, *, app_id: str | None = None, page_size: int = MAX_PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """Every contact of ``app_id``, page after page.

        Stops after the last page by the API's ``total`` (or ``totalCount``), or at a short or
        empty page when it gives none. A page that fails raises: callers that act on the whole
        list (pruning) must not mistake a failed read for an empty list.
        """
        page = 1
        seen = 0
        previous_first: str | None = None
        while True:
            result = self.list_contacts(app_id=app_id, page=page, page_size=page_size)
            first = result.contacts[0]["emailAddress"] if result.contacts else None
            if first is not None and first == previous_first:
                # An API that ignores `page` would otherwise be read forever.
                raise SendflareBadResponse(
                    f"The Sendflare API returned the same contacts for page {page} as for "
                    f"page {page - 1}",
                    request_id=result.request_id,
                )
            previous_first = first
            yield from result.contacts
            seen += len(result.contacts)
            if not result.contacts or len(result.contacts) < page_size:
                return
            if result.total is not None and seen >= result.total:
                return
            if result.total is not None and page >= math.ceil(result.total / page_size):
                return
            page += 1

    def save_contact(
        self,
        *,
        email: str,
        status: str = "Confirmed",
        data: Mapping[str, Any] | None = None,
        app_id: str | None = None,
    ) -> APIResponse:
        """Create or update a contact (``POST /v1/contact``).

        The API applies ``status`` on create only: an existing contact keeps its status.
        """
        if status not in CONTACT_STATUSES:
            raise ValueError(f"status must be one of {CONTACT_STATUSES}, not {status!r}")
        payload: dict[str, Any] = {
            "appId": self._app_id(app_id),
            "emailAddress": email,
            "status": status,
        }
        if data:
            payload["data"] = dict(data)
        # Create-or-update is idempotent: a retry after an ambiguous failure changes nothing.
        return self._request("POST", "/v1/contact", json_body=payload, idempotent=True)

    def delete_contact(self, *, email: str, app_id: str | None = None) -> APIResponse:
        """Delete a contact (``DELETE /v1/contact``)."""
        params = {"appId": self._app_id(app_id), "emailAddress": email}
        return self._request("DELETE", "/v1/contact", params=params, idempotent=True)

    # Plumbing.

    def _app_id(self, app_id: str | None) -> str:
        app_id = app_id or self.app_id
        if not app_id:
            raise ValueError("an app_id is required for contacts: set SENDFLARE['APP_ID']")
        return app_id

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
        idempotent: bool,
    ) -> APIResponse:
        data = None
        headers = {}
        if json_body is not None:
            data = _encode_json(json_body, method, path)
            headers["Content-Type"] = "application/json; charset=utf-8"
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                # The slot is taken on an open connection, so that requests *arrive* spaced.
                with before_each_request(self._take_slot, self._sent) as progress:
                    return self._attempt(method, path, params, data, headers, progress)
            except SendflareAPIError as error:
                error.request = f"{method} {path}"
                if not self.retry.should_retry(error, attempt=attempt, idempotent=idempotent):
                    raise
                delay = self.retry.delay(error, attempt=attempt)
                if self._clock() + delay - started > self.retry.max_time:
                    logger.warning(
                        "Sendflare %s %s: not retrying, waiting %.1fs would pass the %.0fs "
                        "retry budget: %s",
                        method,
                        path,
                        delay,
                        self.retry.max_time,
                        error,
                    )
                    raise
                if isinstance(error, SendflareRateLimited) and self.rate_limiter is not None:
                    # Every thread of the account slows down, not just this one.
                    self.rate_limiter.pause(delay)
                logger.info(
                    "Sendflare %s %s failed (%s); retry %d of %d in %.2fs",
                    method,
                    path,
                    error,
                    attempt,
                    self.retry.max_retries,
                    delay,
                )
                self._sleep(delay)

    def _take_slot(self) -> None:
        if self.rate_limiter is not None:
            self.rate_limiter.acquire(self._sleep)

    def _sent(self) -> None:
        # Optional: a limiter written before sent() existed need not have it.
        sent = getattr(self.rate_limiter, "sent", None)
        if sent is not None:
            sent()

    def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        data: bytes | None,
        headers: Mapping[str, str],
        progress: RequestProgress,
    ) -> APIResponse:
        started = time.perf_counter()
        failure: SendflareAPIError | None = None
        try:
            # The URL is not held in a local: it may carry credentials, and the frames of a
            # traceback end up in Django's error reports. Redirects are never followed.
            response = self.session.request(
                method,
                self.api_url + path,
                params=params,
                data=data,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            failure = _transport_error(error, progress)
        except Exception as error:  # urllib3 & co.: nothing of theirs reaches the caller raw
            failure = self._unexpected(error, progress)
        if failure is not None:
            # Raised outside the except clause: the third-party exception is not chained to
            # ours, so its frames (whose locals hold the Authorization header) never reach a
            # traceback, a log record or an error report.
            raise failure
        result = parse_envelope(response)
        logger.debug(
            "Sendflare %s %s -> HTTP %s requestId=%s in %.0f ms",
            method,
            path,
            response.status_code,
            result.request_id,
            (time.perf_counter() - started) * 1000,
        )
        return result

    def _unexpected(self, error: Exception, progress: RequestProgress) -> SendflareAPIError:
        """An exception that is not requests' own: "may have been processed" only if it came
        once the request's bytes had started to go out."""
        if progress.may_have_left:
            return SendflareUnexpectedError(
                f"The HTTP request failed unexpectedly ({type(error).__name__})"
            )
        auth = self.session.auth
        text = auth.text_of(error) if isinstance(auth, _BearerAuth) else ""
        return SendflareRequestNotSent(
            f"Nothing was sent: the request failed {_BEFORE_SENDING[progress.stage]} "
            f"({type(error).__name__}: {text})"
        )


#: Where a request that never left failed, by its progress.
_BEFORE_SENDING: dict[str | None, str] = {
    None: "before it was given a connection",
    "connecting": "while its connection was being opened",
    "waiting": "while it waited for its rate-limit slot",
}


def _encode_json(body: Mapping[str, Any], method: str, path: str) -> bytes:
    """The request body as UTF-8 JSON; text with no UTF-8 form raises before any request."""
    # ensure_ascii=False: the body stays as short as the text itself.
    text = json.dumps(body, ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        position = error.start
    raise SendflareUnencodableText(
        f"{method} {path}: the request holds {text[position]!r}, which has no UTF-8 form"
    )


def _transport_error(
    error: requests.RequestException, progress: RequestProgress
) -> SendflareAPIError:
    """Map a requests exception to whether the request can have reached the API.

    The texts name the request as method and path and the cause by its kind: never the
    exception's own text, which can hold the URL (and credentials in it).
    """
    cause = _cause(error)
    if progress.stage is not None and not progress.may_have_left:
        # Our connection failed before writing (a refused or failing proxy, say): whatever
        # requests calls it, the request never left.
        return SendflareConnectionError(f"Could not connect to the Sendflare API ({cause})")
    if isinstance(error, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        # The TLS handshake happens before any byte of the request is sent.
        return SendflareConnectionError(f"Could not connect to the Sendflare API ({cause})")
    if isinstance(error, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return SendflareConnectionError(
            f"The Sendflare API URL is invalid ({cause}): check SENDFLARE['API_URL']"
        )
    if isinstance(error, requests.ReadTimeout):
        return SendflareAmbiguousError(
            "The Sendflare API did not answer in time; the request may have been processed"
        )
    if isinstance(error, requests.ConnectionError):
        reason = error.args[0] if error.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        if isinstance(reason, (NewConnectionError, ConnectTimeoutError)):
            return SendflareConnectionError(f"Could not connect to the Sendflare API ({cause})")
        return SendflareAmbiguousError(
            f"The connection to the Sendflare API broke after the request was "
            f"sent; it may have been processed ({cause})"
        )
    if isinstance(error, ValueError):
        # requests' own ValueErrors (InvalidSchema, InvalidHeader...) are raised while the
        # request is prepared, e.g. for a SOCKS proxy without PySocks.
        return SendflareRequestNotSent(
            f"Nothing was sent: the request could not be prepared ({cause})"
        )
    return SendflareAmbiguousError(f"The Sendflare API request failed ({cause})")


def _cause(error: BaseException) -> str:
    """The kind of a transport failure, e.g. "ConnectionRefusedError: Connection refused".

    Walks the exception's causes down to the operating system's error, whose text names no
    URL; above it only class names are used.
    """
    names = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return f"{type(current).__name__}: {current.strerror}"
        names.append(type(current).__name__)
        inner = getattr(current, "reason", None)
        if not isinstance(inner, BaseException):
            inner = current.args[0] if current.args else None
        if not isinstance(inner, BaseException):
            inner = current.__cause__ or current.__context__
        current = inner
    return names[-1] if names else type(error).__name__


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _describe_body(response: requests.Response) -> str:
    body = response.content
    if not body.strip():
        return "an empty body"
    head = body.lstrip()[:200].lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        title = _TITLE.search(body[:4096])
        if title:
            text = title.group(1).decode("utf-8", "replace").strip()[:100]
            return f"an HTML page ({text!r})"
        return "an HTML page"
    return f"a non-JSON body ({len(body)} bytes)"


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date. None when absent or meaningless.

    A value that is not a finite number (``nan``, ``inf``) is ignored rather than trusted:
    ``nan`` would otherwise become a retry without any wait. One beyond ``MAX_RETRY_AFTER`` (a
    day) counts as that: no clock needs to add ``1e300`` seconds to now.
    """
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return min(max(0.0, seconds), MAX_RETRY_AFTER) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return min(max(0.0, (when - datetime.now(timezone.utc)).total_seconds()), MAX_RETRY_AFTER)


def _redirect_target(response: requests.Response) -> str:
    """Where a redirect points, with any credentials in it masked."""
    location = response.headers.get("Location", "").strip()
    return repr(mask_url(location)) if location else "nowhere (no Location header)"


def parse_envelope(response: requests.Response) -> APIResponse:
    """Turn an HTTP response into an APIResponse, or raise the matching SendflareAPIError.

    A service code the table knows decides the class, whatever the HTTP status (a 403 with
    100048 is a refused sender, not a refused token); without one, the HTTP status does.
    """
    status = response.status_code
    retry_after = _retry_after(response)
    if 300 <= status < 400:
        raise SendflareRedirectError(
            f"The Sendflare API answered HTTP {status}, a redirect to "
            f"{_redirect_target(response)}; redirects are not followed: check "
            "SENDFLARE['API_URL']",
            status_code=status,
        )
    try:
        payload = json.loads(response.content)
    except (ValueError, RecursionError):
        # RecursionError: deeply nested JSON. Either way it is not the envelope.
        payload = None

    code = payload.get("code") if isinstance(payload, dict) else None
    if not isinstance(payload, dict) or not isinstance(code, int) or isinstance(code, bool):
        what = (
            _describe_body(response) if payload is None else "JSON that is not the API's envelope"
        )
        message = f"The Sendflare API answered HTTP {status} with {what}"
        kwargs: dict[str, Any] = {"status_code": status, "retry_after": retry_after}
        if status == 429:
            raise SendflareRateLimited(message, **kwargs)
        if status in (401, 403):
            raise SendflareAuthenticationError(message + ": check SENDFLARE['API_TOKEN']", **kwargs)
        if status >= 500:
            raise SendflareServerError(message, **kwargs)
        raise SendflareBadResponse(message, **kwargs)

    request_id = payload.get("requestId")
    request_id = str(request_id) if request_id is not None else None
    api_message = payload.get("message")
    message = str(api_message) if api_message is not None else ""
    if code == 0 and status < 400 and payload.get("success") is not False:
        return APIResponse(request_id, code, message, payload.get("data"), status)

    error_class = SERVICE_ERRORS.get(code)
    if error_class is None:
        if status == 429:
            error_class = SendflareRateLimited
        elif status in (401, 403):
            error_class = SendflareAuthenticationError
        elif status >= 500:
            error_class = SendflareServerError
        else:
            error_class = SendflareAPIError
    raise error_class(
        message or f"The Sendflare API refused the request (HTTP {status})",
        code=code,
        request_id=request_id,
        status_code=status,
        retry_after=retry_after,
    )


def _contact_page(response: APIResponse) -> ContactPage:
    """Read one page of the list in any shape the documents or the official SDKs show.

    The list is ``data.list`` (the document) or ``data`` itself (the Go and C# SDKs' models);
    the count is ``data.total`` (the document) or ``data.totalCount`` (every SDK), a number or
    a string of digits. Without a count, :meth:`SendflareClient.iter_contacts` stops at a short
    page.
    """
    data = response.data

    def bad(what: str) -> SendflareBadResponse:
        return SendflareBadResponse(
            f"The Sendflare contact list has an unexpected shape: {what}",
            request_id=response.request_id,
            status_code=response.status_code,
        )

    if isinstance(data, list):
        contacts: Any = data
        total: Any = None
    elif isinstance(data, dict):
        contacts = data.get("list")
        if contacts is None:
            contacts = []
        total = data.get("total")
        if total is None:
            total = data.get("totalCount")
    else:
        raise bad("data is neither an object nor a list")
    if not isinstance(contacts, list) or not all(
        isinstance(c, dict) and isinstance(c.get("emailAddress"), str) for c in contacts
    ):
        raise bad("list is not a list of contacts with an emailAddress")
    if total is not None:
        total = _count(total)
        if total is None:
            raise bad(f"total is {data.get('total', data.get('totalCount'))!r}")
    return ContactPage(contacts=contacts, total=total, request_id=response.request_id)


def _count(value: Any) -> int | None:
    """A count given as a number or as a string of digits; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdecimal() and value.strip().isascii():
        return int(value.strip())
    return None


_clients: dict[tuple[Any, ...], SendflareClient] = {}
_clients_lock = threading.Lock()


def get_client(conf: SendflareSettings | None = None) -> SendflareClient:
    """The process's shared client for the account of ``conf`` (default: settings.SENDFLARE).

    Sharing it shares the connection pool; the rate limiter is shared per account anyway.
    """
    conf = (conf or get_settings()).require_valid()
    with _clients_lock:
        client = _clients.get(_client_key(conf))
        if client is None:
            client = SendflareClient.from_settings(conf)
            _clients[_client_key(conf)] = client
        return client


def _client_key(conf: SendflareSettings) -> tuple[Any, ...]:
    return (
        conf.account_key,
        conf.app_id,
        conf.connect_timeout,
        conf.read_timeout,
        conf.rate_limit,
        conf.rate_limiter,
        repr(sorted(conf.rate_limiter_options.items())),
        conf.max_retries,
        conf.retry_max_time,
        conf.retry_ambiguous_sends,
        conf.max_concurrent_requests,
    )
