"""Mounted at api/optimizations/ by config/api_urls.py."""

from django.urls import path

from apps.optimizations.api.views import (
    OptimizationCancelApi,
    OptimizationDetailApi,
    OptimizationListApi,
)

urlpatterns = [
    path("", OptimizationListApi.as_view(), name="api-optimization-list"),
    path("<int:optimization_id>/", OptimizationDetailApi.as_view(), name="api-optimization-detail"),
    path(
        "<int:optimization_id>/cancel/",
        OptimizationCancelApi.as_view(),
        name="api-optimization-cancel",
    ),
]
