"""Mounted at hooks/ by config/urls.py: webhook receivers, outside the session-auth pages."""

from django.urls import path

from apps.signals import views

app_name = "hooks"
urlpatterns = [
    path("tv/<str:hook_token>/", views.tradingview_hook, name="tradingview"),
]
