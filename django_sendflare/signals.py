"""Signals around each message the backend sends.

``pre_send(sender=backend class, message, backend)``
    Sent for each message before anything of the batch is sent. A receiver may change the
    message, or raise :class:`CancelSend` to skip it (its status becomes ``"cancelled"``).

``post_send(sender=backend class, message, status, backend)``
    Sent for each message once every recipient has been tried, in the caller's thread, with the
    :class:`~django_sendflare.results.MessageStatus` that is also at ``message.sendflare_status``.
"""

from django.dispatch import Signal

pre_send = Signal()
post_send = Signal()


class CancelSend(Exception):
    """Raise from a ``pre_send`` receiver to skip a message without an error."""
