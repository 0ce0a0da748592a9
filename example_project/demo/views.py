"""The demo pages: a home page, a page that queues a test message, and the message's status."""

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.mail import EmailMessage
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from django_sendflare.exceptions import SendflareError
from django_sendflare.models import QueuedMessage

from .forms import TestMessageForm


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "demo/home.html", {"use_sandbox": settings.USE_SANDBOX})


@staff_member_required
def send_test_message(request: HttpRequest) -> HttpResponse:
    form = TestMessageForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        message = EmailMessage(
            form.cleaned_data["subject"],
            form.cleaned_data["body"],
            form.cleaned_data["from_email"],
            form.recipients(),
        )
        if form.cleaned_data["html"]:
            message.content_subtype = "html"
        try:
            message.send()
        except SendflareError as error:
            # Bad addresses and unsupported features are refused here, with their reason; the
            # API is not called (the worker sends), so it can neither slow nor fail this view.
            messages.error(request, f"Not sent: {error}")
        else:
            status = message.sendflare_status
            messages.success(request, f"Queued for {len(status.recipients)} recipient(s).")
            return redirect("demo:message", pk=status.queued_id)
    return render(request, "demo/send.html", {"form": form, "use_sandbox": settings.USE_SANDBOX})


@staff_member_required
def message_status(request: HttpRequest, pk: int) -> HttpResponse:
    """One queued message and its recipients' states; reloads itself until none is queued."""
    message = get_object_or_404(QueuedMessage, pk=pk)
    recipients = list(message.recipients.order_by("position"))
    waiting = any(r.state in ("queued", "sending") for r in recipients)
    context = {
        "message": message,
        "recipients": recipients,
        "waiting": waiting,
        "use_sandbox": settings.USE_SANDBOX,
    }
    return render(request, "demo/message.html", context)
