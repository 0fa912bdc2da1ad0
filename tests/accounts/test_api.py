"""People, groups, tokens and roles through the API."""
import pytest

from accounts.models import Account, ApiToken
from audit.models import OutboxEntry

from ..conftest import token_client
from ..factories import AccountFactory, GroupFactory

pytestmark = pytest.mark.django_db


def test_an_admin_provisions_a_group_and_an_account(api, org):
    group = api.post("/api/v1/groups/", {"display_name": "Sales", "external_id": "okta-sales"}, format="json")
    assert group.status_code == 201
    account = api.post("/api/v1/accounts/", {"user_name": "ada@acme.test", "email": "ada@acme.test",
                                             "display_name": "Ada", "groups": [group.json()["id"]]}, format="json")
    assert account.status_code == 201, account.content
    listed = api.get("/api/v1/accounts/", {"group": group.json()["id"]}).json()
    assert [a["user_name"] for a in listed["results"]] == ["ada@acme.test"]
    assert listed["results"][0]["groups"] == [group.json()["id"]]
    kinds = list(OutboxEntry.objects.filter(organization=org).values_list("kind", flat=True))
    assert "group.created" in kinds and "account.provisioned" in kinds


def test_deactivating_keeps_the_account_and_is_recorded(api, org):
    account = AccountFactory(organization=org)
    response = api.patch(f"/api/v1/accounts/{account.pk}/", {"active": False}, format="json")
    assert response.status_code == 200 and response.json()["active"] is False
    assert api.get("/api/v1/accounts/", {"active": "false"}).json()["results"][0]["id"] == account.pk
    assert api.delete(f"/api/v1/accounts/{account.pk}/").status_code == 405
    assert OutboxEntry.objects.get(kind="account.deactivated").subject_account_id == account.pk


def test_moving_an_account_between_groups_bumps_the_policy_version(api, org):
    sales, legal = GroupFactory(organization=org), GroupFactory(organization=org)
    account = AccountFactory(organization=org, groups=[sales])
    before = org.policy_version
    api.patch(f"/api/v1/accounts/{account.pk}/", {"groups": [legal.pk]}, format="json")
    org.refresh_from_db()
    assert list(account.groups.all()) == [legal] and org.policy_version == before + 1


def test_a_user_name_taken_in_the_organization_is_a_conflict(api, org):
    AccountFactory(organization=org, user_name="ada@acme.test")
    response = api.post("/api/v1/accounts/", {"user_name": "ada@acme.test"}, format="json")
    assert response.status_code == 409 and response.json()["errors"][0]["field"] == "user_name"
    assert Account.objects.filter(organization=org).count() == 1


def test_the_same_user_name_may_exist_in_two_organizations(api, other_org):
    AccountFactory(organization=other_org, user_name="ada@acme.test")
    assert api.post("/api/v1/accounts/", {"user_name": "ada@acme.test"}, format="json").status_code == 201


class TestIsolation:
    def test_another_organizations_objects_do_not_exist(self, api, other_org):
        account, group = AccountFactory(organization=other_org), GroupFactory(organization=other_org)
        for path in (f"/api/v1/accounts/{account.pk}/", f"/api/v1/accounts/{account.pk}/effective-policy/",
                     f"/api/v1/groups/{group.pk}/"):
            response = api.get(path)
            assert response.status_code == 404 and response["Content-Type"] == "application/problem+json"
        assert api.patch(f"/api/v1/accounts/{account.pk}/", {"active": False}, format="json").status_code == 404
        account.refresh_from_db()
        assert account.active

    def test_lists_show_only_the_callers_organization(self, api, org, other_org):
        mine, theirs = AccountFactory(organization=org), AccountFactory(organization=other_org)
        ids = [a["id"] for a in api.get("/api/v1/accounts/").json()["results"]]
        assert mine.pk in ids and theirs.pk not in ids

    def test_an_account_cannot_join_another_organizations_group(self, api, other_org):
        foreign = GroupFactory(organization=other_org)
        response = api.post("/api/v1/accounts/", {"user_name": "x@acme.test", "groups": [foreign.pk]}, format="json")
        assert response.status_code == 400 and response.json()["errors"][0]["field"] == "groups"


class TestAuthentication:
    def test_no_token_is_401_problem(self, client, org):
        response = client.get("/api/v1/accounts/")
        assert response.status_code == 401 and response["Content-Type"] == "application/problem+json"
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_tokens_are_stored_only_as_a_hash(self, org):
        client = token_client(org)
        raw = client._credentials["HTTP_AUTHORIZATION"].split()[1]
        token = ApiToken.objects.get(organization=org)
        assert token.digest == ApiToken.digest_of(raw) and raw not in (token.digest, token.hint)
        assert client.get("/api/v1/accounts/").status_code == 200
        token.refresh_from_db()
        assert token.last_used_at is not None

    def test_a_revoked_token_is_refused(self, org):
        from accounts.services import revoke_api_token
        from audit.actors import SYSTEM
        client = token_client(org)
        revoke_api_token(token=ApiToken.objects.get(organization=org), actor=SYSTEM)
        assert client.get("/api/v1/accounts/").status_code == 401

    def test_a_scim_token_cannot_call_the_rest_api(self, org):
        assert token_client(org, scope="scim").get("/api/v1/accounts/").status_code == 401


class TestRoles:
    def test_an_auditor_reads_but_cannot_write(self, auditor_session, org):
        account = AccountFactory(organization=org)
        assert auditor_session.get(f"/api/v1/accounts/{account.pk}/effective-policy/").status_code == 200
        writes = [auditor_session.post("/api/v1/groups/", {"display_name": "X"}, format="json"),
                  auditor_session.patch(f"/api/v1/accounts/{account.pk}/", {"active": False}, format="json"),
                  auditor_session.post("/api/v1/policy-rules/", {"scope": "organization", "feature": "chat_compose",
                                                                 "effect": "allow"}, format="json")]
        assert [r.status_code for r in writes] == [403, 403, 403]
        account.refresh_from_db()
        assert account.active and not OutboxEntry.objects.filter(kind__in=["group.created", "policy.changed"])

    def test_an_admin_session_writes(self, admin_session):
        assert admin_session.post("/api/v1/groups/", {"display_name": "X"}, format="json").status_code == 201

    def test_a_session_without_membership_is_refused(self, client, org):
        from ..factories import UserFactory
        client.force_login(UserFactory())
        assert client.get("/api/v1/accounts/").status_code == 403


class TestLimits:
    def test_a_token_past_its_rate_gets_429_with_retry_after(self, api, monkeypatch):
        from django.core.cache import cache

        from accounts.throttling import PrincipalRateThrottle
        cache.clear()
        monkeypatch.setattr(PrincipalRateThrottle, "THROTTLE_RATES", {"principal": "3/min"})
        statuses = [api.get("/api/v1/catalog/").status_code for _ in range(4)]
        response = api.get("/api/v1/catalog/")
        cache.clear()
        assert statuses == [200, 200, 200, 429]
        assert response.status_code == 429 and int(response["Retry-After"]) > 0
        assert response["Content-Type"] == "application/problem+json"

    def test_an_oversized_body_gets_413_before_it_is_read(self, api, settings):
        settings.API_MAX_BODY_BYTES = 1000
        response = api.post("/api/v1/groups/", {"display_name": "x" * 2000}, format="json")
        assert response.status_code == 413 and response["Content-Type"] == "application/problem+json"

    def test_page_size_goes_up_to_its_maximum_and_no_further(self, api, org, monkeypatch):
        from config.api import CursorPagination
        monkeypatch.setattr(CursorPagination, "max_page_size", 2)
        AccountFactory.create_batch(5, organization=org)
        body = api.get("/api/v1/accounts/", {"page_size": 2}).json()
        assert len(body["results"]) == 2 and body["next"]
        refused = api.get("/api/v1/accounts/", {"page_size": 100000})
        assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "page_size"


def test_an_empty_external_id_is_no_id_and_never_collides(api, org):
    for name in ("A", "B"):
        assert api.post("/api/v1/groups/", {"display_name": name, "external_id": ""}, format="json").status_code == 201
    for user in ("a@acme.test", "b@acme.test"):
        assert api.post("/api/v1/accounts/", {"user_name": user, "external_id": ""}, format="json").status_code == 201
