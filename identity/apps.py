from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "identity"
    verbose_name = "Sign-in and console users"

    def ready(self):
        from . import signals  # noqa: F401  (connects the sign-in receivers)
