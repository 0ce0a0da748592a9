"""A django-health-check view with the Sendflare plugin, as a project would mount it."""

from django.urls import path
from health_check.views import HealthCheckView

urlpatterns = [
    path("health/", HealthCheckView.as_view(checks=["django_sendflare.health.Sendflare"])),
]
