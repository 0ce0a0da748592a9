"""The one hook through which delivery reports what happened, for the metrics.

Call sites are one line each (a recipient's outcome in :mod:`django_sendflare.mail.delivery`);
without prometheus-client (the ``metrics`` extra) every function here does nothing.
"""

from __future__ import annotations

from typing import Any


def _counter(name: str, text: str, labels: tuple[str, ...]) -> Any:
    try:
        from prometheus_client import Counter
    except ImportError:  # the metrics extra is not installed: nothing is counted
        return None
    return Counter(name, text, labels)


RECIPIENTS = _counter(
    "sendflare_recipients", "Queued recipients by the outcome of a delivery attempt.", ("outcome",)
)


def recipient(outcome: str) -> None:
    """A queued recipient's attempt ended: sent, failed, unknown, retry or held."""
    if RECIPIENTS is not None:
        RECIPIENTS.labels(outcome).inc()
