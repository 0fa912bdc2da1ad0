"""Bad input, from outside: a 4xx problem+json naming what is wrong, nothing written, never a 500.

Each class of input here once answered a 500, tied up a worker or was silently stored as something
else than what was sent. The checks live in one place (config/api.py, config/filters.py,
config/middleware.py), so every serializer and list of every app gets them: these tests go
through several endpoints to show it.
"""
import base64

import pytest

from accounts.models import Account, AccountGroup, Group
from audit.models import OutboxEntry
from governance.models import PolicyRule, TermsVersion

from ..factories import AccountFactory

pytestmark = pytest.mark.django_db

LISTS = ["/api/v1/accounts/", "/api/v1/groups/", "/api/v1/policy-rules/", "/api/v1/terms-versions/",
         "/api/v1/consents/", "/api/v1/flows/", "/api/v1/flow-batches/", "/api/v1/audit-events/",
         "/api/v1/webhooks/", "/api/v1/report-schedules/", "/api/v1/reports/"]
SHA = "0" * 64


def refused(response, *fields, status=400):
    """The response is a problem+json of `status` naming exactly `fields`; returns its body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    if fields:
        assert {error["field"] for error in body["errors"]} == set(fields), body
    return body


@pytest.fixture
def account(org):
    return AccountFactory(organization=org)


@pytest.fixture
def nothing_written(org):
    """Whatever a test sends, no row and no audit event comes of it."""
    counts = lambda: (Account.objects.count(), Group.objects.count(), AccountGroup.objects.count(),  # noqa: E731
                      PolicyRule.objects.count(), TermsVersion.objects.count(), OutboxEntry.objects.count())
    before = counts()
    yield
    assert counts() == before


class TestIdLists:
    def test_a_group_named_twice_is_refused_on_create_and_on_change(self, api, sales, account, nothing_written):
        refused(api.post("/api/v1/accounts/", {"user_name": "ada@acme.test", "groups": [sales.pk, sales.pk]},
                         format="json"), "groups")
        refused(api.patch(f"/api/v1/accounts/{account.pk}/", {"groups": [sales.pk, sales.pk]}, format="json"),
                "groups")

    def test_any_list_with_a_repeated_item_is_refused(self, api, nothing_written):
        cover = {"data_category": "content.audio", "purpose": "ai.inference"}
        refused(api.post("/api/v1/terms-versions/", {"version": "v1", "effective_at": "2026-01-01T00:00:00Z",
                                                     "text_sha256": SHA, "covers": [cover, dict(cover)]},
                         format="json"), "covers")
        refused(api.post("/api/v1/decisions/", {"accounts": ["ada@acme.test", "ada@acme.test"],
                                                "data_category": "content.audio", "purpose": "ai.inference"},
                         format="json"), "accounts")

    def test_a_list_past_its_limit_is_refused_before_any_lookup(self, api, org, nothing_written,
                                                                 django_assert_max_num_queries):
        with django_assert_max_num_queries(5):  # the token and the throttle, not one query per id
            body = refused(api.post("/api/v1/accounts/", {"user_name": "ada@acme.test",
                                                          "groups": list(range(1, 20_002))}, format="json"),
                           "groups")
        assert "1000" in body["errors"][0]["detail"]

    def test_a_long_list_of_groups_is_looked_up_in_one_query(self, api, org, django_assert_max_num_queries):
        groups = Group.objects.bulk_create([Group(organization=org, display_name=f"G{n}") for n in range(300)])
        with django_assert_max_num_queries(30):
            response = api.post("/api/v1/accounts/", {"user_name": "ada@acme.test",
                                                      "groups": [g.pk for g in groups]}, format="json")
        assert response.status_code == 201, response.content
        assert sorted(response.json()["groups"]) == sorted(g.pk for g in groups)

    def test_a_group_that_does_not_exist_is_named(self, api, sales, nothing_written):
        body = refused(api.post("/api/v1/accounts/", {"user_name": "ada@acme.test",
                                                      "groups": [sales.pk, 9_000_000]}, format="json"), "groups")
        assert "9000000" in body["errors"][0]["detail"]


class TestTypesAreStrict:
    @pytest.mark.parametrize("body, field", [
        ({"user_name": "ada@acme.test", "groups": [14.5]}, "groups[0]"),
        ({"user_name": "ada@acme.test", "groups": ["14"]}, "groups[0]"),
        ({"user_name": "ada@acme.test", "groups": [2**64 - 1]}, "groups[0]"),
        ({"user_name": "ada@acme.test", "groups": [2**70]}, "groups[0]"),
        ({"user_name": "ada@acme.test", "groups": [True]}, "groups[0]"),
        ({"user_name": "ada@acme.test", "active": "false"}, "active"),
        ({"user_name": "ada@acme.test", "active": 0}, "active"),
        ({"user_name": 5}, "user_name"),
        ({"user_name": ["ada@acme.test"]}, "user_name"),
        ({"user_name": "ada@acme.test", "groups": 14}, "groups"),
        ({"user_name": "ada@acme.test", "email": "a" * 250 + "@x.test"}, "email"),
    ])
    def test_an_account_field_of_the_wrong_json_type_is_refused(self, api, body, field, nothing_written):
        refused(api.post("/api/v1/accounts/", body, format="json"), field)

    @pytest.mark.parametrize("body, field", [
        ({"locked": "true"}, "locked"),
        ({"group": "1", "scope": "group"}, "group"),
        ({"group": 1.0, "scope": "group"}, "group"),
        ({"reason": 12}, "reason"),
        ({"reason": "x" * 10_001}, "reason"),
        ({"effect": 1}, "effect"),
        ({"feature": ""}, "feature"),
        ({"account": "ada\u0000@acme.test", "scope": "account"}, "account"),
        ({"expires_at": "2999-01-01 10:00"}, "expires_at"),
    ])
    def test_a_rule_field_of_the_wrong_json_type_is_refused(self, api, body, field, nothing_written):
        rule = {"scope": "organization", "feature": "chat_compose", "effect": "allow"}
        refused(api.post("/api/v1/policy-rules/", {**rule, **body}, format="json"), field)

    def test_a_key_the_api_only_shows_is_refused(self, api, account, nothing_written):
        refused(api.post("/api/v1/accounts/", {"user_name": "ada@acme.test", "id": 5}, format="json"), "id")
        refused(api.patch(f"/api/v1/accounts/{account.pk}/", {"created_at": "2020-01-01T00:00:00Z"},
                          format="json"), "created_at")

    def test_terms_covering_an_entry_with_odd_keys_and_a_float_are_refused(self, api, nothing_written):
        terms = {"version": "v1", "effective_at": "2026-01-01T00:00:00Z", "text_sha256": SHA}
        for cover in ({"data_category": 0.5, "purpose": "ai.inference"},
                      {"data_category": "content.audio", "purpose": "ai.inference", "\u0000": 1.5},
                      {"data_category": "content.audio\u0000", "purpose": "ai.inference"}, [1.5], 1.5):
            response = api.post("/api/v1/terms-versions/", {**terms, "covers": [cover]}, format="json")
            assert response.status_code == 400, (cover, response.content)

    @pytest.mark.parametrize("at", ["2026-13-45T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-01 10:00",
                                    "0001-01-01T00:00:00+01:00", None, 1767225600])
    def test_a_decision_instant_that_is_no_date_time_is_refused(self, api, org, at):
        AccountFactory(organization=org, user_name="ada@acme.test")
        refused(api.post("/api/v1/decisions/", {"account": "ada@acme.test", "data_category": "content.audio",
                                                "purpose": "ai.inference", "at": at}, format="json"), "at")

    def test_strings_are_stored_as_sent(self, api):
        response = api.post("/api/v1/groups/", {"display_name": " Sales "}, format="json")
        assert response.status_code == 201 and response.json()["display_name"] == " Sales "


class TestListParameters:
    @pytest.mark.parametrize("path", LISTS)
    def test_a_made_up_cursor_is_a_400_naming_it_on_every_list(self, api, path):
        for token in ("p=abc", "p=99999999999999999999999999", "r=x", "o=x"):
            refused(api.get(path, {"cursor": base64.b64encode(token.encode()).decode()}), "cursor")
        refused(api.get(path, {"cursor": "%%%"}), "cursor")

    @pytest.mark.parametrize("page_size", ["abc", "0", "-1", "1.5", "1001", "9" * 5000])
    def test_page_size_is_an_integer_from_1_to_1000(self, api, page_size):
        refused(api.get("/api/v1/accounts/", {"page_size": page_size}), "page_size")

    @pytest.mark.parametrize("path, parameter", [
        ("/api/v1/accounts/", "group"), ("/api/v1/policy-rules/", "group"), ("/api/v1/flows/", "batch"),
        ("/api/v1/reports/", "schedule")])
    @pytest.mark.parametrize("value", ["999999999999999999999999999", "9223372036854775808", "abc", "1.0", "1e3",
                                       "-1", "0"])
    def test_an_id_filter_takes_an_id_only(self, api, path, parameter, value):
        refused(api.get(path, {parameter: value}), parameter)

    @pytest.mark.parametrize("path, parameter", [
        ("/api/v1/accounts/", "active"), ("/api/v1/policy-rules/", "locked"), ("/api/v1/report-schedules/", "active")])
    def test_a_boolean_filter_takes_true_or_false_only(self, api, path, parameter):
        for value in ("maybe", "1", "True", "yes"):
            refused(api.get(path, {parameter: value}), parameter)

    def test_boolean_and_id_filters_still_filter(self, api, org, sales):
        inactive = AccountFactory(organization=org, active=False, groups=[sales])
        AccountFactory(organization=org)
        assert [a["id"] for a in api.get("/api/v1/accounts/", {"active": "false"}).json()["results"]] == [inactive.pk]
        assert [a["id"] for a in api.get("/api/v1/accounts/", {"group": sales.pk}).json()["results"]] == [inactive.pk]

    @pytest.mark.parametrize("path", ["/api/v1/accounts/", "/api/v1/audit-events/", "/api/v1/flows/"])
    def test_a_parameter_the_list_does_not_take_is_refused(self, api, path):
        refused(api.get(path, {"activ": "true"}), "activ")

    def test_an_empty_or_repeated_parameter_is_refused(self, api):
        refused(api.get("/api/v1/accounts/?active="), "active")
        refused(api.get("/api/v1/audit-events/?occurred_after="), "occurred_after")
        refused(api.get("/api/v1/exposure/?until="), "until")
        refused(api.get("/api/v1/accounts/?group=1&group=2"), "group")

    def test_a_date_filter_out_of_range_is_refused(self, api):
        refused(api.get("/api/v1/audit-events/", {"occurred_after": "0001-01-01T00:00:00+01:00"}), "occurred_after")
        refused(api.get("/api/v1/flows/", {"occurred_before": "not a date"}), "occurred_before")


class TestBodies:
    def test_a_body_past_djangos_form_limit_but_within_the_apis_gets_a_problem_not_html(self, api, nothing_written):
        body = b'{"display_name": "' + b"x" * (3 * 2**20) + b'"}'  # 3 MB: past Django's 2.5 MB, under 16 MB
        refused(api.post("/api/v1/groups/", body, content_type="application/json"), "display_name")

    def test_a_flow_batch_of_several_megabytes_is_read(self, api, org):
        body = b'{"flows": [' + b",".join([b'{"flow_id": "' + b"f" * 190 + b'%d"}' % n for n in range(15_000)]) + b"]}"
        assert len(body) > 2.5 * 2**20
        refused(api.post("/api/v1/flows/", body, content_type="application/json"), "flows")

    def test_a_body_past_the_api_limit_gets_413(self, api, settings, nothing_written):
        settings.API_MAX_BODY_BYTES = 1000
        refused(api.post("/api/v1/groups/", {"display_name": "x" * 2000}, format="json"), status=413)

    def test_a_chunked_body_without_a_length_gets_411_not_an_empty_request(self, api, nothing_written):
        refused(api.generic("POST", "/api/v1/groups/", b"", content_type="application/json",
                            HTTP_TRANSFER_ENCODING="chunked"), status=411)


class TestProblemTitles:
    def test_415_and_405_name_the_media_type_and_method(self, api, account, nothing_written):
        unsupported = refused(api.post("/api/v1/groups/", "x", content_type="text/plain"), status=415)
        not_allowed = refused(api.delete(f"/api/v1/accounts/{account.pk}/"), status=405)
        assert "{" not in unsupported["title"] and "text/plain" in unsupported["detail"]
        assert "{" not in not_allowed["title"] and "DELETE" in not_allowed["detail"]


class TestSchemaSaysWhatTheAPIEnforces:
    @pytest.fixture
    def schema(self, api):
        return api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    def test_account_groups_are_integer_ids(self, schema):
        for name in ("Account", "AccountRequest", "PatchedAccountRequest"):
            assert schema["components"]["schemas"][name]["properties"]["groups"]["items"]["type"] == "integer"

    def test_every_request_body_refuses_unknown_keys_and_bounds_its_lists_and_strings(self, schema):
        unbounded = []
        for name, component in schema["components"]["schemas"].items():
            if not name.endswith("Request") or "properties" not in component:  # not a oneOf of two bodies
                continue
            if component.get("additionalProperties") is not False:
                unbounded.append(f"{name}: additionalProperties")
            for field, prop in component.get("properties", {}).items():
                kind = prop.get("type")
                if kind == "array" and "maxItems" not in prop:
                    unbounded.append(f"{name}.{field}: maxItems")
                if kind == "string" and not {"maxLength", "enum", "format"} & set(prop):
                    unbounded.append(f"{name}.{field}: maxLength")
        assert not unbounded

    def test_list_parameters_declare_their_bounds(self, schema):
        parameters = {p["name"]: p["schema"] for p in schema["paths"]["/api/v1/accounts/"]["get"]["parameters"]}
        assert parameters["page_size"] == {"type": "integer", "minimum": 1, "maximum": 1000}
        assert parameters["group"]["type"] == "integer" and parameters["group"]["maximum"] == 2**63 - 1
        assert parameters["active"]["type"] == "boolean"
