"""The Django front end: thin views that hand requests to the process-wide sandbox.

A Django view cannot drop its connection, so the two connection faults degrade: ``reset`` and
``lost_response`` answer HTTP 502 with a plain-text body (no envelope) and ``X-Sandbox-Fault``.
``lost_response`` still records the message first, so a client that retries sends twice, as it
would against the real service. Use the standalone server to get real connection drops.

Both views answer 404 unless :func:`~.mounted.serving_allowed` (DEBUG on, or
``SENDFLARE_SANDBOX["SERVE_WITHOUT_DEBUG"]``), and the inspection views refuse state changes that
may come from another site (:mod:`.guard`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from django_sendflare.sandbox import envelope as env
from django_sendflare.sandbox.engine import SandboxRequest, SandboxResponse, json_response
from django_sendflare.sandbox.guard import cross_site_refusal
from django_sendflare.sandbox.inspection import handle_inspection
from django_sendflare.sandbox.mounted import get_default_sandbox, serving_allowed

View = Callable[..., HttpResponse]


def development_only(view: View) -> View:
    """Answer 404, as if not mounted, unless the sandbox may be served (DEBUG, or the setting)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not serving_allowed():
            raise Http404("The Sendflare sandbox answers only when DEBUG is on.")
        return view(request, *args, **kwargs)

    return wrapper


def _to_django(response: SandboxResponse) -> HttpResponse:
    if response.delay:
        time.sleep(response.delay)
    if response.drop:
        response = SandboxResponse(
            status=502,
            body=f"connection dropped ({response.fault}; emulated by the mounted sandbox)".encode(),
            headers={
                "Content-Type": "text/plain; charset=utf-8",
                "X-Sandbox-Fault": response.fault or "",
            },
        )
    django_response = HttpResponse(response.body, status=response.status)
    for name, value in response.headers.items():
        django_response[name] = value
    return django_response


def _body(request: HttpRequest) -> bytes | None:
    try:
        return request.body
    except RequestDataTooBig:
        return None


@csrf_exempt  # an API authenticated by a Bearer token, not by a session cookie
@development_only
def api(request: HttpRequest, route: str) -> HttpResponse:
    """``/v1/send`` and ``/v1/contact``."""
    body = _body(request)
    if body is None:
        # Django refused to read it (DATA_UPLOAD_MAX_MEMORY_SIZE) before the sandbox could.
        return _to_django(
            json_response(
                413,
                env.envelope(
                    env.TOO_LARGE,
                    request_id=env.new_request_id(),
                    detail="larger than DATA_UPLOAD_MAX_MEMORY_SIZE",
                ),
            )
        )
    sandbox_request = SandboxRequest(
        method=request.method or "GET",
        path=route,
        query=request.META.get("QUERY_STRING", ""),
        headers=dict(request.headers),
        body=body,
    )
    return _to_django(get_default_sandbox().handle(sandbox_request))


# Test code calls the JSON API without Django's CSRF cookie; guard.cross_site_refusal() stands in.
@csrf_exempt
@development_only
def inspect(request: HttpRequest, rest: str = "") -> HttpResponse:
    """The inspection pages and JSON API under ``_sandbox/``."""
    refusal = cross_site_refusal(request.method or "GET", dict(request.headers), request.get_host())
    if refusal is not None:
        return _to_django(json_response(403, {"error": refusal}))
    response = handle_inspection(
        get_default_sandbox(),
        request.method or "GET",
        rest,
        request.META.get("QUERY_STRING", ""),
        _body(request) or b"",
        reverse("sendflare_sandbox:inbox"),
    )
    return _to_django(response)
