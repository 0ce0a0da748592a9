"""Queued mail: messages stored in the caller's transaction and delivered later by the worker.

:mod:`.models` holds the rows; :mod:`.backend` is the ``QueuedEmailBackend`` (it accepts a
message as ``EmailBackend`` does, then stores it); :mod:`.enqueue` writes the rows; :mod:`.drain`
claims due messages, several threads at a time, and :mod:`.delivery` delivers one message's due
recipients, with the settings of the message's mailer (``conf.get_settings(mailer)``);
:mod:`.actions` and :mod:`.admin` are a person's Resend and Discard; :mod:`.purge` applies the
retention. The queue itself (claims, leases, backoff) is :mod:`django_sendflare.queue`.
"""
