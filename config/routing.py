"""Websocket URL patterns, one include per app that pushes live data."""

from apps.backtests.routing import websocket_urlpatterns as backtest_websockets
from apps.bots.routing import websocket_urlpatterns as bot_websockets
from apps.optimizations.routing import websocket_urlpatterns as optimization_websockets

websocket_urlpatterns: list = [*backtest_websockets, *optimization_websockets, *bot_websockets]
