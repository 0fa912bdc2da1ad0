from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Changes go through the services, which audit them; the admin site only reads."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
