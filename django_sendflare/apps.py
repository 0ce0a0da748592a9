"""The app's configuration: system checks, the contact receivers, the delivery tasks."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from . import task_hooks


class SendflareConfig(AppConfig):
    name = "django_sendflare"
    verbose_name = _("Sendflare")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported here, not at the top: these modules import the models, which exist only once
        # the app registry is ready.
        from . import checks, tasks  # noqa: F401 - checks: registers the system checks
        from .contacts.receivers import connect_receivers

        connect_receivers()
        task_hooks.install(
            {
                task_hooks.MAIL: tasks.deliver_queued_mail,
                task_hooks.CONTACTS: tasks.deliver_contact_changes,
            },
            tasks.UNAVAILABLE,
        )
