"""The contact outbox and the per-user sync state.

Users are referred to by ``user_key``, the string form of their primary key, not by a foreign key:
an outbox row must outlive the user it describes (a deletion is delivered after the user row is
gone), and any ``AUTH_USER_MODEL`` works whatever the type of its primary key.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from .queue.models import Leasable, QueueItem


class ContactChange(QueueItem):
    """One recorded change of a user, waiting to be delivered to Sendflare (the outbox).

    Rows are written by the ``post_save`` / ``post_delete`` receivers inside the transaction of the
    change, and deleted once delivered. All pending rows of one user are delivered together, as
    one call (or two, for an email change), from the user's state at delivery time.
    """

    class Kind(models.TextChoices):
        """What happened: the user was saved, deleted, or someone asked for a push ("sync":
        the contact is saved even when the recorded state says it is up to date)."""

        SAVE = "save", _("save")
        DELETE = "delete", _("delete")
        SYNC = "sync", _("sync (forced)")

    user_key = models.CharField(_("user"), max_length=255, db_index=True)
    kind = models.CharField(_("change"), max_length=10, choices=Kind.choices)
    #: The user's address after the change (for a deletion: the address it had).
    email = models.CharField(_("email"), max_length=254, blank=True)
    #: The address before the change when the change modified it (email change).
    previous_email = models.CharField(_("previous email"), max_length=254, blank=True)

    class Meta:
        verbose_name = _("contact change")
        verbose_name_plural = _("contact changes (outbox)")
        ordering = ["id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="sendflare_change_due"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.email or '?'} (user {self.user_key}, {self.state})"


class ContactSyncState(Leasable):
    """What is known of one user's Sendflare contact, and the user's do-not-sync mark.

    Also the per-user lock of delivery (a :class:`~django_sendflare.queue.Leasable`): a worker
    takes the lease before it calls the API for this user, and renews it while it works, so
    that two workers never deliver one user at the same time.
    """

    user_key = models.CharField(_("user"), max_length=255, unique=True)
    #: The address of the contact this package last created or updated ("" when none).
    synced_email = models.CharField(_("synced email"), max_length=254, blank=True)
    #: The contact's status as last created or seen by a full sync ("" when unknown).
    remote_status = models.CharField(_("remote status"), max_length=20, blank=True)
    #: The data fields last sent (non-empty values only).
    synced_data = models.JSONField(_("synced data"), default=dict, blank=True)
    #: When the above were last known to match the API; None: nothing is known.
    synced_at = models.DateTimeField(_("synced at"), null=True, blank=True)
    #: Addresses that may exist in Sendflare and are not the user's contact: still to delete.
    #: An address is added here *before* the call that may create it, so that a create whose
    #: answer is lost leaves no orphan; and the old address of an email change lands here.
    stale_emails = models.JSONField(_("addresses to delete"), default=list, blank=True)
    #: When Sendflare was first seen holding an address of this user as Unsubscribed (or this
    #: package created one so). Sticky: no address of this user is ever created Confirmed again.
    unsubscribed_at = models.DateTimeField(_("unsubscribed at Sendflare"), null=True, blank=True)
    #: When a complete listing last found the synced contact deleted at Sendflare.
    remote_deleted_at = models.DateTimeField(_("deleted at Sendflare"), null=True, blank=True)
    #: Set by the admin's "Delete Sendflare contact": no sync may re-create the contact.
    do_not_sync = models.BooleanField(_("do not sync"), default=False)
    #: The last outbox row whose addresses a delivery has taken into this state: from then on
    #: the state speaks for them, not the row (which may wait to be resolved a while longer).
    rows_adopted_through = models.PositiveBigIntegerField(default=0, editable=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("contact sync state")
        verbose_name_plural = _("contact sync states")
        permissions = [
            ("delete_sendflare_contact", _("Can delete the Sendflare contact of a user")),
        ]

    def __str__(self) -> str:
        return f"user {self.user_key}: {self.synced_email or '-'}"


from .mail.models import QueuedMessage, QueuedRecipient  # noqa: E402, F401 - the mail queue
from .records import StatusRecord  # noqa: E402, F401 - the status's own facts
