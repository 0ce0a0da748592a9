"""URLs of the example project: the demo pages, the admin and the sandbox."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("demo.urls")),
    path("admin/", admin.site.urls),
    # The emulated API (API_URL = http://127.0.0.1:8000/sandbox), its inbox at /sandbox/_sandbox/.
    path("sandbox/", include("django_sendflare.sandbox.urls")),
]
