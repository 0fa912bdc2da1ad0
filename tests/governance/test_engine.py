"""The resolution order of DESIGN §2, branch by branch, on hand-built snapshots (no database)."""
from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st

from governance.engine import (ALLOW, DENY, Catalog, PolicySnapshot, RuleRef, Target, effective_policy, resolve)

CATALOG = Catalog(
    category_kinds={"content.chat": "customer_content", "content.audio": "customer_content",
                    "telemetry.usage": "service_generated"},
    ai_purposes=frozenset({"ai.inference", "ai.training.first_party"}),
    feature_pairs={"chat_compose": (("content.chat", "ai.inference"),)},
    purpose_keys=("ai.inference", "ai.training.first_party", "service.provision", "marketing"),
)
CHAT_TRAINING = Target.of_pair("content.chat", "ai.training.first_party")
COMPOSE = Target.of_feature("chat_compose")
ACCOUNT, SALES, LEGAL = 1, 10, 20


def snapshot(*rules, groups=(SALES, LEGAL)) -> PolicySnapshot:
    snap = PolicySnapshot(organization_id=1, at=datetime.now(timezone.utc), policy_version=1, catalog=CATALOG,
                          account_groups={ACCOUNT: tuple(groups)})
    for target, rule in rules:
        snap.add_rule(target, rule)
    return snap


def org_rule(effect, locked=False, id=1):
    return RuleRef(id, "organization", effect, locked)


def group_rule(group, effect, locked=False, id=None):
    return RuleRef(id or 100 + group, "group", effect, locked, group_id=group)


def account_rule(effect, id=1000):
    return RuleRef(id, "account", effect, False, account_id=ACCOUNT)


class TestCatalogDefaults:
    def test_customer_content_for_an_ai_purpose_is_denied(self):
        value = resolve(snapshot(), ACCOUNT, CHAT_TRAINING)
        assert value.effect == DENY and value.decided_by == "default" and value.applied == ()
        assert resolve(snapshot(), ACCOUNT, Target.of_pair("content.audio", "ai.training.first_party")).effect == DENY

    def test_any_data_used_to_provide_the_service_is_allowed(self):
        """Running a meeting on its audio is the service itself, as sending usage telemetry is."""
        for category in ("content.audio", "content.chat", "telemetry.usage"):
            value = resolve(snapshot(), ACCOUNT, Target.of_pair(category, "service.provision"))
            assert value.allowed and value.default == ALLOW and value.decided_by == "default", category

    def test_an_organization_rule_can_still_deny_providing_the_service_on_customer_content(self):
        audio = Target.of_pair("content.audio", "service.provision")
        value = resolve(snapshot((audio, org_rule(DENY))), ACCOUNT, audio)
        assert value.effect == DENY and value.default == ALLOW and value.decided_by == "organization"

    def test_anything_else_is_denied(self):
        assert not resolve(snapshot(), ACCOUNT, Target.of_pair("telemetry.usage", "marketing")).allowed
        assert not resolve(snapshot(), ACCOUNT, Target.of_pair("telemetry.usage", "ai.inference")).allowed

    def test_features_are_off_until_a_rule_turns_them_on(self):
        assert resolve(snapshot(), ACCOUNT, COMPOSE).effect == DENY


class TestOrganizationRules:
    def test_an_organization_rule_replaces_the_default(self):
        value = resolve(snapshot((CHAT_TRAINING, org_rule(ALLOW))), ACCOUNT, CHAT_TRAINING)
        assert value.allowed and value.decided_by == "organization"

    def test_a_locked_organization_rule_stops_groups_and_account(self):
        lock = org_rule(DENY, locked=True)
        value = resolve(snapshot((CHAT_TRAINING, lock), (CHAT_TRAINING, group_rule(SALES, ALLOW)),
                                 (CHAT_TRAINING, account_rule(ALLOW))), ACCOUNT, CHAT_TRAINING)
        assert value.effect == DENY
        assert value.locked_by == lock
        assert value.applied == (lock,)
        assert [r.scope for r in value.overridden] == ["group", "account"]


class TestGroupRules:
    def test_a_group_rule_replaces_the_organization_rule(self):
        value = resolve(snapshot((CHAT_TRAINING, org_rule(DENY)), (CHAT_TRAINING, group_rule(SALES, ALLOW))),
                        ACCOUNT, CHAT_TRAINING)
        assert value.allowed and value.decided_by == "group"
        assert [r.scope for r in value.applied] == ["organization", "group"]

    def test_between_groups_deny_wins(self):
        value = resolve(snapshot((CHAT_TRAINING, group_rule(SALES, ALLOW)), (CHAT_TRAINING, group_rule(LEGAL, DENY))),
                        ACCOUNT, CHAT_TRAINING)
        assert value.effect == DENY
        assert {r.group_id for r in value.applied} == {SALES, LEGAL}

    def test_rules_of_groups_the_account_is_not_in_do_not_apply(self):
        value = resolve(snapshot((CHAT_TRAINING, group_rule(LEGAL, ALLOW)), groups=(SALES,)), ACCOUNT, CHAT_TRAINING)
        assert value.effect == DENY and value.applied == ()

    def test_a_locked_group_rule_stops_the_account_rule(self):
        lock = group_rule(LEGAL, DENY, locked=True)
        value = resolve(snapshot((CHAT_TRAINING, lock), (CHAT_TRAINING, account_rule(ALLOW))), ACCOUNT, CHAT_TRAINING)
        assert value.effect == DENY and value.locked_by == lock
        assert [r.scope for r in value.overridden] == ["account"]

    def test_a_locked_allow_in_one_group_still_loses_to_another_groups_deny(self):
        value = resolve(snapshot((CHAT_TRAINING, group_rule(SALES, ALLOW, locked=True)),
                                 (CHAT_TRAINING, group_rule(LEGAL, DENY)), (CHAT_TRAINING, account_rule(ALLOW))),
                        ACCOUNT, CHAT_TRAINING)
        assert value.effect == DENY and value.locked_by.group_id == SALES


class TestAccountRules:
    def test_an_account_rule_replaces_everything_unlocked(self):
        value = resolve(snapshot((CHAT_TRAINING, org_rule(DENY)), (CHAT_TRAINING, group_rule(SALES, DENY)),
                                 (CHAT_TRAINING, account_rule(ALLOW))), ACCOUNT, CHAT_TRAINING)
        assert value.allowed and value.decided_by == "account"
        assert [r.scope for r in value.applied] == ["organization", "group", "account"]

    def test_another_accounts_rule_does_not_apply(self):
        other = RuleRef(5, "account", ALLOW, False, account_id=ACCOUNT + 1)
        assert not resolve(snapshot((CHAT_TRAINING, other)), ACCOUNT, CHAT_TRAINING).allowed


class TestFeatures:
    def test_a_feature_switched_on_is_effective(self):
        value = resolve(snapshot((COMPOSE, org_rule(ALLOW))), ACCOUNT, COMPOSE)
        assert value.allowed and value.denied_pairs == ()

    def test_a_feature_is_not_effective_when_a_rule_denies_one_of_its_pairs(self):
        chat_inference = Target.of_pair("content.chat", "ai.inference")
        value = resolve(snapshot((COMPOSE, org_rule(ALLOW)), (chat_inference, group_rule(LEGAL, DENY))),
                        ACCOUNT, COMPOSE)
        assert value.effect == DENY and value.decided_by == "data_sharing"
        assert [pair.target for pair in value.denied_pairs] == [chat_inference]

    def test_a_pair_denied_only_by_the_catalog_default_does_not_block_a_feature(self):
        assert resolve(snapshot((COMPOSE, org_rule(ALLOW))), ACCOUNT, COMPOSE).allowed


def test_effective_policy_covers_every_feature_and_pair():
    values = effective_policy(snapshot(), ACCOUNT)
    assert {v.target for v in values} == set(CATALOG.targets())
    assert len(values) == len(CATALOG.feature_pairs) + len(CATALOG.category_kinds) * len(CATALOG.purpose_keys)


effects = st.sampled_from([ALLOW, DENY])
optional_rule = st.one_of(st.none(), st.tuples(effects, st.booleans()))


@given(org_effect=effects, group_rules=st.lists(st.tuples(st.sampled_from([SALES, LEGAL]), effects, st.booleans()),
                                                max_size=2, unique_by=lambda r: r[0]),
       account=optional_rule)
def test_a_locked_organization_rule_always_wins(org_effect, group_rules, account):
    rules = [(CHAT_TRAINING, org_rule(org_effect, locked=True))]
    rules += [(CHAT_TRAINING, group_rule(g, e, locked)) for g, e, locked in group_rules]
    if account:
        rules.append((CHAT_TRAINING, account_rule(account[0])))
    value = resolve(snapshot(*rules), ACCOUNT, CHAT_TRAINING)
    assert value.effect == org_effect
    assert value.locked_by.scope == "organization"


@given(org=optional_rule, group_rules=st.lists(st.tuples(st.sampled_from([SALES, LEGAL]), effects, st.booleans()),
                                               max_size=2, unique_by=lambda r: r[0]),
       account_effect=effects)
def test_an_account_rule_never_overrides_a_locked_rule(org, group_rules, account_effect):
    rules = [(CHAT_TRAINING, group_rule(g, e, locked)) for g, e, locked in group_rules]
    if org:
        rules.append((CHAT_TRAINING, org_rule(org[0], locked=org[1])))
    without_account = resolve(snapshot(*rules), ACCOUNT, CHAT_TRAINING)
    with_account = resolve(snapshot(*rules, (CHAT_TRAINING, account_rule(account_effect))), ACCOUNT, CHAT_TRAINING)
    if without_account.locked_by is not None:
        assert with_account.effect == without_account.effect
        assert with_account.locked_by == without_account.locked_by
    else:
        assert with_account.effect == account_effect
