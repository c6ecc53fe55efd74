"""The project's URLs plus MeApi at api/me/, where config/api_urls.py will mount it."""

from django.urls import include, path

from config.urls import urlpatterns as project_urlpatterns

urlpatterns = [
    path("api/me/", include("apps.accounts.api.urls")),
    *project_urlpatterns,
]
