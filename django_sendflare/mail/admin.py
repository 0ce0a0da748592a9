"""The mail log: queued messages, their recipients' states, and Resend / Discard.

The actions are thin: the work is done by :mod:`django_sendflare.mail.actions`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import status
from . import actions as mail_actions
from .models import QueuedMessage, QueuedRecipient

State = QueuedRecipient.State

if TYPE_CHECKING:
    # Generic in django-stubs only: at run time the classes are not subscriptable.
    _Inline = admin.TabularInline[QueuedRecipient, QueuedMessage]
    _ModelAdmin = admin.ModelAdmin[QueuedMessage]
else:
    _Inline = admin.TabularInline
    _ModelAdmin = admin.ModelAdmin


class RecipientInline(_Inline):
    model = QueuedRecipient
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "email",
        "state",
        "attempts",
        "request_id",
        "error_code",
        "error",
        "sent_at",
        "updated_at",
    )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RecipientStateFilter(admin.SimpleListFilter):
    """Messages with at least one recipient in a state."""

    title = gettext_lazy("recipient state")
    parameter_name = "recipient_state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(value, label) for value, label in State.choices]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value in State.values:
            return queryset.filter(recipients__state=value).distinct()
        return queryset


@admin.register(QueuedMessage)
class QueuedMessageAdmin(_ModelAdmin):
    """A read-only log: every queued message, with its recipients and what became of them."""

    list_display = (
        "id",
        "subject",
        "from_email",
        "recipient_states",
        "state",
        "attempts",
        "created_at",
        "updated_at",
    )
    list_display_links = ("id", "subject")
    list_filter = (RecipientStateFilter, "state", "mailer", "created_at")
    search_fields = ("subject", "from_email", "recipients__email", "recipients__request_id")
    date_hierarchy = "created_at"
    readonly_fields = (
        "mailer",
        "from_email",
        "subject",
        "body",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields
    inlines = [RecipientInline]
    actions = ["resend", "discard"]
    resend_template = "django_sendflare/admin/resend_unknown_confirmation.html"
    change_list_template = "django_sendflare/admin/mail_log.html"

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        """The list, under the summary ``sendflare_status`` prints (no limiter ping here)."""
        summary = status.collect(check_limiter=False)
        return super().changelist_view(
            request, {**(extra_context or {}), "sendflare_status": summary}
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[QueuedMessage]:
        counts = {
            f"n_{value}": Count("recipients", filter=Q(recipients__state=value))
            for value in State.values
        }
        return super().get_queryset(request).annotate(**counts)

    @admin.display(description=gettext_lazy("recipients"))
    def recipient_states(self, obj: QueuedMessage) -> str:
        parts = [
            (value, getattr(obj, f"n_{value}", 0), label)
            for value, label in State.choices
            if getattr(obj, f"n_{value}", 0)
        ]
        return format_html_join(
            ", ",
            '<span class="sendflare-{}">{} {}</span>',
            parts,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The log is read-only; the actions need the change permission on the queue instead.
        return False

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("django_sendflare.change_queuedmessage"))

    @admin.action(
        permissions=["resend"],
        description=gettext_lazy("Resend failed and unknown recipients"),
    )
    def resend(self, request: HttpRequest, queryset: QuerySet[Any]) -> TemplateResponse | None:
        ids = list(queryset.values_list("pk", flat=True))
        unknown = mail_actions.unknown_recipients(ids)
        if unknown and not request.POST.get("post"):
            return self._confirm_resend(request, ids, unknown)
        result = mail_actions.resend(ids, include_unknown=True)
        self._report(request, result, _("%(n)d recipient(s) queued again."))
        return None

    @admin.action(
        permissions=["resend"],
        description=gettext_lazy("Discard: never send the queued and failed recipients"),
    )
    def discard(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        result = mail_actions.discard(list(queryset.values_list("pk", flat=True)))
        self._report(request, result, _("%(n)d recipient(s) discarded."))

    def _confirm_resend(
        self, request: HttpRequest, ids: list[int], unknown: list[QueuedRecipient]
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": _("Resend mail that may have been sent"),
            "subtitle": None,
            "unknown": unknown,
            "ids": ids,
            "opts": self.model._meta,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action_name": "resend",
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.resend_template, context)

    def _report(self, request: HttpRequest, result: mail_actions.ActionResult, text: str) -> None:
        self.message_user(request, text % {"n": result.recipients}, messages.SUCCESS)
        if result.busy:
            self.message_user(
                request,
                _("Message(s) %(ids)s are being delivered by a worker: try again shortly.")
                % {"ids": ", ".join(map(str, result.busy))},
                messages.WARNING,
            )
