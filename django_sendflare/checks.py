"""System checks: ``manage.py check`` reports every problem of ``settings.SENDFLARE``."""

from __future__ import annotations

from typing import Any

from django.core import checks

from .conf import raw_settings, validate
from .exceptions import SendflareConfigurationError


@checks.register(checks.Tags.compatibility, "sendflare")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report a missing token, a malformed or insecure API_URL, bad numbers and unknown keys."""
    try:
        raw = raw_settings()
    except SendflareConfigurationError as error:
        return [checks.Error(str(error), id="sendflare.E000")]
    messages: list[checks.CheckMessage] = []
    for problem in validate(raw):
        level = checks.Error if problem.level == "error" else checks.Warning
        messages.append(level(problem.msg, hint=problem.hint, id=problem.id))
    return messages
