from django.urls import path

from apps.bots.consumers import BotCardConsumer

websocket_urlpatterns = [
    path("ws/bots/", BotCardConsumer.as_asgi()),
    path("ws/bots/<int:bot_id>/", BotCardConsumer.as_asgi()),
]
