"""System checks of the sandbox: its setting, and ``check --deploy`` with ``DEBUG`` off.

Registered by the sandbox's app and by ``django_sendflare``'s (mounting the URLs is enough to
expose the sandbox, with or without its app installed).

* ``sendflare.E010``: ``SENDFLARE_SANDBOX`` is invalid (otherwise found at the first request).

* ``sendflare.W010``: installed or mounted with DEBUG off; its views answer 404, but it is a
  development tool that has no place in production settings.
* ``sendflare.W011``: the same, and ``SENDFLARE_SANDBOX["SERVE_WITHOUT_DEBUG"]`` makes it answer:
  anyone who reaches the site reads every message. Silence it on purpose (a staging host behind a
  login) with ``SILENCED_SYSTEM_CHECKS = ["sendflare.W011"]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern, URLResolver, get_resolver

from django_sendflare.sandbox.mounted import (
    SERVE_WITHOUT_DEBUG,
    SETTING_NAME,
    config_from_mapping,
    serving_allowed,
)

APP = "django_sendflare.sandbox"
URLCONF = "django_sendflare.sandbox.urls"
VIEWS = "django_sendflare.sandbox.views"


@checks.register(checks.Tags.compatibility, "sendflare")
def check_sandbox_setting(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report an invalid SENDFLARE_SANDBOX now rather than at the sandbox's first request."""
    options = getattr(settings, SETTING_NAME, None)
    if options is None:
        return []
    try:
        serving_allowed()
        config_from_mapping(options)
    except ImproperlyConfigured as error:
        return [
            checks.Error(
                str(error),
                hint="See the SENDFLARE_SANDBOX keys in the settings reference.",
                id="sendflare.E010",
            )
        ]
    return []


@checks.register(checks.Tags.security, deploy=True)
def check_sandbox_exposure(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warn when the sandbox is installed or mounted while DEBUG is off."""
    if settings.DEBUG:
        return []
    where = []
    if apps.is_installed(APP):
        where.append(f"installed ({APP!r} in INSTALLED_APPS)")
    prefixes = mounted_at()
    if prefixes:
        where.append(f"mounted at {', '.join(prefixes)}")
    if not where:
        return []
    found = f"The Sendflare sandbox is {' and '.join(where)} with DEBUG off"
    try:
        served = serving_allowed()
    except ImproperlyConfigured:
        served = False  # a malformed SENDFLARE_SANDBOX: the views fail, nothing is shown
    if served:
        return [
            checks.Warning(
                f"{found}, and {SETTING_NAME}[{SERVE_WITHOUT_DEBUG!r}] makes it answer: anyone "
                "who reaches this site reads every message it received, changes its faults, "
                "and its API accepts any token unless TOKEN is set.",
                hint="Serve it only on a staging host behind a login or a private network, "
                "and silence this warning there (SILENCED_SYSTEM_CHECKS); never in production.",
                id="sendflare.W011",
            )
        ]
    return [
        checks.Warning(
            f"{found}. Its views answer 404 with DEBUG off, but it is a development tool.",
            hint=f"Remove {APP!r} from INSTALLED_APPS and include('{URLCONF}') from the "
            "URLconf of your production settings (e.g. mount it only `if settings.DEBUG`).",
            id="sendflare.W010",
        )
    ]


def mounted_at() -> list[str]:
    """The URL prefixes under which the root URLconf serves the sandbox, e.g. ``["/sandbox/"]``.

    Empty when the URLconf cannot be loaded (Django's own checks report that).
    """
    try:
        patterns = get_resolver().url_patterns
    except Exception:
        return []
    return [f"/{prefix}" for prefix in _find(patterns, "")]


def _find(patterns: Iterable[Any], prefix: str) -> list[str]:
    found = []
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            module = entry.urlconf_name
            if getattr(module, "__name__", module) == URLCONF:
                found.append(route)
            else:
                found.extend(_find(entry.url_patterns, route))
        elif isinstance(entry, URLPattern) and getattr(entry.callback, "__module__", "") == VIEWS:
            found.append(route)  # a sandbox view mounted on its own
    return found
