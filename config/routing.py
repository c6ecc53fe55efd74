"""Websocket URL patterns, one include per app that pushes live data."""

websocket_urlpatterns: list = []
