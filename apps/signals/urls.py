from django.urls import path

from apps.signals import views

app_name = "signals"
urlpatterns = [
    path("", views.signal_bot_list, name="list"),
    path("new/", views.signal_bot_create_view, name="create"),
    path("<int:signal_bot_id>/", views.signal_bot_detail, name="detail"),
    path("<int:signal_bot_id>/rotate/", views.signal_bot_rotate, name="rotate"),
    path("<int:signal_bot_id>/backtest/", views.signal_bot_backtest, name="backtest"),
    path("<int:signal_bot_id>/replay/", views.signal_bot_replay, name="replay"),
]
