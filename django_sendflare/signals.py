"""Signals around each message the backend sends.

``pre_send(sender=backend class, message, backend)``
    Sent for each message before anything of the batch is sent. A receiver may change the
    message, or raise :class:`CancelSend` to skip it (its status becomes ``"cancelled"``).

``post_send(sender=backend class, message, status, backend)``
    Sent for each message once every recipient has been tried, in the caller's thread, with the
    :class:`~django_sendflare.results.MessageStatus` that is also at ``message.sendflare_status``.

``contact_unsubscribed(sender=user model, user, email, deleted)``
    Sendflare told us something about a user's consent that this package did not do itself.
    ``deleted=False``: a listing (a full sync, or the live read of an email change) first saw
    the user's address ``email`` as Unsubscribed. ``deleted=True``: a complete listing found the
    user's synced contact ``email`` gone (deleted at Sendflare, from its dashboard). Sent once
    per event, after the fact is recorded, from the worker or command that learned it, while it
    holds that user's lease: a receiver should update the project's own data (a newsletter
    flag), not call the contact sync. A receiver's exception is logged, never raised.
"""

from django.dispatch import Signal

pre_send = Signal()
post_send = Signal()
contact_unsubscribed = Signal()


class CancelSend(Exception):
    """Raise from a ``pre_send`` receiver to skip a message without an error."""
