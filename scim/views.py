"""The SCIM endpoints: discovery, Users and Groups (RFC 7644 §3–4), for the token's organization only."""
from contextlib import nullcontext

from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.urls import reverse
import orjson
from rest_framework import status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services as accounts
from accounts.models import Account, Group
from accounts.selectors import live_accounts, live_groups
from accounts.throttling import ScimTokenRateThrottle
from audit.actors import Actor
from config.formats import JSONRenderer
from governance import idp_assertions

from .authentication import ScimTokenAuthentication, ScimTokenPermission
from .binding import account_fields, display_name_from_name, group_fields
from .documents import GROUP, USER, Document
from .errors import SCIM_CONTENT_TYPE, ScimError, bad_request, conflict, not_found, scim_exception_handler
from .filters import group_filter, user_filter
from .resources import (Member, group_members, group_resource, groups_of, live_members,
                        parse_attribute_list, project, render_groups, render_users, user_resource)
from .schemas import (AI_GOVERNANCE_URN, DEFAULT_COUNT, GROUP_URN, LIST_RESPONSE_URN, MAX_RESULTS, RESOURCE_TYPES,
                      SCHEMAS, USER_URN, resource_type_resource, schema_resource, service_provider_config)

MAX_PAYLOAD_BYTES = 10 * 2**20
MAX_START_INDEX = 2**31  # past any table: an empty page, not an overflow


class ScimJSONParser(BaseParser):
    """JSON bodies, whatever content type the client names (IdPs send application/scim+json)."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(MAX_PAYLOAD_BYTES + 1) if stream is not None else b""
        if len(raw) > MAX_PAYLOAD_BYTES:
            raise ScimError(413, f"The body is larger than {MAX_PAYLOAD_BYTES} bytes.")
        if not raw.strip():
            return {}
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise bad_request(f"The body is not valid JSON: {error}", "invalidSyntax") from None


class ScimRenderer(JSONRenderer):
    media_type = SCIM_CONTENT_TYPE
    format = "scim"
    charset = None


class ScimNegotiation(BaseContentNegotiation):
    """Always application/scim+json (RFC 7644 §3.1): an Accept header never turns an answer into a 406."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ScimView(APIView):
    authentication_classes = [ScimTokenAuthentication]
    permission_classes = [ScimTokenPermission]
    parser_classes = [ScimJSONParser]
    renderer_classes = [ScimRenderer]
    content_negotiation_class = ScimNegotiation
    throttle_classes = [ScimTokenRateThrottle]  # 429 with Retry-After, which Okta and Entra honour
    schema = None  # not part of the REST API's OpenAPI document

    def get_exception_handler(self):
        return scim_exception_handler

    @property
    def organization(self):
        return self.request.user.organization

    @property
    def actor(self) -> Actor:
        """Writes are attributed to the identity provider holding the token (DESIGN §7: drift)."""
        token = self.request.auth
        return Actor("idp", token.pk, token.name)

    @property
    def base_url(self) -> str:
        return self.request.build_absolute_uri(reverse("scim:root")).rstrip("/")

    def params(self) -> dict:
        """Query parameters by lower-cased name (Entra appends its own, such as aadOptscim062020)."""
        return {key.lower(): value for key, value in self.request.query_params.items()}


def one_transaction(several_writes):
    """Several service calls commit together; a single one is its own transaction already."""
    return transaction.atomic() if several_writes else nullcontext()


def _integer(value, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise bad_request(f"{name} must be an integer.")
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"{name} must be an integer, not {value!r}.") from None


def paging(params: dict) -> tuple[int, int]:
    """(startIndex, count): startIndex below 1 reads as 1 and count is capped (RFC 7644 §3.4.2.4)."""
    start_index = min(max(_integer(params.get("startindex"), "startIndex", 1), 1), MAX_START_INDEX)
    count = min(max(_integer(params.get("count"), "count", DEFAULT_COUNT), 0), MAX_RESULTS)
    return start_index, count


def _attribute_param(value, name: str):
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise bad_request(f"{name} is a list of attribute names.")
        return ",".join(value)
    return value


def projection(params: dict, core_urn: str):
    """The `attributes` and `excludedAttributes` of a request (query or SearchRequest)."""
    attributes = parse_attribute_list(_attribute_param(params.get("attributes"), "attributes"), core_urn)
    excluded = parse_attribute_list(_attribute_param(params.get("excludedattributes"), "excludedAttributes"),
                                    core_urn)
    if attributes and excluded:
        raise bad_request("attributes and excludedAttributes exclude each other.", "invalidSyntax")
    return attributes, excluded


# ---------------------------------------------------------------------------------------------------
# Discovery (RFC 7644 §4)

def _list(resources: list[dict], start_index: int = 1, total: int | None = None) -> dict:
    return {"schemas": [LIST_RESPONSE_URN], "totalResults": len(resources) if total is None else total,
            "startIndex": start_index, "itemsPerPage": len(resources), "Resources": resources}


class ServiceProviderConfigView(ScimView):
    def get(self, request):
        return Response(service_provider_config(self.base_url))


class ResourceTypesView(ScimView):
    def get(self, request, name=None):
        if name is None:
            if self.params().get("filter"):
                raise ScimError(403, "ResourceTypes cannot be filtered.")
            return Response(_list([resource_type_resource(n, self.base_url) for n in RESOURCE_TYPES]))
        if name not in RESOURCE_TYPES:
            raise not_found(f"No resource type {name!r}.")
        return Response(resource_type_resource(name, self.base_url))


class SchemasView(ScimView):
    def get(self, request, urn=None):
        if urn is None:
            if self.params().get("filter"):
                raise ScimError(403, "Schemas cannot be filtered.")
            return Response(_list([schema_resource(u, self.base_url) for u in SCHEMAS]))
        found = next((u for u in SCHEMAS if u.lower() == urn.lower()), None)
        if found is None:
            raise not_found(f"No schema {urn!r}.")
        return Response(schema_resource(found, self.base_url))


class RootSearchView(ScimView):
    """POST /.search (RFC 7644 §3.4.3): Users and Groups at once, newest first.

    An attribute only one of the types has is false for the other (§3.4.2.1). Pages reach the
    first 10,000 results; a narrower filter finds the rest.
    """

    WINDOW = 10_000

    def post(self, request):
        body = request.data
        if not isinstance(body, dict):
            raise bad_request("A SearchRequest is a JSON object.", "invalidSyntax")
        params = {key.lower(): value for key, value in body.items() if isinstance(key, str)}
        users, groups = live_accounts(self.organization), live_groups(self.organization)
        expression = params.get("filter")
        if expression is not None:
            if not isinstance(expression, str) or not expression.strip():
                raise bad_request("filter must be a non-empty string.", "invalidFilter")
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
        return Response(_list(resources, start_index, users.count() + groups.count()))


class NotImplementedView(ScimView):
    """Bulk and /Me are not offered (ServiceProviderConfig says so for Bulk)."""

    def _refuse(self, request, *args, **kwargs):
        raise ScimError(501, f"{request.path} is not implemented by this server.")

    get = post = put = patch = delete = _refuse


# ---------------------------------------------------------------------------------------------------
# Users and Groups

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
        expression = params.get("filter")
        if expression is not None:
            if not isinstance(expression, str) or not expression.strip():
                raise bad_request("filter must be a non-empty string.", "invalidFilter")
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
        return Response(_list(resources, start_index, total))

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
        if not _etag_matches(wanted, version):
            raise ScimError(412, f"The {self.resource_type} changed: its version is now {version}.")

    def get(self, request, resource_id=None):
        if resource_id is None:
            return self.list_response(self.params())
        resource = self.current(self.get_object(resource_id))
        wanted = request.headers.get("If-None-Match")
        if wanted is not None and _etag_matches(wanted, resource["meta"]["version"]):
            response = HttpResponse(status=304)
            response["ETag"] = resource["meta"]["version"]
            return response
        return self.resource_response(resource)

    def search(self, request):
        body = request.data
        if not isinstance(body, dict):
            raise bad_request("A SearchRequest is a JSON object.", "invalidSyntax")
        params = {key.lower(): value for key, value in body.items() if isinstance(key, str)}
        params.pop("schemas", None)
        return self.list_response(params)


def _etag_matches(header: str, version: str) -> bool:
    """Weak comparison (RFC 9110 §8.8.3.2): W/ prefixes are ignored; '*' matches any version."""
    def bare(tag):
        tag = tag.strip()
        return tag[2:] if tag.startswith("W/") else tag
    tags = [bare(tag) for tag in header.split(",")]
    return "*" in tags or bare(version) in tags


class UsersView(ResourceView):
    core_urn = USER_URN
    resource_type = "User"

    def base_queryset(self):
        return live_accounts(self.organization)

    def build_filter(self, expression):
        return user_filter(expression)

    def render(self, objects):
        return render_users(objects, self.base_url)

    def post(self, request, resource_id=None):
        if resource_id is not None:
            if resource_id == ".search":
                return self.search(request)
            raise ScimError(405, "POST creates Users at /Users.")
        document = Document.from_body(USER, request.data)
        fields = account_fields(document, default_active=True)
        fields["display_name"] = fields["display_name"] or display_name_from_name(request.data)
        try:
            with one_transaction(idp_assertions.changes(idp_assertions.blank(), document.extension)):
                account = accounts.create_account(organization=self.organization, actor=self.actor,
                                                  user_name_any_case=True, **fields)
                idp_assertions.apply(account=account, actor=self.actor, before=idp_assertions.blank(),
                                     after=document.extension, schema=AI_GOVERNANCE_URN)
        except IntegrityError:
            raise conflict("userName or externalId is taken in this organization.") from None
        # A new account has no groups yet, and its extension holds what this request said.
        resource = user_resource(account, self.base_url, [], document.extension)
        return self.resource_response(resource, status_code=status.HTTP_201_CREATED)

    def put(self, request, resource_id=None):
        self.require_id(resource_id)
        account = self.get_object(resource_id)
        self.check_precondition(account)
        document = Document.from_body(USER, request.data, resource_id=str(account.pk))
        fields = account_fields(document, default_active=account.active)
        fields["display_name"] = fields["display_name"] or display_name_from_name(request.data)
        return self._update(account, fields, document, self._asserted(account))

    def patch(self, request, resource_id=None):
        self.require_id(resource_id)
        account = self.get_object(resource_id)
        self.check_precondition(account)
        before = self._asserted(account)
        document = Document(USER, {
            "userName": account.user_name, "displayName": account.display_name or None,
            "externalId": account.external_id, "active": account.active,
            "emails": [{"value": account.email, "type": "work", "primary": True}] if account.email else [],
        }, str(account.pk), dict(before))
        document.patch(request.data)
        return self._update(account, account_fields(document, default_active=account.active), document, before)

    def delete(self, request, resource_id=None):
        self.require_id(resource_id)
        account = self.get_object(resource_id)
        self.check_precondition(account)
        accounts.delete_account(account=account, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _asserted(self, account: Account) -> dict:
        return idp_assertions.asserted(self.organization, [account.pk])[account.pk]

    def _update(self, account: Account, fields: dict, document: Document, asserted: dict) -> Response:
        changes = {name: value for name, value in fields.items() if getattr(account, name) != value}
        try:
            with one_transaction(changes and idp_assertions.changes(asserted, document.extension)):
                if changes:
                    account = accounts.update_account(account=account, actor=self.actor, user_name_any_case=True,
                                                      **changes)
                idp_assertions.apply(account=account, actor=self.actor, before=asserted, after=document.extension,
                                     schema=AI_GOVERNANCE_URN)
        except IntegrityError:
            raise conflict("userName or externalId is taken in this organization.") from None
        groups = groups_of([account.pk]).get(account.pk, [])
        return self.resource_response(user_resource(account, self.base_url, groups, document.extension))


class GroupsView(ResourceView):
    core_urn = GROUP_URN
    resource_type = "Group"

    def base_queryset(self):
        return live_groups(self.organization)

    def build_filter(self, expression):
        return group_filter(expression)

    def render(self, objects):
        return render_groups(objects, self.base_url)

    def post(self, request, resource_id=None):
        if resource_id is not None:
            if resource_id == ".search":
                return self.search(request)
            raise ScimError(405, "POST creates Groups at /Groups.")
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
