"""Mounted at api/backtests/ by config/api_urls.py."""

from django.urls import path

from apps.backtests.api.views import BacktestTaskDetailApi, BacktestTaskListApi

urlpatterns = [
    path("", BacktestTaskListApi.as_view(), name="api-backtest-list"),
    path("<int:task_id>/", BacktestTaskDetailApi.as_view(), name="api-backtest-detail"),
]
