"""Sending with the backend, and finding out who got the message (included in the docs).

``tests/test_docs_examples.py`` runs these functions against the sandbox.
"""

import django
from django.core.mail import EmailMultiAlternatives

from django_sendflare.exceptions import SendflareAPIError


def send_welcome(address: str) -> EmailMultiAlternatives:
    """Send an HTML welcome mail to ``address``, with the team in copy."""
    message = EmailMultiAlternatives(
        subject="Welcome",
        body="Hello! Your account is ready.",  # not sent: the HTML part is the body
        from_email="noreply@example.com",
        to=[address],
        cc=["team@example.com"],  # one request of its own; received as the sole "to"
    )
    message.attach_alternative("<p>Hello! Your account is ready.</p>", "text/html")
    message.send()
    return message


def send_and_list_failures(messages: list[EmailMultiAlternatives]) -> list[str]:
    """Send a batch; return the addresses that did not get their message.

    When one recipient fails, the rest of the batch is still sent, and then the first error is
    raised, carrying the statuses of every message of the batch.
    """
    try:
        default_mailer().send_messages(messages)
    except SendflareAPIError as error:
        statuses = error.message_statuses
    else:
        statuses = [message.sendflare_status for message in messages]
    return [
        recipient.email
        for status in statuses
        for recipient in status.recipients.values()
        if recipient.status != "sent"
    ]


def default_mailer():
    """The default email backend: ``mailers.default`` on Django 6.1, ``get_connection()`` before."""
    if django.VERSION >= (6, 1):
        from django.core.mail import mailers

        return mailers.default
    from django.core.mail import get_connection

    return get_connection()
