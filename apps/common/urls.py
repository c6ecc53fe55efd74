from django.urls import path

from apps.common import views

urlpatterns = [path("", views.healthz, name="healthz")]
