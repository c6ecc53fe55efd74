from django.urls import path

from apps.market import views

app_name = "market"
urlpatterns = [
    path("", views.coverage, name="coverage"),
    path("downloads/", views.download_start, name="download_start"),
    path(
        "downloads/<int:download_id>/progress/",
        views.download_progress,
        name="download_progress",
    ),
    path("downloads/<int:download_id>/resume/", views.download_resume, name="download_resume"),
]
