from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_GET


@require_GET
def landing(request):
    if request.user.is_authenticated:
        return redirect("dashboard:home")
    return HttpResponse("tradeloop")


@require_GET
@login_required
def home(request):
    return HttpResponse("dashboard")
