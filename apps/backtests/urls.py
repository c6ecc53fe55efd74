from django.urls import path

from apps.backtests import views

app_name = "backtests"
urlpatterns = [
    path("", views.backtest_list, name="list"),
    path("new/", views.backtest_create, name="create"),
    path("<int:task_id>/", views.backtest_detail, name="detail"),
    path("<int:task_id>/progress/", views.backtest_progress, name="progress"),
    path("<int:task_id>/cancel/", views.backtest_cancel, name="cancel"),
    path("pairs/<int:pair_id>/", views.pair_detail, name="pair_detail"),
    path("pairs/<int:pair_id>/trades.csv", views.pair_trades_csv, name="pair_trades_csv"),
]
