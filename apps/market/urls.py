from django.urls import path

from apps.market import views

app_name = "market"
urlpatterns = [
    path("", views.coverage, name="coverage"),
]
