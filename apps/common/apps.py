from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "apps.common"
    label = "common"

    def ready(self) -> None:
        from apps.common.logging import install_redaction

        # Settings' LOGGING puts the filter on its own handlers; this covers the rest.
        install_redaction()
