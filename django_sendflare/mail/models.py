"""The mail queue: one row per message, one row per recipient of it.

A message is stored once, with the fields ``POST /v1/send`` takes (already validated and
converted by :mod:`django_sendflare.payload`), and the *name* of the Sendflare configuration
that delivers it (a ``MAILERS`` alias, or ``""`` for ``settings.SENDFLARE``): never a token.

Each recipient has its own state, so that a message to five recipients of which two failed
re-sends only those two:

``queued``   waiting for delivery (again, after a transient failure: see ``next_attempt_at``);
``sending``  its request is in flight; a worker that finds it so after the previous worker's
             lease ran out (the worker was killed mid-request) makes it ``unknown``;
``sent``     accepted by the API (``request_id``);
``failed``   refused for good (``error_code``, ``error``, ``request_id``);
``unknown``  the request may have been processed but no answer came back: never re-sent
             automatically, only by the admin's Resend action (it may mail the person twice);
``discarded`` dropped by the admin's Discard action, never sent.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from ..queue.models import Leasable, QueueItem

#: The longest MAILERS alias a message can name.
MAILER_MAX_LENGTH = 100


class QueuedMessage(QueueItem, Leasable):
    """One message of the queue: the unit a worker claims (and leases) and delivers.

    Its queue ``state`` is ``pending`` while a recipient is queued (due at ``next_attempt_at``),
    ``done`` once none is, ``failed`` when the queue parked it after ``MAIL_MAX_ATTEMPTS``
    delivery runs that met transient failures. ``attempts`` counts those runs.
    """

    #: The MAILERS alias whose Sendflare settings deliver the message ("" = settings.SENDFLARE).
    mailer = models.CharField(_("mailer"), max_length=MAILER_MAX_LENGTH, blank=True)
    from_email = models.CharField(_("from"), max_length=254)
    subject = models.TextField(_("subject"), blank=True)
    body = models.TextField(_("body"), blank=True)

    class Meta:
        verbose_name = _("queued message")
        verbose_name_plural = _("mail log")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="sendflare_mail_due"),
            models.Index(fields=["created_at"], name="sendflare_mail_created"),
        ]

    def __str__(self) -> str:
        return self.subject or f"(message {self.pk})"


class QueuedRecipient(models.Model):
    """One recipient of a queued message: one ``POST /v1/send``."""

    class State(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        UNKNOWN = "unknown", _("unknown")
        DISCARDED = "discarded", _("discarded")

    message = models.ForeignKey(
        QueuedMessage,
        on_delete=models.CASCADE,
        related_name="recipients",
        verbose_name=_("message"),
    )
    #: The recipient's place in the message (to, cc, bcc order).
    position = models.PositiveIntegerField(_("position"), default=0)
    email = models.CharField(_("email"), max_length=254, db_index=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.QUEUED)
    #: Requests made for this recipient.
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    request_id = models.CharField(_("requestId"), max_length=100, blank=True)
    error_code = models.IntegerField(_("error code"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("recipient")
        verbose_name_plural = _("recipients")
        ordering = ["message_id", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "position"], name="sendflare_recipient_position"
            )
        ]
        indexes = [models.Index(fields=["state", "updated_at"], name="sendflare_recipient_state")]

    def __str__(self) -> str:
        return f"{self.email} ({self.state})"
