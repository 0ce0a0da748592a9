"""A django-health-check (4.x) plugin: the health rules of ``sendflare_status``.

Needs the ``health`` extra (``pip install "django-sendflare[health]"``). List it among the checks
of the library's view, as its own plugins are::

    from health_check.views import HealthCheckView

    path("health/", HealthCheckView.as_view(checks=[
        "health_check.checks.Database",
        "django_sendflare.health.Sendflare",
    ]))

The check fails (``ServiceUnavailable``, so the view answers 500) when
:func:`django_sendflare.status.collect` finds a problem: a due message waits longer than
``MAIL_MAX_DUE_AGE``, an account is held, or the shared limiter is unreachable. Its text names
the problems, never a secret.
"""

from __future__ import annotations

import dataclasses

from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from . import status
from .exceptions import SendflareConfigurationError


@dataclasses.dataclass
class Sendflare(HealthCheck):
    """Mail flowing: no stalled due mail, no held account, a reachable shared limiter."""

    def run(self) -> None:
        # Synchronous: the view runs it in a thread, as it does its Database check.
        try:
            found = status.collect()
        except SendflareConfigurationError as error:
            raise ServiceUnavailable(f"Sendflare settings are invalid: {error}") from None
        if found.problems:
            raise ServiceUnavailable("; ".join(p.text for p in found.problems))
