from django.urls import path

from apps.exchanges import views

app_name = "exchanges"
urlpatterns = [
    path("", views.account_list, name="list"),
    path("new/", views.account_create, name="create"),
    path("<int:account_id>/", views.account_detail, name="detail"),
    path("<int:account_id>/keys/", views.account_rotate_keys, name="rotate_keys"),
    path("<int:account_id>/delete/", views.account_delete, name="delete"),
]
