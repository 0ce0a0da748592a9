"""The form of the test-message page."""

from django import forms
from django.conf import settings


class TestMessageForm(forms.Form):
    from_email = forms.CharField(label="From", initial=lambda: settings.DEFAULT_FROM_EMAIL)
    to = forms.CharField(label="To", help_text="One or more addresses, separated by commas.")
    subject = forms.CharField(initial="Hello from django-sendflare")
    body = forms.CharField(widget=forms.Textarea, initial="<p>It <b>works</b>.</p>")
    html = forms.BooleanField(label="Send the body as HTML", required=False, initial=True)

    def recipients(self) -> list[str]:
        return [
            address.strip() for address in self.cleaned_data["to"].split(",") if address.strip()
        ]
