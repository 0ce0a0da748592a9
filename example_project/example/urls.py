"""URLs of the example project: the demo pages, the admin and, when it is used, the sandbox."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("demo.urls")),
    path("admin/", admin.site.urls),
]
if settings.USE_SANDBOX:
    # The emulated API (API_URL = http://127.0.0.1:8000/sandbox), its inbox at /sandbox/_sandbox/.
    # It answers only with DEBUG on (the default here): see docs/topics/sandbox-security.rst.
    urlpatterns.append(path("sandbox/", include("django_sendflare.sandbox.urls")))
