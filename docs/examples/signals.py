"""Receivers of the backend's signals (included in the docs).

``tests/test_docs_examples.py`` connects them and sends through the sandbox.
"""

import logging

from django.dispatch import receiver

from django_sendflare.signals import CancelSend, post_send, pre_send

logger = logging.getLogger(__name__)


@receiver(pre_send, dispatch_uid="docs-example-skip-test-domains")
def skip_reserved_domains(sender, message, backend, **kwargs):
    """Never mail the reserved ``.invalid`` domain: cancel the message before anything is sent."""
    if any(address.endswith(".invalid") for address in message.recipients()):
        raise CancelSend("a reserved test domain")


@receiver(post_send, dispatch_uid="docs-example-log-failures")
def log_failures(sender, message, status, backend, **kwargs):
    """Log the recipients a message did not reach, once all of them were tried."""
    for recipient in status.failed:
        logger.warning("%r not sent to %s: %s", message.subject, recipient.email, recipient.error)
