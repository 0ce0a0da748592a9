"""Numbers given on the command line, held to the same bounds as the settings.

``--interval inf`` would otherwise pass ``> 0`` and then fail inside ``Event.wait()`` (an
OverflowError) after the first cycle; ``--days 1e10`` inside the date arithmetic of a purge.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from ..exceptions import SendflareConfigurationError
from ..validators import Validator


def check_option(name: str, value: Any, rule: Validator) -> Any:
    """The cleaned ``value`` of option ``name``, or a usage error (exit status 2) naming it."""
    try:
        return rule.require(name, value)
    except SendflareConfigurationError as error:
        raise CommandError(str(error), returncode=2) from None
