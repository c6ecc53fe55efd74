from django.urls import path

from apps.optimizations import views

app_name = "optimizations"
urlpatterns = [
    path("", views.optimization_list, name="list"),
    path("new/", views.optimization_create, name="create"),
    path("<int:optimization_id>/", views.optimization_detail, name="detail"),
    path("<int:optimization_id>/progress/", views.optimization_progress, name="progress"),
    path("<int:optimization_id>/cancel/", views.optimization_cancel, name="cancel"),
    path("<int:optimization_id>/adopt/", views.optimization_adopt, name="adopt"),
]
