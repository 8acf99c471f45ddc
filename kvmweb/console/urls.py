from django.urls import path

from . import views

app_name = "console"

urlpatterns = [
    path("<uuid:uuid>/", views.console_view, name="vnc"),
    path("<uuid:uuid>/text/", views.text_console_view, name="text"),
    path("<uuid:uuid>/screenshot.png", views.screenshot_view, name="screenshot"),
]
