from django.urls import path

from . import views

app_name = "demo"
urlpatterns = [
    path("", views.home, name="home"),
    path("send/", views.send_test_message, name="send"),
    path("messages/<int:pk>/", views.message_status, name="message"),
]
