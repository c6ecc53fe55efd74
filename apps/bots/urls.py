from django.urls import path

from apps.bots import views
from apps.bots.actions import ACTIONS

app_name = "bots"
urlpatterns = [
    path("", views.bot_list, name="list"),
    path("new/", views.bot_create_view, name="create"),
    path("panic/", views.bot_panic, name="panic"),
    path("panic/release/", views.bot_panic_release, name="panic_release"),
    path("<int:bot_id>/", views.bot_detail, name="detail"),
    path("<int:bot_id>/card/", views.bot_card_view, name="card"),
    *(
        path(
            f"<int:bot_id>/{action}/",
            views.bot_action,
            {"action": action},
            name=action.replace("-", "_"),
        )
        for action in ACTIONS
    ),
]
