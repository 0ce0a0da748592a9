"""Admin: Sendflare actions on the user admin, and the outbox of contact changes.

The stock ``UserAdmin`` is re-registered with :class:`SendflareUserAdminMixin` when it is the one
registered for the user model, which needs ``django_sendflare`` *after* ``django.contrib.auth``
in ``INSTALLED_APPS``. A custom user admin adds the mixin itself::

    @admin.register(MyUser)
    class MyUserAdmin(SendflareUserAdminMixin, UserAdmin):
        ...

The actions are thin: the work is done by :mod:`django_sendflare.contacts.services`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import django
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .contacts.adapter import get_adapter
from .contacts.results import Outcome, UserResult
from .contacts.services import (
    MAX_SYNC_USERS,
    contact_addresses,
    delete_user_contacts,
    discard_changes,
    retry_changes,
    sync_users,
)
from .contacts.state import set_do_not_sync
from .exceptions import SendflareConfigurationError
from .models import ContactChange, ContactSyncState

#: "Delete Sendflare contact" calls the API while the admin waits: keep it small. ("Sync to
#: Sendflare" takes any selection: above services.MAX_SYNC_USERS, it is put in the outbox.)
MAX_USERS_PER_ACTION = 100
#: The permission the "Delete Sendflare contact" action needs.
DELETE_CONTACT_PERMISSION = "django_sendflare.delete_sendflare_contact"


if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = object


class SendflareUserAdminMixin(_ModelAdmin):
    """Adds "Sync to Sendflare" and "Delete Sendflare contact" to a user ``ModelAdmin``.

    Sync needs the change permission on users; delete needs
    ``django_sendflare.delete_sendflare_contact``. A user without the permission neither sees
    the action nor can post it.
    """

    sendflare_actions: tuple[str, ...] = ("sync_to_sendflare", "delete_sendflare_contact")
    sendflare_delete_template = "django_sendflare/admin/delete_contact_confirmation.html"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Added to the instance's list, so that Django's own get_actions() filters them by
        # permission (and, on Django 6.1, by location); actions = None still disables all.
        if self.actions is not None:
            own = list(self.actions)
            self.actions = own + [name for name in self.sendflare_actions if name not in own]

    def has_sendflare_delete_contact_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(DELETE_CONTACT_PERMISSION))

    def _sendflare_users(self, request: HttpRequest, queryset: QuerySet[Any]) -> list[Model] | None:
        users = list(queryset[: MAX_USERS_PER_ACTION + 1])
        if len(users) > MAX_USERS_PER_ACTION:
            self.message_user(
                request,
                _(
                    "Select at most %(max)d users for a Sendflare action, or run "
                    "'manage.py sync_contacts'."
                )
                % {"max": MAX_USERS_PER_ACTION},
                messages.ERROR,
            )
            return None
        return users

    @admin.action(permissions=["change"], description=gettext_lazy("Sync to Sendflare"))
    def sync_to_sendflare(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        """Push each selected user's current contact, whatever the recorded state says."""
        users = list(queryset)
        try:
            outcome = sync_users(users)
        except SendflareConfigurationError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        self._report(request, users[: len(outcome.results)], outcome.results, _SYNC_MESSAGES)
        if outcome.queued:
            self.message_user(
                request,
                _(
                    "%(count)d more user(s) were put in the outbox: above %(max)d users, the "
                    "worker (sync_contacts --watch or --pending) pushes them."
                )
                % {"count": outcome.queued, "max": MAX_SYNC_USERS},
                messages.INFO,
            )

    @admin.action(
        permissions=["sendflare_delete_contact"],
        description=gettext_lazy("Delete Sendflare contact"),
    )
    def delete_sendflare_contact(
        self, request: HttpRequest, queryset: QuerySet[Any]
    ) -> TemplateResponse | None:
        users = self._sendflare_users(request, queryset)
        if users is None:
            return None
        if request.POST.get("post"):
            try:
                results = delete_user_contacts(users)
            except SendflareConfigurationError as error:
                self.message_user(request, str(error), messages.ERROR)
                return None
            self._report(request, users, results, _DELETE_MESSAGES)
            for user, result in zip(users, results, strict=True):
                if result.outcome is Outcome.DELETED:
                    self.log_change(request, user, f"Deleted the Sendflare contact {result.email}.")
            return None
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": _("Delete Sendflare contacts"),
            "subtitle": None,
            "rows": [{"user": user, "addresses": contact_addresses(user)} for user in users],
            "opts": opts,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action_name": "delete_sendflare_contact",
            "media": self.media,
            # Django 6.1 made the admin's breadcrumbs an <ol>; 5.2 and 6.0 style a <div>.
            "breadcrumbs_as_list": django.VERSION >= (6, 1),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.sendflare_delete_template, context)

    def _report(
        self,
        request: HttpRequest,
        users: list[Model],
        results: list[UserResult],
        texts: dict[Outcome, tuple[int, Any]],
    ) -> None:
        for user, result in zip(users, results, strict=True):
            level, text = texts[result.outcome]
            message = text % {"user": user, "email": result.email or "-", "error": result.error}
            self.message_user(request, message, level)


_SYNC_MESSAGES: dict[Outcome, tuple[int, Any]] = {
    Outcome.SAVED: (messages.SUCCESS, gettext_lazy("%(user)s (%(email)s): synced to Sendflare.")),
    Outcome.UNCHANGED: (
        messages.SUCCESS,
        gettext_lazy("%(user)s (%(email)s): the Sendflare contact is up to date."),
    ),
    Outcome.DELETED: (
        messages.INFO,
        gettext_lazy("%(user)s (%(email)s): not synced; an old Sendflare address was deleted."),
    ),
    Outcome.SKIPPED: (
        messages.WARNING,
        gettext_lazy("%(user)s (%(email)s): not synced (inactive, or no address)."),
    ),
    Outcome.RETRY: (
        messages.WARNING,
        gettext_lazy(
            "%(user)s (%(email)s): Sendflare did not answer (%(error)s); it will be retried."
        ),
    ),
    Outcome.FAILED: (messages.ERROR, gettext_lazy("%(user)s (%(email)s): not synced: %(error)s")),
    Outcome.BUSY: (
        messages.WARNING,
        gettext_lazy("%(user)s (%(email)s): being synced by a worker; try again shortly."),
    ),
}

_DELETE_MESSAGES: dict[Outcome, tuple[int, Any]] = {
    Outcome.DELETED: (
        messages.SUCCESS,
        gettext_lazy("%(user)s (%(email)s): Sendflare contact deleted; it will not be synced."),
    ),
    Outcome.SKIPPED: (
        messages.WARNING,
        gettext_lazy("%(user)s (%(email)s): marked do-not-sync; %(error)s."),
    ),
    Outcome.RETRY: (
        messages.WARNING,
        gettext_lazy(
            "%(user)s (%(email)s): marked do-not-sync, but Sendflare did not answer "
            "(%(error)s); the deletion will be retried."
        ),
    ),
    Outcome.FAILED: (
        messages.ERROR,
        gettext_lazy("%(user)s (%(email)s): marked do-not-sync; the deletion failed: %(error)s"),
    ),
    Outcome.BUSY: (
        messages.WARNING,
        gettext_lazy("%(user)s (%(email)s): marked do-not-sync; being synced: %(error)s."),
    ),
}


@admin.register(ContactChange)
class ContactChangeAdmin(admin.ModelAdmin):
    """The outbox: pending and failed changes, with Retry and Discard."""

    list_display = (
        "id",
        "user_key",
        "kind",
        "email",
        "state",
        "attempts",
        "next_attempt_at",
        "short_error",
        "created_at",
    )
    list_filter = ("state", "kind")
    search_fields = ("email", "previous_email", "user_key", "last_error")
    ordering = ("-id",)
    actions = ["retry", "discard"]
    readonly_fields = (
        "user_key",
        "kind",
        "email",
        "previous_email",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "updated_at",
    )

    @admin.display(description=gettext_lazy("last error"))
    def short_error(self, obj: ContactChange) -> str:
        return obj.last_error if len(obj.last_error) <= 80 else obj.last_error[:79] + "…"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(permissions=["change"], description=gettext_lazy("Retry the selected changes"))
    def retry(self, request: HttpRequest, queryset: QuerySet[ContactChange]) -> None:
        count = retry_changes(queryset.values_list("id", flat=True))
        self.message_user(
            request,
            _("%(count)d change(s) will be delivered at the next run.") % {"count": count},
            messages.SUCCESS,
        )

    @admin.action(permissions=["delete"], description=gettext_lazy("Discard the selected changes"))
    def discard(self, request: HttpRequest, queryset: QuerySet[ContactChange]) -> None:
        count = discard_changes(queryset.values_list("id", flat=True))
        self.message_user(
            request,
            _("%(count)d change(s) discarded: they will not be delivered.") % {"count": count},
            messages.SUCCESS,
        )


@admin.register(ContactSyncState)
class ContactSyncStateAdmin(admin.ModelAdmin):
    """What is known of each contact: the user, the synced address, what Sendflare told us."""

    list_display = (
        "user_display",
        "synced_email",
        "status_display",
        "unsubscribed_at",
        "remote_deleted_at",
        "synced_at",
        "do_not_sync",
    )
    list_filter = ("do_not_sync", "remote_status")
    search_fields = ("user_key", "synced_email")
    actions = ["clear_do_not_sync"]
    readonly_fields = (
        "user_display",
        "synced_email",
        "status_display",
        "synced_data",
        "synced_at",
        "stale_emails",
        "unsubscribed_at",
        "remote_deleted_at",
        "do_not_sync",
        "updated_at",
    )
    exclude = ("user_key", "remote_status")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description=gettext_lazy("user"), ordering="user_key")
    def user_display(self, obj: ContactSyncState) -> str:
        user = get_adapter().get_queryset().filter(pk=obj.user_key).first()
        if user is None:
            return _("deleted user (%(key)s)") % {"key": obj.user_key}
        username = getattr(user, "get_username", lambda: str(user))()
        email = get_adapter().get_email(user)
        return f"{username} ({email})" if email else str(username)

    @admin.display(description=gettext_lazy("remote status"), ordering="remote_status")
    def status_display(self, obj: ContactSyncState) -> str:
        # A deleted contact has no status (the last one known would mislead).
        return obj.remote_status if obj.synced_email else "-"

    @admin.action(permissions=["change"], description=gettext_lazy("Clear the do-not-sync mark"))
    def clear_do_not_sync(self, request: HttpRequest, queryset: QuerySet[ContactSyncState]) -> None:
        count = set_do_not_sync(queryset.values_list("user_key", flat=True), False)
        self.message_user(
            request,
            _("%(count)d mark(s) cleared: the next sync creates their contacts.")
            % {"count": count},
            messages.SUCCESS,
        )


def reregister_stock_user_admin(site: admin.AdminSite = admin.site) -> bool:
    """Replace the stock ``UserAdmin`` of ``site`` by one with the Sendflare actions.

    Only when the registered admin is exactly ``django.contrib.auth.admin.UserAdmin``: a custom
    user admin is left alone (add :class:`SendflareUserAdminMixin` to it). Returns whether it did.
    """
    user_model = get_user_model()
    if not site.is_registered(user_model):
        return False
    if type(site._registry[user_model]) is not UserAdmin:
        return False
    site.unregister(user_model)
    site.register(user_model, SendflareUserAdmin)
    return True


class SendflareUserAdmin(SendflareUserAdminMixin, UserAdmin):
    """The stock user admin with the Sendflare actions."""


# Importing django.contrib.auth.admin (above) registers the stock UserAdmin if the autodiscovery
# has not yet: the re-registration works whatever the order of INSTALLED_APPS.
reregister_stock_user_admin()

from .mail import admin as mail_admin  # noqa: E402, F401 - registers the mail log
