"""What Users and Groups share: lists and searches of one type, reads with ETags, preconditions; and
/.search over both types at once."""
from contextlib import nullcontext

from django.db import transaction
from django.http import HttpResponse
from rest_framework import status
from rest_framework.response import Response

from accounts.selectors import live_accounts, live_groups

from .errors import ScimError, bad_request, not_found
from .filters import group_filter, user_filter
from .parameters import filter_expression, list_body, paging, project, projection, search_params
from .resources import render_groups, render_users
from .schemas import GROUP_URN, USER_URN
from .transport import ScimView, etag_matches


def one_transaction(several_writes):
    """Several service calls commit together; a single one is its own transaction already."""
    return transaction.atomic() if several_writes else nullcontext()


class ResourceView(ScimView):
    """What Users and Groups share: lists and searches, reads with ETags, preconditions."""

    core_urn: str
    resource_type: str

    def base_queryset(self):
        raise NotImplementedError

    def build_filter(self, expression: str):
        raise NotImplementedError

    def render(self, objects) -> list[dict]:
        raise NotImplementedError

    def require_id(self, resource_id) -> None:
        if resource_id is None:
            raise ScimError(405, f"{self.request.method} applies to one {self.resource_type}, at its own URL.")

    def get_object(self, resource_id: str):
        if not resource_id.isdigit() or len(resource_id) > 18:
            raise not_found(f"No {self.resource_type} {resource_id!r}.")
        obj = self.base_queryset().filter(pk=int(resource_id)).first()
        if obj is None:
            raise not_found(f"No {self.resource_type} {resource_id!r}.")
        return obj

    def projection(self, params: dict):
        return projection(params, self.core_urn)

    def list_response(self, params: dict) -> Response:
        queryset = self.base_queryset()
        expression = filter_expression(params)
        if expression is not None:
            queryset = queryset.filter(self.build_filter(expression))
        start_index, count = paging(params)
        attributes, excluded = self.projection(params)
        # Newest first: a client listing without a filter sees on the first page what it just created.
        # A resource added while a client pages through shifts the later pages by one (one seen twice).
        page = list(queryset.order_by("-pk")[start_index - 1: start_index - 1 + count]) if count else []
        if 0 < len(page) < count or (not page and count and start_index == 1):
            total = start_index - 1 + len(page)  # the last page: no need to count (Okta's lookups end here)
        else:
            total = queryset.count()
        resources = [project(resource, attributes, excluded) for resource in self.render(page)] if page else []
        return Response(list_body(resources, start_index, total))

    def resource_response(self, resource: dict, *, status_code=200, params=None) -> Response:
        headers = {"ETag": resource["meta"]["version"]}
        if status_code == status.HTTP_201_CREATED:
            headers["Location"] = resource["meta"]["location"]
        attributes, excluded = self.projection(params if params is not None else self.params())
        return Response(project(resource, attributes, excluded), status=status_code, headers=headers)

    def current(self, obj) -> dict:
        return self.render([obj])[0]

    def check_precondition(self, obj, **known) -> None:
        """If-Match (RFC 7644 §3.14): a stale version is refused with 412, nothing written.

        `known`: what the request has read of the resource already, for `current`.
        """
        wanted = self.request.headers.get("If-Match")
        if wanted is None:
            return
        version = self.current(obj, **known)["meta"]["version"]
        if not etag_matches(wanted, version):
            raise ScimError(412, f"The {self.resource_type} changed: its version is now {version}.")

    def get(self, request, resource_id=None):
        if resource_id is None:
            return self.list_response(self.params())
        resource = self.current(self.get_object(resource_id))
        wanted = request.headers.get("If-None-Match")
        if wanted is not None and etag_matches(wanted, resource["meta"]["version"]):
            response = HttpResponse(status=304)
            response["ETag"] = resource["meta"]["version"]
            return response
        return self.resource_response(resource)

    def post(self, request, resource_id=None):
        if resource_id is None:
            return self.create(request)
        if resource_id == ".search":
            return self.search(request)
        raise ScimError(405, f"POST creates {self.resource_type}s at /{self.resource_type}s.")

    def create(self, request) -> Response:
        raise NotImplementedError

    def search(self, request):
        return self.list_response(search_params(request.data))


class RootSearchView(ScimView):
    """POST /.search (RFC 7644 §3.4.3): Users and Groups at once, newest first.

    An attribute only one of the types has is false for the other (§3.4.2.1). Pages reach the
    first 10,000 results; a narrower filter finds the rest.
    """

    WINDOW = 10_000

    def post(self, request):
        params = search_params(request.data)
        users, groups = live_accounts(self.organization), live_groups(self.organization)
        expression = filter_expression(params)
        if expression is not None:
            users = users.filter(user_filter(expression, unknown_is_false=True))
            groups = groups.filter(group_filter(expression, unknown_is_false=True))
        start_index, count = paging(params)
        window = start_index - 1 + count
        if window > self.WINDOW:
            raise bad_request(f"A search over every resource type pages through its first {self.WINDOW} results; "
                              f"narrow the filter.", "tooMany")
        projections = {urn: projection(params, urn) for urn in (USER_URN, GROUP_URN)}
        newest = sorted([(a.created_at, a.pk, "User", a) for a in users.order_by("-created_at", "-pk")[:window]]
                        + [(g.created_at, g.pk, "Group", g) for g in groups.order_by("-created_at", "-pk")[:window]],
                        key=lambda row: (row[0], row[1]), reverse=True)[start_index - 1: window]
        rendered = {("User", r["id"]): r for r in render_users([row[3] for row in newest if row[2] == "User"],
                                                               self.base_url)}
        rendered.update({("Group", r["id"]): r for r in render_groups(
            [row[3] for row in newest if row[2] == "Group"], self.base_url)})
        resources = []
        for _, pk, kind, _ in newest:
            attributes, excluded = projections[USER_URN if kind == "User" else GROUP_URN]
            resources.append(project(rendered[(kind, str(pk))], attributes, excluded))
        return Response(list_body(resources, start_index, users.count() + groups.count()))
