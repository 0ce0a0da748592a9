"""Who may talk to the sandbox: loopback Host names, and same-origin state changes.

The sandbox has no real authentication (its API takes any token unless one is configured, and
its inspection endpoints take none), so two browser attacks are refused here, by both front ends:

* **DNS rebinding** (standalone server): a page of ``evil.example`` whose name is made to resolve
  to 127.0.0.1 reaches the sandbox as a "same-origin" site. Its requests carry
  ``Host: evil.example``: only loopback Host names are served unless ``--allow-remote``.
* **Cross-site requests** (both): any page the developer visits can make the browser POST to
  ``http://127.0.0.1:8025/_sandbox/api/reset`` with a form or a ``text/plain`` ``fetch()``,
  without asking anyone. A page cannot send PUT, DELETE or PATCH, a custom header or a JSON body
  to another origin without a CORS preflight, which the sandbox never approves. So a
  state-changing POST must carry the :data:`SAME_ORIGIN_HEADER` or a JSON body, and any
  state-changing request whose ``Origin`` or ``Sec-Fetch-Site`` says it comes from another site
  is refused.

Standard library only: the standalone server runs without Django.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

#: A header a cross-site form cannot send (and a cross-site fetch() cannot without a preflight).
SAME_ORIGIN_HEADER = "X-Sendflare-Sandbox"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Methods a cross-site page can send without a preflight, besides the safe ones.
SIMPLE_METHODS = frozenset({"POST"})
_SAME_SITE_FETCHES = frozenset({"same-origin", "none"})


def is_loopback(host: str) -> bool:
    """Return True when ``host`` (a name or an address, no port) names only this machine."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str | None:
    """The name of a ``Host`` header without its port (``[::1]:8025`` -> ``::1``), or None."""
    try:
        parts = urlsplit(f"//{host_header.strip()}")
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    return parts.hostname or None


def host_refusal(host_header: str | None, *, allow_remote: bool) -> str | None:
    """Why a request with this ``Host`` header is refused (DNS rebinding), or None."""
    if allow_remote or host_header is None:
        # No Host header: an HTTP/1.0 client typing the address; a browser always sends one.
        return None
    name = host_name(host_header)
    if name is None or not is_loopback(name):
        return (
            f"Host {host_header!r} is not a loopback name: the sandbox serves only "
            "localhost, 127.0.0.1 and [::1] (start it with --allow-remote to serve other names)"
        )
    return None


def cross_site_refusal(method: str, headers: Mapping[str, str], host: str | None) -> str | None:
    """Why a request to the inspection endpoints may come from another site, or None.

    ``headers`` are the request's headers (any case); ``host`` its ``Host`` (with port).
    """
    if method.upper() in SAFE_METHODS:
        return None
    lower = {name.lower(): value for name, value in headers.items()}
    fetch_site = lower.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.strip().lower() not in _SAME_SITE_FETCHES:
        return f"a {fetch_site} request (Sec-Fetch-Site) may not change the sandbox"
    origin = lower.get("origin")
    if origin is not None and not _same_origin(origin, host):
        return f"a request from origin {origin!r} may not change the sandbox"
    if method.upper() in SIMPLE_METHODS and not _preflighted(lower):
        return (
            f"a state-changing POST needs a '{SAME_ORIGIN_HEADER}: 1' header or a JSON body "
            "(a cross-site form or text/plain request could send it otherwise)"
        )
    return None


def _same_origin(origin: str, host: str | None) -> bool:
    if host is None:
        return False
    try:
        return urlsplit(origin.strip()).netloc.lower() == host.strip().lower()
    except ValueError:
        return False


def _preflighted(lower_headers: Mapping[str, str]) -> bool:
    """Whether a browser would have asked (CORS preflight) before sending this cross-site."""
    if SAME_ORIGIN_HEADER.lower() in lower_headers:
        return True
    media_type = lower_headers.get("content-type", "").split(";")[0].strip().lower()
    return media_type == "application/json"
