from django.urls import path

from apps.strategies import views

app_name = "strategies"
urlpatterns = [
    path("", views.strategy_list, name="list"),
    path("new/", views.strategy_new, name="create"),
    path("<int:strategy_id>/", views.strategy_detail, name="detail"),
    path("<int:strategy_id>/edit/", views.strategy_edit, name="edit"),
    path("<int:strategy_id>/archive/", views.strategy_archive_view, name="archive"),
    path("versions/<int:version_id>/", views.strategy_version_detail, name="version_detail"),
]
