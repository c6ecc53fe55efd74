"""Mounted at api/me/ by config/api_urls.py."""

from django.urls import path

from apps.accounts.api.views import MeApi

urlpatterns = [
    path("", MeApi.as_view(), name="api-me"),
]
