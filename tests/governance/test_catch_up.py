"""A recorded consent reaches the next decision without compiling the organization again.

The compiled policy is rebuilt when rules, groups, terms or user names change; when only consent
events came since, it takes those in and shares everything else. Either way it must answer exactly
what a policy compiled from scratch answers.
"""
import random
from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from accounts import services as accounts
from accounts.models import Organization
from accounts.services import change_group_members
from audit.actors import SYSTEM
from governance import services as governance
from governance.consent import ConsentIndex, ConsentRecord
from governance.models import AIFeature, ConsentEvent, DataCategory, Purpose
from governance.selectors import compile_policy, compiled_policy

from ..factories import AccountFactory, GroupFactory

pytestmark = pytest.mark.django_db
TRAINING = ("content.transcript", "ai.training.first_party")


def catalog(key, model):
    return model.objects.get(key=key, organization=None)


@pytest.fixture
def training(org):
    """Training on transcripts allowed by the organization, so each person's consent decides."""
    transcript, purpose = catalog(TRAINING[0], DataCategory), catalog(TRAINING[1], Purpose)
    governance.set_rule(organization=org, actor=SYSTEM, scope="organization", effect="allow",
                        data_category=transcript, purpose=purpose)
    return {"data_category": transcript, "purpose": purpose}


def grant(org, account, target, **extra):
    return governance.record_consent(organization=org, actor=SYSTEM, account=account, action="grant",
                                     mechanism="self_service", **target, **extra)


def allowed(compiled, account, at=None):
    return compiled.decide_account(account.pk, *TRAINING, at or timezone.now()).allowed


def test_a_consent_is_taken_in_without_compiling_again(org, people, training):
    ada = people[0]
    before = compiled_policy(org)
    assert not allowed(before, ada)

    grant(org, ada, training)
    after = compiled_policy(org)

    assert allowed(after, ada)
    assert after.snapshot is before.snapshot  # rules and groups shared, not rebuilt
    assert after.policy_version == before.policy_version + 1
    assert not allowed(before, ada)  # a decision still reading the old one sees what it saw


def test_a_membership_change_is_taken_in_without_compiling_again(org, people, sales, training):
    governance.set_rule(organization=org, actor=SYSTEM, scope="group", group=sales, effect="deny", **training)
    ada = people[0]
    grant(org, ada, training)
    before = compiled_policy(org)
    assert not allowed(before, ada)  # Sales may not

    accounts.update_account(account=ada, actor=SYSTEM, groups=[])
    after = compiled_policy(org)

    assert allowed(after, ada)
    assert after.snapshot.group_rules is before.snapshot.group_rules and after._values is before._values
    assert after.snapshot.account_groups.get(ada.pk) is None and before.snapshot.account_groups[ada.pk] == (sales.pk,)
    assert not allowed(after, ada, timezone.now() - timedelta(minutes=1))  # still in Sales then


def test_a_rule_a_terms_version_or_a_user_name_change_compiles_again(org, people, sales, training):
    first = compiled_policy(org)
    governance.set_rule(organization=org, actor=SYSTEM, scope="group", group=sales, effect="deny", **training)
    second = compiled_policy(org)
    assert second.snapshot is not first.snapshot
    governance.publish_terms(organization=org, actor=SYSTEM, version="v2", effective_at=timezone.now(),
                             text_sha256="2" * 64, requires_reconsent=True, covers=[(training["data_category"],
                                                                                      training["purpose"])])
    third = compiled_policy(org)
    assert third.snapshot.group_rules is not second.snapshot.group_rules
    accounts.update_account(account=people[0], actor=SYSTEM, user_name="renamed@acme.test")
    fourth = compiled_policy(org)
    assert fourth.snapshot.group_rules is not third.snapshot.group_rules
    assert fourth.account_ids["renamed@acme.test"] == people[0].pk


def test_imported_consents_are_taken_in_together(org, people, training):
    compiled_policy(org)
    governance.import_consents(organization=org, actor=SYSTEM, consents=[
        {"account": person, "action": "grant", "mechanism": "import", **training} for person in people[:2]])
    compiled = compiled_policy(org)
    assert [allowed(compiled, person) for person in people] == [True, True, False]


def test_changes_by_a_release_that_did_not_number_them_compile_again(org, people, sales, training):
    """During a rolling upgrade, processes of the previous release record consents unnumbered and
    move only policy_version, whatever they change: no version may be taken for a consent's."""
    first = compiled_policy(org)
    now = timezone.now()
    ConsentEvent.objects.create(organization=org, account=people[1], action="grant", mechanism="self_service",
                                occurred_at=now, recorded_at=now, recorded_by=SYSTEM.as_dict(), **training)
    Organization.objects.filter(pk=org.pk).update(policy_version=F("policy_version") + 1)
    second = compiled_policy(org)
    assert allowed(second, people[1]) and second.snapshot is not first.snapshot

    governance.set_rule(organization=org, actor=SYSTEM, scope="group", group=sales, effect="deny", **training)
    Organization.objects.filter(pk=org.pk).update(structure_version=F("structure_version") - 1)  # as they did
    third = compiled_policy(org)
    assert not allowed(third, people[1]) and third.snapshot is not second.snapshot


@pytest.mark.parametrize("seed", range(4))
def test_catching_up_answers_what_compiling_from_scratch_answers(org, training, seed):
    """Random histories of grants, revocations (some back-dated), feature consents and group moves,
    with decisions between them: the caught-up policy and a fresh compilation agree on every
    account, pair and instant."""
    rng = random.Random(seed)
    groups = [GroupFactory(organization=org) for _ in range(3)]
    governance.set_rule(organization=org, actor=SYSTEM, scope="group", group=groups[0], effect="deny", **training)
    governance.set_rule(organization=org, actor=SYSTEM, scope="group", group=groups[1], effect="allow",
                        feature=catalog("meeting_summary", AIFeature))
    people = [AccountFactory(organization=org, groups=rng.sample(groups, rng.randint(0, 2))) for _ in range(6)]
    summary = catalog("meeting_summary", AIFeature)
    now = timezone.now()
    for step in range(30):
        person = rng.choice(people)
        if rng.random() < 0.3:  # the IdP or an admin moves people between groups
            if rng.random() < 0.5:
                accounts.update_account(account=person, actor=SYSTEM, groups=rng.sample(groups, rng.randint(0, 2)))
            else:
                change_group_members(group=rng.choice(groups), actor=SYSTEM,
                                     **{rng.choice(["add", "remove"]): [p.pk for p in rng.sample(people, 2)]})
        else:
            target = {"feature": summary} if rng.random() < 0.2 else training
            governance.record_consent(organization=org, actor=SYSTEM, account=person,
                                      action=rng.choice(["grant", "grant", "revoke"]),
                                      mechanism=rng.choice(["self_service", "admin_on_behalf"]),
                                      occurred_at=now - timedelta(hours=rng.uniform(0, 48)), **target)
        if rng.random() < 0.5:
            compiled_policy(org)  # the decision API asked in between: caught up now
    caught_up, fresh = compiled_policy(org), compile_policy(org)
    assert caught_up.snapshot.group_rules is not fresh.snapshot.group_rules
    pairs = [(c, p) for c in fresh.snapshot.catalog.category_kinds for p in fresh.snapshot.catalog.purpose_keys]
    for at in [now - timedelta(hours=h) for h in (0, 6, 24, 47)] + [timezone.now()]:
        for person in people:
            for pair in pairs:
                assert (caught_up.decide_account(person.pk, *pair, at)
                        == fresh.decide_account(person.pk, *pair, at)), (person.pk, pair, at)


def test_extending_an_index_leaves_it_as_it_was():
    t0 = timezone.now()
    index = ConsentIndex()
    index.add(1, [TRAINING], ConsentRecord(1, "grant", "self_service", t0))
    extended = index.extended([(1, [TRAINING], ConsentRecord(2, "revoke", "self_service", t0 + timedelta(1))),
                               (2, [TRAINING], ConsentRecord(3, "grant", "self_service", t0))])
    later = t0 + timedelta(days=2)
    assert index.basis(1, TRAINING, later).state == "valid" and index.basis(2, TRAINING, later).state == "missing"
    assert extended.basis(1, TRAINING, later).state == "revoked" and extended.basis(2, TRAINING, later).valid
    assert (index.last_event_id, extended.last_event_id) == (1, 3)
