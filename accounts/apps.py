from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Organizations and people"

    def ready(self):
        from . import signals  # noqa: F401  (connects the login receiver)
        from .api import schema  # noqa: F401  (registers the OpenAPI auth extensions)
