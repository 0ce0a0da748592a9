"""URLconf of the mounted sandbox: ``path("sandbox/", include("django_sendflare.sandbox.urls"))``.

The API is then at ``<prefix>v1/send`` and ``<prefix>v1/contact`` (so ``API_URL`` is the URL of
the prefix without its trailing slash), and the inspection pages at ``<prefix>_sandbox/``.
"""

from __future__ import annotations

from django.urls import path, re_path

from django_sendflare.sandbox import views

app_name = "sendflare_sandbox"

urlpatterns = [
    path("v1/send", views.api, {"route": "/v1/send"}, name="send"),
    path("v1/contact", views.api, {"route": "/v1/contact"}, name="contact"),
    path("_sandbox/", views.inspect, name="inbox"),
    re_path(r"^_sandbox/(?P<rest>.+)$", views.inspect, name="inspect"),
]
