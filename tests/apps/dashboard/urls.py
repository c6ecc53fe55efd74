"""The project's URLs plus a view that leaves a flash message, to test how _base shows it."""

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns


def _leave_a_message(request):
    messages.success(request, "Exchange connected.")
    return redirect("dashboard:landing")


urlpatterns = [path("test-only/message/", _leave_a_message), *project_urlpatterns]
