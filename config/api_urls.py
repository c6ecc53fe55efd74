"""One include per app's api/urls.py."""

from django.urls import include, path

urlpatterns = [
    path("exchange-accounts/", include("apps.exchanges.api.urls")),
    path("backtests/", include("apps.backtests.api.urls")),
]
