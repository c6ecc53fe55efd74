from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.common.health import platform_health


@never_cache
@require_GET
def healthz(request):
    """Public liveness report for load balancers and operators; 503 when anything is down."""
    report = platform_health()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
