"""The sandbox included two levels down, and one of its views mounted on its own."""

from django.urls import include, path

from django_sendflare.sandbox import views

tools = [path("sandbox/", include("django_sendflare.sandbox.urls"))]

urlpatterns = [
    path("dev/", include(tools)),
    path("inbox/", views.inspect),
]
