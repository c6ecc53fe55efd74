"""Mounted at api/strategies/ by config/api_urls.py."""

from django.urls import path

from apps.strategies.api import views

urlpatterns = [
    path("", views.StrategyListCreateApi.as_view(), name="api-strategies"),
    path("<int:strategy_id>/", views.StrategyDetailApi.as_view(), name="api-strategy-detail"),
    path(
        "<int:strategy_id>/versions/",
        views.StrategyVersionCreateApi.as_view(),
        name="api-strategy-version-create",
    ),
    path(
        "versions/<int:version_id>/",
        views.StrategyVersionDetailApi.as_view(),
        name="api-strategy-version-detail",
    ),
]
