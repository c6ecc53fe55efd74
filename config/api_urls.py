"""One include per app's api/urls.py."""

from django.urls import include, path

urlpatterns = [
    path("me/", include("apps.accounts.api.urls")),
    path("exchange-accounts/", include("apps.exchanges.api.urls")),
    path("strategies/", include("apps.strategies.api.urls")),
    path("backtests/", include("apps.backtests.api.urls")),
    path("optimizations/", include("apps.optimizations.api.urls")),
    path("bots/", include("apps.bots.api.urls")),
    path("signals/", include("apps.signals.api.urls")),
]
