from django.urls import path

from .consumers import SerialConsoleConsumer

websocket_urlpatterns = [
    path("ws/console/<uuid:uuid>/serial/", SerialConsoleConsumer.as_asgi()),
]
