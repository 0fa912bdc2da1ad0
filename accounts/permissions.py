from rest_framework import permissions

from .authentication import Principal


def reads_only(handler):
    """Declare that a POST handler only computes an answer (a decision, a what-if) and saves nothing.

    POST is there for the size and shape of the question, not to change anything, so read-only
    roles may call it. The permission below reads this mark; nothing else grants it.
    """
    handler.reads_only = True
    return handler


def only_reads(request, view) -> bool:
    """Whether this request is a read: a safe method, or a handler declared with `reads_only`."""
    if request.method in permissions.SAFE_METHODS:
        return True
    handler = getattr(view, request.method.lower(), None)  # a viewset binds its action's method here
    return getattr(handler, "reads_only", False)


class OrgRolePermission(permissions.BasePermission):
    """Members read; owners, admins and API tokens write. Objects are scoped by the views' querysets."""

    message = "Your role in this organization is read-only."

    def has_permission(self, request, view):
        if not isinstance(request.user, Principal):
            return False
        return only_reads(request, view) or request.user.can_write
