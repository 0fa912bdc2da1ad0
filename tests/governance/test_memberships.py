"""Decisions as of a past instant use the groups of that instant, not today's.

A group's switch applies to a person while they are in the group: leaving it (the IdP removes
them, an admin changes their groups) ends that from then on, and the past keeps its answers.
"""
from datetime import datetime, timedelta, timezone as tz

import pytest
from django.utils import timezone

from accounts import services as accounts
from accounts.models import AccountGroup, PastMembership
from accounts.services import change_group_members
from audit.actors import SYSTEM
from flows.models import ExposureRollup, TelemetryFlow
from governance import services as governance
from governance.memberships import MembershipHistory
from governance.models import DataCategory, Purpose
from governance.selectors import compiled_policy, decide

from ..factories import AccountFactory, GroupFactory

pytestmark = pytest.mark.django_db
USAGE_MARKETING = {"data_category": "telemetry.usage", "purpose": "marketing"}
T = datetime(2026, 3, 1, tzinfo=tz.utc)


def test_groups_at_an_instant():
    history = MembershipHistory.build(
        current_rows=[(1, 10, T), (1, 11, T + timedelta(days=5)), (2, 10, T), (3, 12, T)],
        past_rows=[(3, 10, T - timedelta(days=9), T - timedelta(days=2)), (3, 12, T - timedelta(days=9), T)])
    assert [history.groups_at(1, T + timedelta(days=d)) for d in (-1, 0, 4, 5, 30)] == [(), (10,), (10,), (10, 11),
                                                                                         (10, 11)]
    assert [history.groups_at(2, T + timedelta(days=d)) for d in (-1, 0, 30)] == [(), (10,), (10,)]
    assert [history.groups_at(3, T + timedelta(days=d)) for d in (-10, -9, -2, 0)] == [(), (10, 12), (12,), (12,)]
    assert history.groups_at(4, T) == ()
    assert 2 not in history.periods  # provisioned once with its groups: the change instant is enough


@pytest.fixture
def marketing_for_sales(org, sales):
    """Sales may use usage telemetry for marketing; everyone else may not (the catalog's default)."""
    governance.set_rule(organization=org, actor=SYSTEM, scope="group", group=sales, effect="allow",
                        data_category=DataCategory.objects.get(key=USAGE_MARKETING["data_category"]),
                        purpose=Purpose.objects.get(key=USAGE_MARKETING["purpose"]))
    rule_versions_since(org, timezone.now() - timedelta(days=30))


def rule_versions_since(org, instant):
    from governance.models import PolicyRuleVersion
    PolicyRuleVersion.objects.filter(organization=org).update(valid_from=instant)
    accounts.bump_policy_version(org)


def allowed(org, account, at):
    return decide(org, [account.pk], USAGE_MARKETING["data_category"], USAGE_MARKETING["purpose"], at).allowed


def test_leaving_a_group_ends_its_switch_from_then_on_and_the_past_keeps_its_answer(org, people, marketing_for_sales):
    ada = people[0]
    before = timezone.now() - timedelta(hours=1)
    assert allowed(org, ada, before) and allowed(org, ada, timezone.now())

    accounts.update_account(account=ada, actor=SYSTEM, groups=[])
    left = PastMembership.objects.get(account=ada)

    assert not allowed(org, ada, timezone.now())
    assert allowed(org, ada, before) and allowed(org, ada, left.ended_at - timedelta(microseconds=1))
    assert not allowed(org, ada, left.ended_at)
    assert not allowed(org, ada, left.started_at - timedelta(seconds=1))  # before they ever joined


def test_the_idp_removing_and_adding_members_is_history_too(org, sales, people, marketing_for_sales):
    ada = people[0]
    change_group_members(group=sales, actor=SYSTEM, remove=[ada.pk])
    out = timezone.now()
    change_group_members(group=sales, actor=SYSTEM, add=[ada.pk])
    back = AccountGroup.objects.get(account=ada, group=sales).added_at

    assert allowed(org, ada, out - timedelta(days=1))  # a member back then
    assert not allowed(org, ada, out + (back - out) / 2)  # out of the group in between
    assert allowed(org, ada, back) and allowed(org, ada, timezone.now())


def test_a_late_flow_is_judged_and_rolled_up_with_the_groups_of_its_time(api, org, sales, people, marketing_for_sales,
                                                                        eager_celery,
                                                                        django_capture_on_commit_callbacks):
    ada = people[0]
    yesterday = timezone.now() - timedelta(days=1)
    accounts.update_account(account=ada, actor=SYSTEM, groups=[])
    compiled_policy(org)  # compiled after the change, as a worker would be

    with django_capture_on_commit_callbacks(execute=True):  # the worker judges the batch
        response = api.post("/api/v1/flows/", {"flows": [
            {"flow_id": "late", "accounts": [ada.user_name], **USAGE_MARKETING, "destination": "crm",
             "occurred_at": yesterday.isoformat()},
            {"flow_id": "now", "accounts": [ada.user_name], **USAGE_MARKETING, "destination": "crm",
             "occurred_at": timezone.now().isoformat()}]}, format="json")
    assert response.status_code == 202, response.content

    verdicts = dict(TelemetryFlow.objects.filter(organization=org).values_list("flow_id", "verdict"))
    assert verdicts == {"late": "permitted", "now": "violation"}
    groups = dict(ExposureRollup.objects.filter(organization=org).values_list("verdict", "group_key"))
    assert groups == {"permitted": sales.pk, "violation": 0}


def test_effective_policy_as_of_a_past_instant_shows_the_groups_of_then(api, org, sales, people, marketing_for_sales):
    ada = people[0]
    before = timezone.now() - timedelta(hours=1)
    accounts.update_account(account=ada, actor=SYSTEM, groups=[GroupFactory(organization=org)])

    def marketing(at=None):
        query = f"?at={at.isoformat().replace('+00:00', 'Z')}" if at else ""
        body = api.get(f"/api/v1/accounts/{ada.pk}/effective-policy/{query}").json()
        return next(v for v in body["data_sharing"] if v["data_category"] == "telemetry.usage"
                    and v["purpose"] == "marketing")

    assert marketing(before)["effect"] == "allow" and marketing()["effect"] == "deny"


def test_other_accounts_keep_the_fast_path(org, sales):
    """Provisioned with their groups and never changed: no periods are kept for them."""
    AccountFactory(organization=org, groups=[sales])
    moved = AccountFactory(organization=org, groups=[sales])
    accounts.update_account(account=moved, actor=SYSTEM, groups=[])
    history = compiled_policy(org).memberships
    assert list(history.periods) == [moved.pk]
