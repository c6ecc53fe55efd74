from django.urls import path

from apps.optimizations.consumers import OptimizationProgressConsumer

websocket_urlpatterns = [
    path("ws/optimizations/<int:optimization_id>/", OptimizationProgressConsumer.as_asgi()),
]
