"""The app's configuration: system checks and the contact receivers."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SendflareConfig(AppConfig):
    name = "django_sendflare"
    verbose_name = _("Sendflare")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
        from .contacts.receivers import connect_receivers

        connect_receivers()
