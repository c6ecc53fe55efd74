"""Mounted at api/bots/ by config/api_urls.py."""

from django.urls import path

from apps.bots.actions import ACTIONS
from apps.bots.api.views import (
    BotActionApi,
    BotDetailApi,
    BotFillListApi,
    BotListApi,
    BotLogListApi,
    BotOrderListApi,
)

urlpatterns = [
    path("", BotListApi.as_view(), name="api-bot-list"),
    path("<int:bot_id>/", BotDetailApi.as_view(), name="api-bot-detail"),
    *(
        path(
            f"<int:bot_id>/{action}/",
            BotActionApi.as_view(action_name=action),
            name=f"api-bot-{action}",
        )
        for action in ACTIONS
    ),
    path("<int:bot_id>/orders/", BotOrderListApi.as_view(), name="api-bot-orders"),
    path("<int:bot_id>/fills/", BotFillListApi.as_view(), name="api-bot-fills"),
    path("<int:bot_id>/logs/", BotLogListApi.as_view(), name="api-bot-logs"),
]
