"""Django application config for the mounted sandbox."""

from __future__ import annotations

from django.apps import AppConfig


class SendflareSandboxAppConfig(AppConfig):
    """The sandbox app: views and URLs only, no models (its state lives in memory)."""

    name = "django_sendflare.sandbox"
    # A distinct label: "sandbox" is a common app name in users' projects.
    label = "sendflare_sandbox"
    verbose_name = "Sendflare sandbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Rebuild the default sandbox whenever SENDFLARE_SANDBOX changes (e.g. in tests)."""
        from django_sendflare.sandbox import mounted

        mounted.connect_signals()
