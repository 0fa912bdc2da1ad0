from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Organizations and people"

    def ready(self):
        from .api import schema  # noqa: F401  (registers the OpenAPI auth extensions)
