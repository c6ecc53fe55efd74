from django.urls import path

from apps.backtests.consumers import BacktestProgressConsumer

websocket_urlpatterns = [
    path("ws/backtests/<int:task_id>/", BacktestProgressConsumer.as_asgi()),
]
