"""Policy rules and effective policy through the API, as an admin or a service would use them."""
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import OutboxEntry
from governance.models import PolicyRule, PolicyRuleVersion

from ..factories import AccountFactory, GroupFactory

pytestmark = pytest.mark.django_db
RULES = "/api/v1/policy-rules/"


def effective(api, account, **query):
    response = api.get(f"/api/v1/accounts/{account.pk}/effective-policy/", query)
    assert response.status_code == 200, response.content
    body = response.json()
    return {item["feature"]: item for item in body["features"]} | {
        (item["data_category"], item["purpose"]): item for item in body["data_sharing"]}


def test_a_locked_organization_rule_changes_every_account_under_it(api, org, sales, people):
    # given a group that allows chat compose, and one of its people who opted out
    api.post(RULES, {"scope": "group", "group": sales.pk, "feature": "chat_compose", "effect": "allow"}, format="json")
    api.post(RULES, {"scope": "account", "account": people[0].user_name, "feature": "chat_compose",
                     "effect": "deny"}, format="json")
    assert [effective(api, p)["chat_compose"]["effect"] for p in people] == ["deny", "allow", "allow"]

    # when the organization locks chat compose on
    response = api.post(RULES, {"scope": "organization", "feature": "chat_compose", "effect": "allow",
                                "locked": True, "reason": "Company-wide rollout"}, format="json")

    # then every account has it, the opt-out is shown as overridden by the lock
    assert response.status_code == 201
    values = [effective(api, p)["chat_compose"] for p in people]
    assert [v["effect"] for v in values] == ["allow"] * 3
    assert all(v["explanation"]["locked_by"]["rule"] == response.json()["id"] for v in values)
    assert values[0]["explanation"]["overridden_by_lock"][-1]["scope"] == "account"


def test_posting_the_same_switch_again_changes_it_and_keeps_its_history(api, org):
    first = api.post(RULES, {"scope": "organization", "feature": "transcription", "effect": "allow"}, format="json")
    again = api.post(RULES, {"scope": "organization", "feature": "transcription", "effect": "deny",
                             "reason": "Vendor changed terms"}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["effect"] == "deny"
    assert PolicyRule.objects.filter(organization=org, deleted_at__isnull=True).count() == 1
    assert list(PolicyRuleVersion.objects.filter(rule_id=first.json()["id"]).values_list("effect", flat=True)) == [
        "allow", "deny"]


def test_effective_policy_at_a_past_instant_shows_the_old_value(api, org, people):
    rule = api.post(RULES, {"scope": "organization", "feature": "meeting_summary", "effect": "allow"},
                    format="json").json()
    before_change = timezone.now()
    api.patch(f"{RULES}{rule['id']}/", {"effect": "deny"}, format="json")
    api.delete(f"{RULES}{rule['id']}/")

    assert effective(api, people[0])["meeting_summary"]["decided_by"] == "default"
    past = effective(api, people[0], at=before_change.isoformat())["meeting_summary"]
    assert past["effect"] == "allow" and past["explanation"]["applied"][0]["rule"] == rule["id"]


def test_an_expired_rule_stops_applying_by_itself(api, org, people):
    rule = PolicyRule.objects.get(pk=api.post(RULES, {
        "scope": "organization", "feature": "meeting_summary", "effect": "allow",
        "expires_at": (timezone.now() + timedelta(days=30)).isoformat()}, format="json").json()["id"])
    assert effective(api, people[0])["meeting_summary"]["effect"] == "allow"
    # the pilot ended: move its expiry into the past behind the API's back, as time would
    PolicyRuleVersion.objects.filter(rule=rule).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert effective(api, people[0])["meeting_summary"]["effect"] == "deny"


def test_pair_rules_are_listed_and_filtered_by_key(api, org, sales):
    api.post(RULES, {"scope": "group", "group": sales.pk, "data_category": "content.chat",
                     "purpose": "ai.training.first_party", "effect": "deny", "locked": True}, format="json")
    api.post(RULES, {"scope": "organization", "feature": "chat_compose", "effect": "allow"}, format="json")
    listed = api.get(RULES, {"data_category": "content.chat"}).json()["results"]
    assert [(r["scope"], r["group"], r["purpose"], r["locked"]) for r in listed] == [
        ("group", sales.pk, "ai.training.first_party", True)]


def test_every_change_is_recorded_with_actor_and_before_after(api, org):
    rule = api.post(RULES, {"scope": "organization", "feature": "meeting_summary", "effect": "allow",
                            "reason": "pilot"}, format="json").json()
    api.patch(f"{RULES}{rule['id']}/", {"locked": True, "reason": "rollout"}, format="json")
    api.delete(f"{RULES}{rule['id']}/", {"reason": "pilot over"}, format="json")
    entries = list(OutboxEntry.objects.filter(organization=org, kind="policy.changed").order_by("id"))
    assert [e.payload["action"] for e in entries] == ["created", "changed", "deleted"]
    assert entries[1].payload["before"]["locked"] is False and entries[1].payload["after"]["locked"] is True
    assert entries[2].payload["reason"] == "pilot over"
    assert all(e.actor["kind"] == "token" for e in entries)
    assert [e.payload["policy_version"] for e in entries] == sorted(e.payload["policy_version"] for e in entries)


class TestBadInput:
    """Each gets a 4xx problem+json naming the field, and nothing is written."""

    @pytest.fixture(autouse=True)
    def nothing_written(self, org):
        yield
        assert not PolicyRule.objects.exists()
        assert not OutboxEntry.objects.filter(kind="policy.changed").exists()

    def post(self, api, body, **kwargs):
        response = api.post(RULES, body, **kwargs)
        assert 400 <= response.status_code < 500, response.content
        assert response["Content-Type"] == "application/problem+json"
        return response.json()

    def fields(self, problem):
        return {error["field"] for error in problem.get("errors", [])}

    def test_malformed_json(self, api):
        problem = self.post(api, b"{not json", content_type="application/json")
        assert problem["status"] == 400 and "JSON" in problem["detail"]

    def test_unknown_key(self, api):
        assert "efect" in self.fields(self.post(api, {"scope": "organization", "feature": "chat_compose",
                                                      "efect": "allow"}, format="json"))

    def test_wrong_types(self, api):
        problem = self.post(api, {"scope": "organization", "feature": "chat_compose", "effect": "allow",
                                  "locked": "perhaps", "expires_at": 12}, format="json")
        assert {"locked", "expires_at"} <= self.fields(problem)

    def test_unknown_catalog_key(self, api):
        assert "feature" in self.fields(self.post(api, {"scope": "organization", "feature": "mind_reading",
                                                        "effect": "allow"}, format="json"))

    def test_a_group_of_another_organization(self, api, other_org):
        foreign = GroupFactory(organization=other_org)
        assert "group" in self.fields(self.post(api, {"scope": "group", "group": foreign.pk,
                                                      "feature": "chat_compose", "effect": "deny"}, format="json"))

    def test_an_account_of_another_organization(self, api, other_org):
        foreign = AccountFactory(organization=other_org)
        assert "account" in self.fields(self.post(api, {"scope": "account", "account": foreign.user_name,
                                                        "feature": "chat_compose", "effect": "deny"}, format="json"))

    def test_scope_without_its_subject(self, api):
        assert "scope" in self.fields(self.post(api, {"scope": "group", "feature": "chat_compose", "effect": "deny"},
                                                format="json"))

    def test_feature_and_pair_together(self, api):
        assert "feature" in self.fields(self.post(api, {
            "scope": "organization", "feature": "chat_compose", "data_category": "content.chat",
            "purpose": "ai.inference", "effect": "deny"}, format="json"))

    def test_category_without_purpose(self, api):
        assert "purpose" in self.fields(self.post(api, {"scope": "organization", "data_category": "content.chat",
                                                        "effect": "deny"}, format="json"))

    def test_expiry_in_the_past(self, api):
        assert "expires_at" in self.fields(self.post(api, {
            "scope": "organization", "feature": "chat_compose", "effect": "allow",
            "expires_at": (timezone.now() - timedelta(hours=1)).isoformat()}, format="json"))

    def test_effective_policy_in_the_future(self, api, org):
        account = AccountFactory(organization=org)
        response = api.get(f"/api/v1/accounts/{account.pk}/effective-policy/",
                           {"at": (timezone.now() + timedelta(days=1)).isoformat()})
        assert response.status_code == 400 and "at" in self.fields(response.json())


def test_patch_cannot_change_a_rules_target(api, org):
    rule = api.post(RULES, {"scope": "organization", "feature": "chat_compose", "effect": "allow"},
                    format="json").json()
    response = api.patch(f"{RULES}{rule['id']}/", {"feature": "transcription"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "feature"
    assert api.get(f"{RULES}{rule['id']}/").json()["feature"] == "chat_compose"
