"""Prometheus metrics: the queue's gauges, read at scrape time, and the delivery counters.

Needs the ``metrics`` extra (``pip install "django-sendflare[metrics]"``). Register the
collector once (in an ``AppConfig.ready()``, or your urls module)::

    from prometheus_client import REGISTRY
    from django_sendflare.metrics import QueueCollector

    REGISTRY.register(QueueCollector())

With django-prometheus its ``/metrics`` view then includes them; without it, mount
:func:`metrics_view`. The gauges cost two indexed queries per scrape
(:func:`django_sendflare.status.queue_depth`), nothing per request.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from . import observe  # noqa: F401 - registers the counters on the default registry
from .status import queue_depth


class QueueCollector(Collector):
    """``sendflare_queue_depth`` (recipients queued or in flight) and
    ``sendflare_oldest_due_age_seconds`` (0 when nothing is due)."""

    def collect(self) -> Iterator[Metric]:
        depth, oldest = queue_depth()
        yield GaugeMetricFamily(
            "sendflare_queue_depth", "Queued recipients waiting or in flight.", value=depth
        )
        yield GaugeMetricFamily(
            "sendflare_oldest_due_age_seconds",
            "Seconds the oldest due queued message has waited (0: none is due).",
            value=oldest or 0.0,
        )


def metrics_view(request: HttpRequest, registry: CollectorRegistry = REGISTRY) -> HttpResponse:
    """A plain ``/metrics`` view (without django-prometheus); protect it as any internal URL."""
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
