"""What SCIM changes in the policy: group moves change decisions; the AI-governance extension sets
rules and consents, attributed to the IdP."""
import pytest

from accounts.models import Organization
from audit.models import OutboxEntry
from governance import services as governance
from governance.models import AIFeature, ConsentEvent, PolicyRule
from governance.selectors import decide

from ..conftest import token_client
from ..factories import GroupFactory
from .conftest import patch_op
from .idp_requests import AI, entra_create_user, okta_create_user

pytestmark = pytest.mark.django_db
SUMMARY_INPUT = {"data_category": "content.transcript", "purpose": "ai.inference"}  # what meeting_summary reads
TRAINING = {"data_category": "content.transcript", "purpose": "ai.training.first_party"}


@pytest.fixture
def groups(org):
    """Sales may use meeting summaries; Legal may not, and that is locked."""
    from audit.actors import SYSTEM
    sales = GroupFactory(organization=org, display_name="Sales")
    legal = GroupFactory(organization=org, display_name="Legal")
    summary = AIFeature.objects.get(key="meeting_summary", organization=None)
    governance.set_rule(organization=org, actor=SYSTEM, scope="group", group=sales, feature=summary, effect="allow")
    governance.set_rule(organization=org, actor=SYSTEM, scope="group", group=legal, feature=summary, effect="deny",
                        locked=True)
    return sales, legal


def allowed(api, user_name, **flow):
    response = api.post("/api/v1/decisions/", {"account": user_name, **flow}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["allowed"]


def test_moving_a_user_between_groups_changes_the_next_decision(scim, org, groups):
    sales, legal = groups
    api = token_client(org)
    user = scim.post("Users", okta_create_user("ada@acme.test")).json()
    scim.patch(f"Groups/{sales.pk}", patch_op({"op": "add", "path": "members", "value": [{"value": user["id"]}]}))
    assert allowed(api, "ada@acme.test", **SUMMARY_INPUT) is True
    version = Organization.objects.get(pk=org.pk).policy_version

    # Entra moves her: out of Sales by its filtered path, into Legal.
    scim.patch(f"Groups/{sales.pk}", patch_op({"op": "Remove", "path": f'members[value eq "{user["id"]}"]'}))
    scim.patch(f"Groups/{legal.pk}", patch_op({"op": "Add", "path": "members", "value": [{"value": user["id"]}]}))

    assert Organization.objects.get(pk=org.pk).policy_version == version + 2
    assert allowed(api, "ada@acme.test", **SUMMARY_INPUT) is False
    decision = decide(org, [int(user["id"])], **SUMMARY_INPUT)
    assert decision.allowed is False and decision.policy_version == version + 2
    # The audit trail says the IdP moved her, with her groups before and after.
    moves = OutboxEntry.objects.filter(organization=org, kind="account.changed", subject_account_id=user["id"],
                                       actor__kind="idp", payload__has_key="group").order_by("id")
    assert [(m.payload["before"]["groups"], m.payload["after"]["groups"]) for m in moves] == [
        ([], [sales.pk]), ([sales.pk], []), ([], [legal.pk])]


def test_ai_features_opt_out_denies_every_feature_and_is_withdrawn(scim, org, groups):
    sales, _ = groups
    api = token_client(org)
    body = {**entra_create_user("bob@acme.test", "b-1", "bob@acme.test"), AI: {"aiFeaturesOptOut": True}}
    user = scim.post("Users", body).json()
    assert user[AI] == {"aiFeaturesOptOut": True} and AI in user["schemas"]
    scim.patch(f"Groups/{sales.pk}", patch_op({"op": "add", "path": "members", "value": [{"value": user["id"]}]}))

    rules = PolicyRule.objects.filter(organization=org, scope="account", account_id=user["id"])
    features = set(AIFeature.objects.filter(organization=None).values_list("key", flat=True))
    assert {r.feature.key for r in rules} == features
    assert {(r.effect, r.reason, r.created_by["kind"]) for r in rules} == {
        ("deny", "IdP attribute aiFeaturesOptOut", "idp")}
    assert allowed(api, "bob@acme.test", **SUMMARY_INPUT) is False  # his own rule overrides Sales' allow

    # Entra sends the same value again on its next cycle: nothing new is written.
    events = OutboxEntry.objects.count()
    scim.patch(f"Users/{user['id']}", patch_op({"op": "Replace", "path": f"{AI}:aiFeaturesOptOut", "value": "True"}))
    assert OutboxEntry.objects.count() == events

    # Opting back in (a string boolean, as Entra may send) retires the rules, keeping their history.
    back = scim.patch(f"Users/{user['id']}",
                      patch_op({"op": "Replace", "path": f"{AI}:aiFeaturesOptOut", "value": "False"}))
    assert back.json()[AI] == {"aiFeaturesOptOut": False}
    assert not rules.filter(deleted_at__isnull=True).exists() and rules.count() == len(features)
    assert allowed(api, "bob@acme.test", **SUMMARY_INPUT) is True
    # Removing the attribute leaves it unassigned.
    gone = scim.patch(f"Users/{user['id']}", patch_op({"op": "remove", "path": f"{AI}:aiFeaturesOptOut"}))
    assert AI not in gone.json() and gone.json()["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User"]


def test_ai_training_consent_is_recorded_as_the_idps_word(scim, org):
    api = token_client(org)
    governance.set_rule(organization=org, actor=_admin(), scope="organization", effect="allow",
                        data_category=_category("content.transcript"), purpose=_purpose("ai.training.first_party"))
    user = scim.post("Users", {**okta_create_user("carol@acme.test"), AI: {"aiTrainingConsent": True}}).json()
    grants = ConsentEvent.objects.filter(account_id=user["id"], mechanism="idp_attribute", action="grant")
    assert set(grants.values_list("data_category__key", flat=True)) == {
        "content.audio", "content.video", "content.chat", "content.transcript", "content.files",
        "content.whiteboard", "content.screen_share"}
    assert {g.recorded_by["kind"] for g in grants} == {"idp"}
    assert allowed(api, "carol@acme.test", **TRAINING) is True

    # Carol revokes for herself; the IdP repeating its value (a full PUT) does not override her.
    response = api.post("/api/v1/consents/", {"account": "carol@acme.test", "action": "revoke",
                                              "mechanism": "self_service", **TRAINING}, format="json")
    assert response.status_code == 201, response.content
    put = {**okta_create_user("carol@acme.test"), "id": user["id"], AI: {"aiTrainingConsent": True}}
    assert scim.put(f"Users/{user['id']}", put).status_code == 200
    assert allowed(api, "carol@acme.test", **TRAINING) is False
    assert grants.count() == 7

    # The IdP withdrawing revokes what it granted; a PUT without the extension leaves it unassigned.
    scim.patch(f"Users/{user['id']}", patch_op({"op": "replace", "value": {f"{AI}:aiTrainingConsent": False}}))
    assert ConsentEvent.objects.filter(account_id=user["id"], mechanism="idp_attribute", action="revoke").count() == 7
    assert scim.get(f"Users/{user['id']}").json()[AI] == {"aiTrainingConsent": False}
    replaced = scim.put(f"Users/{user['id']}", {**okta_create_user("carol@acme.test"), "id": user["id"]})
    assert AI not in replaced.json()


def test_the_extension_reads_back_from_chained_events_too(scim, org):
    from audit.services import drain_outbox
    user = scim.post("Users", {**okta_create_user("dan@acme.test"), AI: {"aiFeaturesOptOut": True}}).json()
    drain_outbox(org.pk)
    assert not OutboxEntry.objects.filter(organization=org).exists()
    assert scim.get(f"Users/{user['id']}").json()[AI] == {"aiFeaturesOptOut": True}
    listed = scim.get(f"Users?attributes={AI}").json()["Resources"]
    assert listed == [{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", AI], "id": user["id"],
                       AI: {"aiFeaturesOptOut": True}}]


def _admin():
    from audit.actors import Actor
    return Actor("user", None, "admin")


def _category(key):
    from governance.models import DataCategory
    return DataCategory.objects.get(key=key, organization=None)


def _purpose(key):
    from governance.models import Purpose
    return Purpose.objects.get(key=key, organization=None)
