"""Decision rules of DESIGN §2 on hand-built state (no database), and their properties."""
from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from governance.consent import ConsentIndex, ConsentRecord, Reconsent
from governance.decisions import CompiledPolicy
from governance.engine import ALLOW, DENY, Catalog, PolicySnapshot, RuleRef, Target

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
TRAINING = ("content.transcript", "ai.training.first_party")
CATALOG = Catalog(
    category_kinds={"content.transcript": "customer_content", "telemetry.usage": "service_generated"},
    ai_purposes=frozenset({"ai.inference", "ai.training.first_party"}),
    feature_pairs={"meeting_summary": (("content.transcript", "ai.inference"),)},
    purpose_keys=("ai.inference", "ai.training.first_party", "service.provision"),
    consent_kinds={"ai.training.first_party": frozenset({"customer_content"}), "ai.inference": frozenset(),
                   "service.provision": frozenset()},
)
ADA, BOB = 1, 2


def compiled(*rules, consents=None):
    snapshot = PolicySnapshot(organization_id=1, at=T0, policy_version=7, catalog=CATALOG,
                              account_groups={ADA: (10,), BOB: (10,)})
    for target, rule in rules:
        snapshot.add_rule(target, rule)
    return CompiledPolicy(snapshot, consents or ConsentIndex())


ALLOW_TRAINING = (Target.of_pair(*TRAINING), RuleRef(1, "organization", ALLOW, False))


def grant(index, account, at, *, id, mechanism="self_service", terms_at=None, terms=None):
    index.add(account, [TRAINING], ConsentRecord(id, "grant", mechanism, at, terms, terms_at))


def revoke(index, account, at, *, id):
    index.add(account, [TRAINING], ConsentRecord(id, "revoke", "self_service", at))


def test_a_policy_deny_decides_without_looking_at_consent():
    decision = compiled().decide([ADA], *TRAINING, T0)
    assert not decision.allowed and decision.accounts[0].consent is None


def test_where_no_individual_consent_is_needed_the_policy_decides():
    decision = compiled().decide([ADA], "telemetry.usage", "service.provision", T0)
    assert decision.allowed and decision.accounts[0].consent is None


def test_a_switched_on_feature_allows_what_it_reads():
    feature_on = (Target.of_feature("meeting_summary"), RuleRef(2, "organization", ALLOW, False))
    decision = compiled(feature_on).decide([ADA], "content.transcript", "ai.inference", T0)
    assert decision.allowed and decision.accounts[0].policy.enabled_by == ("meeting_summary",)


def test_consent_must_exist_before_the_instant():
    index = ConsentIndex()
    grant(index, ADA, T0 + timedelta(days=1), id=1)
    policy = compiled(ALLOW_TRAINING, consents=index)
    assert policy.decide([ADA], *TRAINING, T0).accounts[0].consent.state == "missing"
    assert policy.decide([ADA], *TRAINING, T0 + timedelta(days=2)).allowed


def test_a_revocation_stops_decisions_after_it_not_before():
    index = ConsentIndex()
    grant(index, ADA, T0, id=1)
    revoke(index, ADA, T0 + timedelta(days=10), id=2)
    policy = compiled(ALLOW_TRAINING, consents=index)
    assert policy.decide([ADA], *TRAINING, T0 + timedelta(days=5)).allowed
    after = policy.decide([ADA], *TRAINING, T0 + timedelta(days=11))
    assert not after.allowed and after.accounts[0].consent.state == "revoked"


def test_a_reconsent_terms_version_makes_earlier_grants_stale_from_its_effective_date():
    index = ConsentIndex()
    grant(index, ADA, T0, id=1, terms="2026-03", terms_at=T0)
    august = datetime(2026, 8, 1, tzinfo=timezone.utc)
    index.add_reconsent(TRAINING, Reconsent("2026-08", august))
    policy = compiled(ALLOW_TRAINING, consents=index)
    assert policy.decide([ADA], *TRAINING, august - timedelta(seconds=1)).allowed
    stale = policy.decide([ADA], *TRAINING, august)
    assert not stale.allowed and stale.accounts[0].consent.stale_since.version == "2026-08"
    grant(index, ADA, august + timedelta(days=3), id=2, terms="2026-08", terms_at=august)
    assert policy.decide([ADA], *TRAINING, august + timedelta(days=4)).allowed


def test_consent_not_freely_given_still_counts_but_says_so():
    index = ConsentIndex()
    grant(index, ADA, T0, id=1, mechanism="join_or_leave_prompt")
    decision = compiled(ALLOW_TRAINING, consents=index).decide([ADA], *TRAINING, T0 + timedelta(hours=1))
    assert decision.allowed and decision.accounts[0].consent.record.freely_given is False


def test_several_accounts_are_allowed_only_if_each_is_and_the_blockers_are_named():
    index = ConsentIndex()
    grant(index, ADA, T0, id=1)
    decision = compiled(ALLOW_TRAINING, consents=index).decide([ADA, BOB], *TRAINING, T0 + timedelta(hours=1))
    assert not decision.allowed
    assert [d.account_id for d in decision.blocking] == [BOB]
    assert decision.policy_version == 7


consent_events = st.lists(st.tuples(st.integers(0, 100), st.sampled_from(["grant", "revoke"]),
                                    st.booleans()), max_size=8)


def build_index(events):
    index = ConsentIndex()
    for n, (day, action, under_new_terms) in enumerate(sorted(events, key=lambda e: e[0]), start=1):
        terms_at = T0 + timedelta(days=50) if under_new_terms else None
        index.add(ADA, [TRAINING], ConsentRecord(n, action, "self_service", T0 + timedelta(days=day), None,
                                                 terms_at))
    index.add_reconsent(TRAINING, Reconsent("v2", T0 + timedelta(days=50)))
    return index


@given(events=consent_events, revoke_day=st.integers(0, 100), ask_day=st.integers(0, 120))
def test_revoking_never_turns_a_deny_into_an_allow(events, revoke_day, ask_day):
    at = T0 + timedelta(days=ask_day, hours=12)
    before = compiled(ALLOW_TRAINING, consents=build_index(events)).decide([ADA], *TRAINING, at)
    after_index = build_index(events)
    after_index.add(ADA, [TRAINING], ConsentRecord(999, "revoke", "self_service", T0 + timedelta(days=revoke_day)))
    after = compiled(ALLOW_TRAINING, consents=after_index).decide([ADA], *TRAINING, at)
    assert before.allowed or not after.allowed


@given(events=consent_events, ask_day=st.integers(0, 120), group_effect=st.sampled_from([ALLOW, DENY]))
def test_a_locked_organization_deny_is_never_overridden_by_any_consent(events, ask_day, group_effect):
    lock = (Target.of_pair(*TRAINING), RuleRef(1, "organization", DENY, True))
    group = (Target.of_pair(*TRAINING), RuleRef(2, "group", group_effect, False, group_id=10))
    decision = compiled(lock, group, consents=build_index(events)).decide([ADA], *TRAINING,
                                                                          T0 + timedelta(days=ask_day))
    assert not decision.allowed and decision.accounts[0].policy.locked_by.id == 1


rule_specs = st.lists(st.tuples(
    st.sampled_from(["organization", "group", "account"]), st.sampled_from([10, 11, 12]), st.sampled_from([ADA, BOB]),
    st.sampled_from([Target.of_pair(*TRAINING), Target.of_pair("content.transcript", "ai.inference"),
                     Target.of_feature("meeting_summary")]),
    st.sampled_from([ALLOW, DENY]), st.booleans()), max_size=8)


@given(specs=rule_specs, memberships=st.tuples(st.sets(st.sampled_from([10, 11, 12])),
                                               st.sets(st.sampled_from([10, 11, 12]))))
def test_the_compiled_memo_answers_exactly_what_the_engine_resolves(specs, memberships):
    from governance.engine import resolve
    snapshot = PolicySnapshot(organization_id=1, at=T0, policy_version=1, catalog=CATALOG,
                              account_groups={ADA: tuple(sorted(memberships[0])), BOB: tuple(sorted(memberships[1]))})
    for n, (scope, group, account, target, effect, locked) in enumerate(specs, start=1):
        snapshot.add_rule(target, RuleRef(n, scope, effect, locked and scope != "account",
                                          group if scope == "group" else None,
                                          account if scope == "account" else None))
    policy = CompiledPolicy(snapshot, ConsentIndex())
    for account in (ADA, BOB, ADA, BOB):  # twice: the second answers come from the memo
        for pair in (TRAINING, ("content.transcript", "ai.inference")):
            assert policy.effective(account, *pair) == resolve(snapshot, account, Target.of_pair(*pair))
