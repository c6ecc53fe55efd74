import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
# Only the web process loads this module: it borrows database connections from a pool
# (config/settings/base.py, DB_POOL_MAX), sized above SIGNALS_HOOK_CONCURRENCY.
os.environ.setdefault("DJANGO_DB_POOL_MAX", "20")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from apps.signals.asgi import HookFirst  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # TradingView deliveries skip the middleware's thread hops (apps/signals/asgi.py).
        "http": HookFirst(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
