"""The story of DESIGN §1, replayed through the API: every answer right, now and as of the past."""
import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Organization
from audit.models import OutboxEntry
from governance.models import ConsentEvent, PolicyRule, PolicyRuleVersion

from ..factories import AccountFactory, GroupFactory

pytestmark = pytest.mark.django_db
TRANSCRIPT_TRAINING = {"data_category": "content.transcript", "purpose": "ai.training.first_party"}


def decide(api, **body):
    response = api.post("/api/v1/decisions/", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def consent(api, user_name, action="grant", **extra):
    body = {"account": user_name, "action": action, "mechanism": "self_service", **TRANSCRIPT_TRAINING, **extra}
    response = api.post("/api/v1/consents/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def terms(api, version, effective_at, *, reconsent=False):
    response = api.post("/api/v1/terms-versions/", {
        "version": version, "effective_at": effective_at.isoformat(),
        "text_sha256": hashlib.sha256(version.encode()).hexdigest(),
        "covers": [TRANSCRIPT_TRAINING], "requires_reconsent": reconsent}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def ada(org, sales):
    return AccountFactory(organization=org, user_name="ada@acme.test", groups=[sales])


@pytest.fixture
def bob(org, sales):
    return AccountFactory(organization=org, user_name="bob@acme.test", groups=[sales])


@pytest.fixture
def carol(org):
    return AccountFactory(organization=org, user_name="carol@acme.test")


def backdate_rules(org, days):
    """Arrange history: the rules set up for a test have been in force for `days` already."""
    PolicyRuleVersion.objects.filter(organization=org).update(valid_from=timezone.now() - timedelta(days=days))
    Organization.objects.filter(pk=org.pk).update(policy_version=org.policy_version + 1000)


def test_an_owner_enables_meeting_summary_for_a_group(api, sales, ada, carol):
    summary_input = {"data_category": "content.transcript", "purpose": "ai.inference"}
    assert decide(api, account=ada.user_name, **summary_input)["allowed"] is False
    api.post("/api/v1/policy-rules/", {"scope": "group", "group": sales.pk, "feature": "meeting_summary",
                                       "effect": "allow"}, format="json")
    answer = decide(api, account=ada.user_name, **summary_input)
    assert answer["allowed"] is True and answer["reasons"][0]["enabled_by_features"] == ["meeting_summary"]
    assert decide(api, account=carol.user_name, **summary_input)["allowed"] is False


def test_a_participant_who_never_consented_blocks_training_on_the_meetings_transcript(api, org, ada, bob, carol):
    api.post("/api/v1/policy-rules/", {"scope": "organization", **TRANSCRIPT_TRAINING, "effect": "allow"},
             format="json")
    consent(api, ada.user_name)
    consent(api, carol.user_name, mechanism="join_or_leave_prompt")
    answer = decide(api, accounts=[ada.user_name, bob.user_name, carol.user_name], **TRANSCRIPT_TRAINING)
    assert answer["allowed"] is False and answer["blocking_accounts"] == [bob.user_name]
    codes = {(r["account"], r["code"]) for r in answer["reasons"]}
    assert (bob.user_name, "consent_missing") in codes and (ada.user_name, "consent_valid") in codes
    carol_consent = next(r for r in answer["reasons"] if r["account"] == carol.user_name and "consent" in r)
    assert carol_consent["freely_given"] is False
    assert answer["policy_version"] == Organization.objects.get(pk=org.pk).policy_version


def test_a_march_consent_goes_stale_when_the_august_terms_take_effect(api, org, ada):
    now = timezone.now()
    march, august = now - timedelta(days=120), now - timedelta(days=5)
    terms(api, "march", march)
    api.post("/api/v1/policy-rules/", {"scope": "organization", **TRANSCRIPT_TRAINING, "effect": "allow"},
             format="json")
    backdate_rules(org, 200)
    consent(api, ada.user_name, terms_version="march", occurred_at=(march + timedelta(days=10)).isoformat())
    assert decide(api, account=ada.user_name, **TRANSCRIPT_TRAINING)["allowed"] is True

    terms(api, "august", august, reconsent=True)
    now_answer = decide(api, account=ada.user_name, **TRANSCRIPT_TRAINING)
    assert now_answer["allowed"] is False
    assert now_answer["reasons"][1]["code"] == "consent_stale"
    assert now_answer["reasons"][1]["stale_since_terms"] == "august"
    before_august = decide(api, account=ada.user_name, at=(august - timedelta(days=1)).isoformat(),
                           **TRANSCRIPT_TRAINING)
    assert before_august["allowed"] is True
    listed = api.get("/api/v1/consents/", {"account": ada.user_name}).json()["results"]
    assert listed[0]["stale"] == "august"

    consent(api, ada.user_name, terms_version="august")
    assert decide(api, account=ada.user_name, **TRANSCRIPT_TRAINING)["allowed"] is True


def test_a_revocation_stops_the_next_decision_and_is_audited(api, org, ada):
    api.post("/api/v1/policy-rules/", {"scope": "organization", **TRANSCRIPT_TRAINING, "effect": "allow"},
             format="json")
    consent(api, ada.user_name)
    assert decide(api, account=ada.user_name, **TRANSCRIPT_TRAINING)["allowed"] is True
    consent(api, ada.user_name, action="revoke")
    answer = decide(api, account=ada.user_name, **TRANSCRIPT_TRAINING)
    assert answer["allowed"] is False and answer["reasons"][1]["code"] == "consent_revoked"
    kinds = list(OutboxEntry.objects.filter(organization=org, subject_account=ada).values_list("kind", flat=True))
    assert kinds.count("consent.granted") == 1 and kinds.count("consent.revoked") == 1


def test_at_in_the_past_gives_the_past_answer_across_a_rule_change(api, org, ada):
    rule = api.post("/api/v1/policy-rules/", {"scope": "organization", "data_category": "telemetry.usage",
                                              "purpose": "service.improvement", "effect": "allow"},
                    format="json").json()
    backdate_rules(org, 10)
    api.patch(f"/api/v1/policy-rules/{rule['id']}/", {"effect": "deny"}, format="json")
    usage = {"data_category": "telemetry.usage", "purpose": "service.improvement"}
    assert decide(api, account=ada.user_name, **usage)["allowed"] is False
    past = decide(api, account=ada.user_name, at=(timezone.now() - timedelta(days=5)).isoformat(), **usage)
    assert past["allowed"] is True and past["reasons"][0]["rules"] == [rule["id"]]


def test_a_feature_consent_covers_only_the_pairs_the_feature_reads(api, org, ada):
    api.post("/api/v1/policy-rules/", {"scope": "organization", "data_category": "content.audio",
                                       "purpose": "ai.training.third_party", "effect": "allow"}, format="json")
    ask = {"data_category": "content.audio", "purpose": "ai.training.third_party"}
    assert decide(api, account=ada.user_name, **ask)["allowed"] is False
    consent(api, ada.user_name, data_category=None, purpose=None, feature="transcription")
    # transcription reads content.audio for ai.inference only: a consent to it is no consent to training
    assert decide(api, account=ada.user_name, **ask)["allowed"] is False


def test_a_batch_answers_each_request_in_order(api, ada, carol):
    body = {"requests": [{"account": ada.user_name, "data_category": "telemetry.usage",
                          "purpose": "service.provision"},
                         {"account": carol.user_name, **TRANSCRIPT_TRAINING}]}
    results = api.post("/api/v1/decisions/", body, format="json").json()["results"]
    assert [r["allowed"] for r in results] == [True, False]


def test_a_change_committed_elsewhere_is_seen_by_the_next_decision(api, org, ada):
    usage = {"data_category": "telemetry.usage", "purpose": "marketing"}
    assert decide(api, account=ada.user_name, **usage)["allowed"] is False  # compiled and cached now
    from audit.actors import SYSTEM
    from governance import services
    from governance.models import DataCategory, Purpose
    services.set_rule(organization=Organization.objects.get(pk=org.pk), actor=SYSTEM, scope="organization",
                      effect="allow", data_category=DataCategory.objects.get(key="telemetry.usage"),
                      purpose=Purpose.objects.get(key="marketing"))
    assert decide(api, account=ada.user_name, **usage)["allowed"] is True


def test_a_user_name_deleted_and_provisioned_again_names_the_new_person(api, org, carol):
    """The IdP deletes carol and later provisions carol@ again: a new person, without the old one's consent."""
    from accounts import services as accounts
    from accounts.services import delete_account
    from audit.actors import SYSTEM
    from governance import services
    from governance.models import DataCategory, Purpose
    services.set_rule(organization=org, actor=SYSTEM, scope="organization", effect="allow",
                      data_category=DataCategory.objects.get(key="content.transcript"),
                      purpose=Purpose.objects.get(key="ai.training.first_party"))
    consent(api, carol.user_name)
    assert decide(api, account="carol@acme.test", **TRANSCRIPT_TRAINING)["allowed"] is True  # compiled now

    delete_account(account=carol, actor=SYSTEM)
    accounts.create_account(organization=org, actor=SYSTEM, user_name="carol@acme.test")

    answer = decide(api, account="carol@acme.test", **TRANSCRIPT_TRAINING)
    assert answer["allowed"] is False, answer
    assert [reason["code"] for reason in answer["reasons"]] == ["policy_allows", "consent_missing"], answer


class TestBadInput:
    def problem(self, api, body):
        response = api.post("/api/v1/decisions/", body, format="json")
        assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
        return {e["field"] for e in response.json()["errors"]}

    def test_at_in_the_future(self, api, ada):
        assert self.problem(api, {"account": ada.user_name, **TRANSCRIPT_TRAINING,
                                  "at": (timezone.now() + timedelta(days=1)).isoformat()}) == {"at"}

    def test_unknown_account_and_keys(self, api, ada):
        assert self.problem(api, {"account": "nobody@acme.test", **TRANSCRIPT_TRAINING}) == {"account"}
        assert self.problem(api, {"account": ada.user_name, "data_category": "content.smell",
                                  "purpose": "ai.inference", "colour": "red"}) == {"data_category", "colour"}

    def test_another_organizations_account_does_not_exist(self, api, other_org):
        stranger = AccountFactory(organization=other_org)
        assert self.problem(api, {"account": stranger.user_name, **TRANSCRIPT_TRAINING}) == {"account"}

    def test_batch_errors_name_the_request(self, api, ada):
        fields = self.problem(api, {"requests": [{"account": ada.user_name, **TRANSCRIPT_TRAINING},
                                                 {"accounts": [], **TRANSCRIPT_TRAINING}, "nonsense"]})
        assert fields == {"requests[1].accounts", "requests[2]"}

    def test_consent_in_the_future_or_for_a_stranger_writes_nothing(self, api, ada, other_org):
        stranger = AccountFactory(organization=other_org)
        for body in ({"account": ada.user_name, "action": "grant", "mechanism": "self_service",
                      "occurred_at": (timezone.now() + timedelta(hours=1)).isoformat(), **TRANSCRIPT_TRAINING},
                     {"account": stranger.user_name, "action": "grant", "mechanism": "self_service",
                      **TRANSCRIPT_TRAINING},
                     {"account": ada.user_name, "action": "maybe", "mechanism": "self_service",
                      **TRANSCRIPT_TRAINING},
                     {"account": ada.user_name, "action": "grant", "mechanism": "self_service",
                      "terms_version": "never-published", **TRANSCRIPT_TRAINING}):
            response = api.post("/api/v1/consents/", body, format="json")
            assert response.status_code == 400, body
        assert not ConsentEvent.objects.exists()


def test_simulate_reports_who_would_change_and_saves_nothing(api, org, sales, ada, bob, carol):
    before = org.policy_version
    response = api.post("/api/v1/policy-rules/simulate/", {"scope": "group", "group": sales.pk,
                                                           "feature": "chat_compose", "effect": "allow"},
                        format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accounts_changed"] == 2
    assert {a["account"] for a in body["accounts"]} == {ada.user_name, bob.user_name}
    assert body["by_group"] == [{"group": sales.pk, "display_name": "Sales", "changed": 2, "to_allow": 2,
                                 "to_deny": 0}]
    assert not api.get("/api/v1/policy-rules/").json()["results"]
    assert Organization.objects.get(pk=org.pk).policy_version == before


class TestIsolation:
    def test_consents_and_terms_of_another_organization_are_invisible(self, api, other_api, ada):
        consent(api, ada.user_name)
        terms(api, "v1", timezone.now())
        assert other_api.get("/api/v1/consents/").json()["results"] == []
        assert other_api.get("/api/v1/terms-versions/").json()["results"] == []
        consent_id = api.get("/api/v1/consents/").json()["results"][0]["id"]
        assert other_api.get(f"/api/v1/consents/{consent_id}/").status_code == 404

    def test_a_consent_cannot_name_another_organizations_terms(self, api, other_api, ada):
        terms(other_api, "theirs", timezone.now())
        response = api.post("/api/v1/consents/", {"account": ada.user_name, "action": "grant",
                                                  "mechanism": "self_service", "terms_version": "theirs",
                                                  **TRANSCRIPT_TRAINING}, format="json")
        assert response.status_code == 400 and response.json()["errors"][0]["field"] == "terms_version"

    def test_simulate_refuses_another_organizations_group(self, api, other_org):
        foreign = GroupFactory(organization=other_org)
        response = api.post("/api/v1/policy-rules/simulate/", {"scope": "group", "group": foreign.pk,
                                                               "feature": "chat_compose", "effect": "allow"},
                            format="json")
        assert response.status_code == 400 and response.json()["errors"][0]["field"] == "group"

    def test_auditors_cannot_consent_publish_or_set_a_rule(self, auditor_session, org):
        account = AccountFactory(organization=org)
        for path, body in (("/api/v1/consents/", {"account": account.user_name, "action": "grant",
                                                  "mechanism": "self_service", **TRANSCRIPT_TRAINING}),
                           ("/api/v1/terms-versions/", {"version": "x", "effective_at": timezone.now().isoformat(),
                                                        "text_sha256": "0" * 64}),
                           ("/api/v1/policy-rules/", {"scope": "organization", "feature": "chat_compose",
                                                      "effect": "allow"})):
            assert auditor_session.post(path, body, format="json").status_code == 403, path
        assert not ConsentEvent.objects.exists() and not PolicyRule.objects.exists()

    def test_auditors_ask_for_decisions_and_what_ifs_which_save_nothing(self, auditor_session, org, sales, ada):
        before = (org.policy_version, OutboxEntry.objects.count())

        decision = auditor_session.post("/api/v1/decisions/", {"account": ada.user_name, **TRANSCRIPT_TRAINING},
                                        format="json")
        what_if = auditor_session.post("/api/v1/policy-rules/simulate/", {
            "scope": "group", "group": sales.pk, "feature": "chat_compose", "effect": "allow"}, format="json")

        assert decision.status_code == 200 and decision.json()["allowed"] is False
        assert what_if.status_code == 200 and what_if.json()["accounts_changed"] == 1
        assert not PolicyRule.objects.exists()
        assert (Organization.objects.get(pk=org.pk).policy_version, OutboxEntry.objects.count()) == before

    def test_an_auditors_bad_what_if_is_a_problem_naming_the_field(self, auditor_session, other_org):
        foreign = GroupFactory(organization=other_org)
        response = auditor_session.post("/api/v1/policy-rules/simulate/", {
            "scope": "group", "group": foreign.pk, "feature": "chat_compose", "effect": "allow"}, format="json")
        assert response.status_code == 400 and response.json()["errors"][0]["field"] == "group"


def test_importing_consent_history_in_bulk_is_audited_and_decides(org, ada, bob):
    from audit.actors import SYSTEM
    from governance import services
    from governance.models import DataCategory, Purpose
    category = DataCategory.objects.get(key="content.transcript")
    purpose = Purpose.objects.get(key="ai.training.first_party")
    services.set_rule(organization=org, actor=SYSTEM, scope="organization", effect="allow",
                      data_category=category, purpose=purpose)
    week_ago = timezone.now() - timedelta(days=7)
    created = services.import_consents(organization=org, actor=SYSTEM, consents=[
        {"account": ada, "data_category": category, "purpose": purpose, "action": "grant", "mechanism": "import",
         "occurred_at": week_ago},
        {"account": bob, "data_category": category, "purpose": purpose, "action": "revoke", "mechanism": "import",
         "occurred_at": week_ago}])
    assert created == 2
    assert OutboxEntry.objects.filter(organization=org, kind="consent.granted").count() == 1
    assert OutboxEntry.objects.filter(organization=org, kind="consent.revoked").count() == 1
    from governance.selectors import decide as decide_flow
    decision = decide_flow(org, [ada.pk, bob.pk], "content.transcript", "ai.training.first_party")
    assert [d.allowed for d in decision.accounts] == [True, False]


def test_at_may_be_naive_utc_or_carry_any_offset(api, ada):
    for at in ("2026-01-01T10:00:00", "2026-01-01T10:00:00+16:07"):
        assert decide(api, account=ada.user_name, at=at, **TRANSCRIPT_TRAINING)["allowed"] is False
