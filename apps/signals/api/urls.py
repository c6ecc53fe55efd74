"""Mounted at api/signals/ by config/api_urls.py."""

from django.urls import path

from apps.signals.api.views import SignalBotListApi, SignalBotRotateApi, WebhookEventListApi

urlpatterns = [
    path("", SignalBotListApi.as_view(), name="api-signal-bot-list"),
    path("<int:signal_bot_id>/rotate/", SignalBotRotateApi.as_view(), name="api-signal-bot-rotate"),
    path("<int:signal_bot_id>/events/", WebhookEventListApi.as_view(), name="api-signal-events"),
]
