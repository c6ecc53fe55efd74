from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"

    def ready(self) -> None:
        from apps.accounts import (
            receivers,  # noqa: F401  (connects the auth audit receivers)
            schema,  # noqa: F401  (registers the OpenAPI scheme)
        )
