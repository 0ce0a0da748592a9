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
        """Rebuild the sandbox when SENDFLARE_SANDBOX changes; register the production check."""
        from django_sendflare.sandbox import checks, mounted  # noqa: F401 - checks registers

        mounted.connect_signals()
