from django.contrib import admin

from config.admin import ReadOnlyAdmin

from .models import Account, ApiToken, Group, Organization, OrgRole


@admin.register(Organization)
class OrganizationAdmin(ReadOnlyAdmin):
    list_display = ["slug", "name", "policy_version", "created_at"]


@admin.register(Group)
class GroupAdmin(ReadOnlyAdmin):
    list_display = ["display_name", "organization", "external_id"]
    list_filter = ["organization"]


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["user_name", "organization", "display_name", "active"]
    list_filter = ["organization", "active"]
    search_fields = ["user_name", "display_name", "email"]


@admin.register(OrgRole)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ["user", "organization", "role"]


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ["name", "organization", "scope", "hint", "created_at", "last_used_at", "revoked_at"]
    exclude = ["digest"]
