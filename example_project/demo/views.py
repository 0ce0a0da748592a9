"""The demo pages: a home page with links, and a page that sends a test message."""

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.mail import EmailMessage
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from django_sendflare.exceptions import SendflareError

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
            # Bad addresses, unsupported features and API errors all land here, with their reason.
            messages.error(request, f"Not sent: {error}")
        else:
            status = message.sendflare_status
            messages.success(
                request,
                f"Sent to {len(status.recipients)} recipient(s); "
                f"requestId {', '.join(status.request_ids)}",
            )
            return redirect("demo:send")
    return render(request, "demo/send.html", {"form": form, "use_sandbox": settings.USE_SANDBOX})
