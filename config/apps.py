from django.contrib.admin.apps import AdminConfig


class PlatformAdminConfig(AdminConfig):
    """Django's admin, on a site whose sign-in is the console's (see `config.admin`)."""

    default_site = "config.admin.ConsoleSignInAdminSite"
