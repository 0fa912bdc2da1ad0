from rest_framework import permissions

from .authentication import Principal


class OrgRolePermission(permissions.BasePermission):
    """Members read; owners, admins and API tokens write. Objects are scoped by the views' querysets."""

    message = "Your role in this organization is read-only."

    def has_permission(self, request, view):
        if not isinstance(request.user, Principal):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        return request.user.can_write
