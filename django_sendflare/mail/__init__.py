"""Queued mail: messages stored in the caller's transaction and delivered later by the worker.

:mod:`.models` holds the rows, :mod:`.enqueue` writes them (the ``QueuedEmailBackend``),
:mod:`.delivery` delivers one message's due recipients, :mod:`.purge` applies the retention.
"""
