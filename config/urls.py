from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("", include("apps.dashboard.urls")),
    path("accounts/", include("apps.accounts.urls")),
    path("exchanges/", include("apps.exchanges.urls")),
    path("market/", include("apps.market.urls")),
    path("backtests/", include("apps.backtests.urls")),
    path("optimizations/", include("apps.optimizations.urls")),
    path("bots/", include("apps.bots.urls")),
    path("strategies/", include("apps.strategies.urls")),
    path("signals/", include("apps.signals.urls")),
    path("hooks/", include("apps.signals.hook_urls")),
    path("healthz", include("apps.common.urls")),
    path("api/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("admin/", admin.site.urls),
]
