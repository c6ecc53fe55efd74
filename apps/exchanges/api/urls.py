"""Mounted at api/exchange-accounts/ by config/api_urls.py."""

from django.urls import path

from apps.exchanges.api.views import ExchangeAccountDetailApi, ExchangeAccountListApi

urlpatterns = [
    path("", ExchangeAccountListApi.as_view(), name="api-exchange-account-list"),
    path(
        "<int:account_id>/", ExchangeAccountDetailApi.as_view(), name="api-exchange-account-detail"
    ),
]
