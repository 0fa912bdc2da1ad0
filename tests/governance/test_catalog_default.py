"""The catalog default of DESIGN §2, as a service and an admin meet it: any data may be used to provide
the service (running a meeting on its audio *is* the service); customer content for any AI purpose,
and every other use, wait for a rule. The flows' verdicts, the decision API, the explanation and the
compiled policy all answer from the one default."""
import pytest
from django.utils import timezone

from audit.actors import SYSTEM
from governance import services as governance
from governance.engine import Target, resolve
from governance.models import ConsentEvent, DataCategory, Purpose
from governance.selectors import build_snapshot, compile_policy, compiled_policy

pytestmark = pytest.mark.django_db
AUDIO_TO_RUN_THE_MEETING = {"data_category": "content.audio", "purpose": "service.provision"}
AUDIO_TO_TRAIN = {"data_category": "content.audio", "purpose": "ai.training.first_party"}
USAGE_FOR_MARKETING = {"data_category": "telemetry.usage", "purpose": "marketing"}


@pytest.fixture
def report(api, django_capture_on_commit_callbacks, eager_celery):
    """Report one flow as a service would, let the workers judge it, and return the judged flow."""
    def report(account, flow_id, **use):
        flow = {"flow_id": flow_id, "accounts": [account.user_name], "destination": "vendor.service",
                "occurred_at": timezone.now().isoformat(), "volume": 1, **use}
        with django_capture_on_commit_callbacks(execute=True):
            assert api.post("/api/v1/flows/", {"flows": [flow]}, format="json").status_code == 202
        return api.get("/api/v1/flows/", {"account": account.user_name}).json()["results"][0]
    return report


def rule(org, effect, data_category, purpose):
    return governance.set_rule(organization=org, actor=SYSTEM, scope="organization", effect=effect,
                               data_category=DataCategory.objects.get(key=data_category, organization=None),
                               purpose=Purpose.objects.get(key=purpose, organization=None))[0]


def test_meeting_audio_used_to_run_the_meeting_is_permitted_with_no_rule(api, people, report):
    flow = report(people[0], "audio-1", **AUDIO_TO_RUN_THE_MEETING)

    assert flow["verdict"] == "permitted"
    assert flow["reasons"][0]["decided_by"] == "default" and flow["reasons"][0]["rules"] == []


def test_an_organization_rule_denying_it_still_denies(api, org, people, report):
    denial = rule(org, "deny", **AUDIO_TO_RUN_THE_MEETING)

    flow = report(people[0], "audio-1", **AUDIO_TO_RUN_THE_MEETING)

    assert flow["verdict"] == "violation" and flow["blocking_accounts"] == [people[0].user_name]
    assert flow["reasons"][0]["decided_by"] == "organization" and flow["reasons"][0]["rules"] == [denial.pk]


@pytest.mark.parametrize("use", [AUDIO_TO_TRAIN, USAGE_FOR_MARKETING], ids=["audio-training", "usage-marketing"])
def test_every_other_use_is_denied_by_default(api, people, report, use):
    flow = report(people[0], "flow-1", **use)

    assert flow["verdict"] == "violation"
    assert flow["reasons"][0] == {"account": people[0].user_name, "code": "policy_denies", "decided_by": "default",
                                  "rules": []}


def test_the_decision_api_and_the_explanation_name_the_default(api, people):
    decisions = api.post("/api/v1/decisions/", {"requests": [
        {"account": people[0].user_name, **use} for use in (AUDIO_TO_RUN_THE_MEETING, AUDIO_TO_TRAIN,
                                                            USAGE_FOR_MARKETING)]}, format="json").json()
    assert [d["allowed"] for d in decisions["results"]] == [True, False, False]

    shown = api.get(f"/api/v1/accounts/{people[0].pk}/effective-policy/").json()["data_sharing"]
    defaults = {(v["data_category"], v["purpose"]): v["explanation"]["default"] for v in shown}
    assert defaults[("content.audio", "service.provision")] == "allow"
    assert defaults[("content.audio", "ai.training.first_party")] == "deny"
    assert defaults[("telemetry.usage", "marketing")] == "deny"
    assert {purpose for (_, purpose), default in defaults.items() if default == "allow"} == {"service.provision"}


def test_the_compiled_policy_and_its_catch_up_answer_what_the_engine_answers(org, people, sales):
    """Every pair, for people with and without rules of their group, before and after a consent
    is taken in without compiling again."""
    rule(org, "deny", "content.video", "service.provision")
    governance.set_rule(organization=org, actor=SYSTEM, scope="group", group=sales, effect="allow",
                        data_category=DataCategory.objects.get(key="telemetry.usage"),
                        purpose=Purpose.objects.get(key="marketing"))
    before = compiled_policy(org)
    governance.record_consent(organization=org, actor=SYSTEM, account=people[0], action="grant",
                              mechanism="self_service", **{
                                  "data_category": DataCategory.objects.get(key="content.audio"),
                                  "purpose": Purpose.objects.get(key="ai.training.first_party")})
    caught_up = compiled_policy(org)
    assert caught_up.snapshot is before.snapshot and ConsentEvent.objects.count() == 1

    snapshot = build_snapshot(org)
    pairs = [(c, p) for c in snapshot.catalog.category_kinds for p in snapshot.catalog.purpose_keys]
    for compiled in (caught_up, compile_policy(org)):
        for person in people:
            for pair in pairs:
                engine = resolve(snapshot, person.pk, Target.of_pair(*pair))
                assert compiled.effective(person.pk, *pair) == engine, (person.pk, pair)
    assert resolve(snapshot, people[0].pk, Target.of_pair("content.video", "service.provision")).effect == "deny"
    assert resolve(snapshot, people[0].pk, Target.of_pair("content.files", "service.provision")).effect == "allow"
