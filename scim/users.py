"""/Users (RFC 7644 §3.3–3.6): accounts, with the AI-governance extension, written through the
accounts and governance services."""
from django.db import IntegrityError
from rest_framework import status
from rest_framework.response import Response

from accounts import services as accounts
from accounts.models import Account
from accounts.selectors import live_accounts
from governance import idp_assertions

from .binding import account_fields, display_name_from_name
from .documents import USER, Document
from .errors import conflict
from .filters import user_filter
from .resource_views import ResourceView, one_transaction
from .resources import groups_of, render_users, user_resource
from .schemas import AI_GOVERNANCE_URN, USER_URN


class UsersView(ResourceView):
    core_urn = USER_URN
    resource_type = "User"

    def base_queryset(self):
        return live_accounts(self.organization)

    def build_filter(self, expression):
        return user_filter(expression)

    def render(self, objects):
        return render_users(objects, self.base_url)

    def create(self, request):
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
