"""/Groups (RFC 7644 §3.3–3.6): groups and their members, written through the accounts services."""
from django.db import IntegrityError
from rest_framework import status
from rest_framework.response import Response

from accounts import services as accounts
from accounts.models import Group
from accounts.selectors import live_accounts, live_groups

from .binding import group_fields
from .documents import GROUP, Document
from .errors import bad_request, conflict
from .filters import group_filter
from .resource_views import ResourceView, one_transaction
from .resources import Member, group_members, group_resource, live_members, render_groups
from .schemas import GROUP_URN


class GroupsView(ResourceView):
    core_urn = GROUP_URN
    resource_type = "Group"

    def base_queryset(self):
        return live_groups(self.organization)

    def build_filter(self, expression):
        return group_filter(expression)

    def render(self, objects):
        return render_groups(objects, self.base_url)

    def create(self, request):
        fields, member_ids = group_fields(Document.from_body(GROUP, request.data))
        names = self._check_members(member_ids)
        try:
            with one_transaction(member_ids):
                group = accounts.create_group(organization=self.organization, actor=self.actor, **fields)
                if member_ids:
                    group = accounts.change_group_members(group=group, actor=self.actor, add=member_ids).group
        except IntegrityError:
            raise conflict("displayName or externalId is taken in this organization.") from None
        # A new group holds exactly the members this request gave it.
        resource = group_resource(group, self.base_url, live_members(names))
        return self.resource_response(resource, status_code=status.HTTP_201_CREATED)

    def put(self, request, resource_id=None):
        self.require_id(resource_id)
        group = self.get_object(resource_id)
        members = group_members(group.pk)
        self.check_precondition(group, members=members)
        fields, member_ids = group_fields(Document.from_body(GROUP, request.data, resource_id=str(group.pk)))
        return self._update(group, fields, member_ids, members)

    def patch(self, request, resource_id=None):
        self.require_id(resource_id)
        group = self.get_object(resource_id)
        members = group_members(group.pk)
        self.check_precondition(group, members=members)
        document = Document(GROUP, {"displayName": group.display_name, "externalId": group.external_id,
                                    "members": [{"value": str(pk)} for pk, _ in live_members(members)]}, str(group.pk))
        document.patch(request.data)
        fields, member_ids = group_fields(document)
        return self._update(group, fields, member_ids, members)

    def delete(self, request, resource_id=None):
        self.require_id(resource_id)
        group = self.get_object(resource_id)
        self.check_precondition(group)
        accounts.delete_group(group=group, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def current(self, obj, members=None) -> dict:
        """`members`: the group's, from `group_members`, when the request has read them already."""
        if members is None:
            return super().current(obj)
        return group_resource(obj, self.base_url, live_members(members))

    def _update(self, group: Group, fields: dict, member_ids: list[int], members: dict) -> Response:
        """Write what changed; the answer is the group as the writes left it, without reading it again."""
        changes = {name: value for name, value in fields.items() if getattr(group, name) != value}
        current, wanted = set(members), set(member_ids)
        added = self._check_members(wanted - current)
        try:
            with one_transaction(changes and wanted != current):
                if changes:
                    group = accounts.update_group(group=group, actor=self.actor, **changes)
                if wanted != current:
                    change = accounts.change_group_members(group=group, actor=self.actor, add=wanted - current,
                                                           remove=current - wanted)
                    group = change.group
                    members = {pk: members.get(pk) or added.get(pk) for pk in change.members}
        except IntegrityError:
            raise conflict("displayName or externalId is taken in this organization.") from None
        return self.resource_response(group_resource(group, self.base_url, live_members(members)))

    def _check_members(self, member_ids) -> dict[int, Member]:
        """The accounts about to join, each with its displayName; 400 naming any that is not a User here."""
        member_ids = set(member_ids)
        if not member_ids:
            return {}
        found = {pk: Member(name, True) for pk, name in live_accounts(self.organization).filter(pk__in=member_ids)
                 .values_list("pk", "display_name")}
        missing = sorted(member_ids - found.keys())
        if missing:
            raise bad_request(f"No User with id {', '.join(map(str, missing[:10]))} in this organization.")
        return found
