"""The overview's figures equal the ones counted straight from the rows and the compiled policy, account
by account: on its first view in a process, and after each kind of change it catches up on."""
from collections import Counter
from datetime import datetime, time, timedelta
from unittest import mock

import pytest
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts import services as accounts
from accounts.models import Account, Group
from accounts.selectors import account_ids_by_user_name, organization_overview
from audit.actors import SYSTEM
from console.overview import overview_of, violation_count
from console.overview.page import activity, heatmap_targets
from console.periods import period
from flows.batches import receive_batch
from flows.models import ExposureSeen, TelemetryFlow, Verdict
from flows.selectors import exposure
from flows.validation import validate_flows
from governance import services as governance
from governance.consent import REVOKED, STALE, basis_key
from governance.engine import resolve
from governance.memberships import members_by_group
from governance.models import AIFeature, ConsentEvent, DataCategory, Purpose, TermsVersion
from governance.selectors import catalog_names, compiled_policy, load_catalog

from .conftest import catalog, populate, settle

pytestmark = pytest.mark.django_db

VIEWS = [(7, "training"), (30, "all"), (30, "ai")]


@pytest.fixture(autouse=True)
def eager(eager_celery):
    """Tasks a commit hands the workers run in-process."""


@pytest.fixture
def acme(org):
    populate(org, people=40, days=12)
    return org


def counted_directly(organization, *, days: int, uses: str) -> dict:
    """The overview's figures from the rows: distinct accounts over the exposure records, flows
    counted, and every active account's consent basis and exposure resolved one by one."""
    now = timezone.now()
    since, until = period(days)
    names = catalog_names(organization)
    compiled = compiled_policy(organization)
    index, snapshot, catalog_ = compiled.consents, compiled.snapshot, compiled.snapshot.catalog
    training = catalog_.training_purposes()
    active = list(Account.objects.filter(organization=organization, active=True).values_list("pk", flat=True))
    members = members_by_group(snapshot.account_groups, active)
    groups = dict(Group.objects.filter(organization=organization).order_by("display_name")
                  .values_list("pk", "display_name"))
    seen = ExposureSeen.objects.filter(organization=organization, day__gte=since, day__lte=until)
    content = [k for k, kind in names.category_kinds.items() if kind == "customer_content"]
    trained = seen.filter(purpose__in=training).aggregate(
        content=Count("account_id", distinct=True, filter=Q(data_category__in=content)),
        generated=Count("account_id", distinct=True, filter=~Q(data_category__in=content)))
    in_force, not_free, stale, stale_accounts = set(), set(), set(), set()
    for account_id, pairs in index.timelines.items():
        for pair in pairs:
            basis = index.basis(account_id, pair, now)
            if basis.record is None or basis.state == REVOKED:
                continue
            in_force.add(basis.record.id)
            not_free.update([basis.record.id] if not basis.record.freely_given else [])
            if basis.state == STALE:
                stale.add(basis.record.id)
                stale_accounts.add(account_id)
    violations = dict(TelemetryFlow.objects.filter(
        organization=organization, verdict=Verdict.VIOLATION, occurred_at__date__gte=since,
        occurred_at__date__lte=until).annotate(day=TruncDate("occurred_at")).values_list("day")
        .annotate(n=Count("id")))
    cells = [{k: v for k, v in cell.items() if k not in ("account_days", "peak_daily_accounts")}
             for cell in exposure(organization, since=since, until=until)["cells"]]
    shown = {"training": set(training), "ai": set(catalog_.ai_purposes)}.get(uses)
    table = []
    for cell in sorted((c for c in cells if shown is None or c["purpose"] in shown),
                       key=lambda c: (-c["volume"], -c["flows"], c["group_name"])):
        pair = (cell["data_category"], cell["purpose"])
        needs = catalog_.needs_consent(*pair)
        table.append({**cell, "needs_consent": needs, "basis": Counter(
            basis_key(index.basis(a, pair, now)) for a in members.get(cell["group"] or 0, ())
        ) if needs else None})
    targets = heatmap_targets(compiled, cells, training)

    def allowed(account_id, target):
        if target.is_feature:
            return resolve(snapshot, account_id, target).allowed
        return compiled.decide_account(account_id, target.data_category, target.purpose, now).allowed

    rows = [("All accounts", active)] + [(name, members[g]) for g, name in groups.items() if members.get(g)]
    hits = [[sum(allowed(a, t) for a in ids) for t in targets] for _, ids in rows]
    reached = seen.filter(account_id__in=active)
    ai = set(reached.filter(purpose__in=catalog_.ai_purposes).values_list("account_id", flat=True))
    trained_ids = set(reached.filter(purpose__in=training).values_list("account_id", flat=True))
    treemap = sorted(({"name": name, "members": len(members.get(g, ())),
                       "training": len(trained_ids & set(members.get(g, ()))),
                       "ai_only": len((ai - trained_ids) & set(members.get(g, ())))} for g, name in groups.items()),
                     key=lambda g: -g["members"])
    terms = list(TermsVersion.objects.filter(organization=organization).order_by("effective_at")
                 .values("version", "effective_at", "requires_reconsent"))
    consents = Counter(dict(((d, a), n) for d, a, n in ConsentEvent.objects.filter(
        organization=organization, occurred_at__date__gte=since, occurred_at__date__lte=until)
        .annotate(day=TruncDate("occurred_at")).values_list("day", "action").annotate(n=Count("id"))))
    counts = organization_overview(organization)
    return {
        "figures": {**counts, "trained_content": trained["content"], "trained_generated": trained["generated"],
                    "violations": sum(violations.values()), "consents_in_force": len(in_force),
                    "not_freely_given": len(not_free), "stale": len(stale), "stale_accounts": len(stale_accounts),
                    "latest_reconsent": next((t for t in reversed(terms) if t["requires_reconsent"]
                                              and t["effective_at"] <= now), None)},
        "cells": cells, "table": table,
        "heatmap": {"groups": [f"{name} ({len(ids)})" for name, ids in rows],
                    "targets": [names.target_label(t, short=True) for t in targets],
                    "shares": [[round(h / len(ids), 4) if ids else None for h in row] for row, (_, ids) in
                               zip(hits, rows)],
                    "counts": [[f"{h} of {len(ids)}" for h in row] for row, (_, ids) in zip(hits, rows)]},
        "treemap": treemap,
        "timeline": activity(since, until, violations, consents, terms),
    }


def assert_counted_directly(organization):
    for days, uses in VIEWS:
        shown = overview_of(organization, days=days, uses=uses)
        expected = counted_directly(organization, days=days, uses=uses)
        for key, value in expected.items():
            assert shown[key] == value, (days, uses, key)


def report(organization, *flows):
    """Report flows (user names, category, purpose, occurred_at) and have a worker judge them."""
    body = {"flows": [{"flow_id": f"t-{n}-{at.isoformat()}", "accounts": who, "data_category": category,
                       "purpose": purpose, "destination": "vendor.test", "occurred_at": at.isoformat(),
                       "volume": 10 + n} for n, (who, category, purpose, at) in enumerate(flows)]}
    validated = validate_flows(body, catalog=load_catalog(organization),
                               resolve_accounts=lambda wanted: account_ids_by_user_name(organization, wanted))
    receive_batch(organization=organization, actor=SYSTEM, flows=validated)
    settle(organization)


def people(organization, count=None):
    return list(Account.objects.filter(organization=organization).order_by("pk"))[:count]


def test_the_first_view_counts_what_the_rows_say(acme):
    assert TelemetryFlow.objects.filter(organization=acme, verdict=Verdict.VIOLATION).exists()
    assert_counted_directly(acme)


def test_new_flows_late_ones_and_violations_are_counted_on_the_next_view(acme):
    assert_counted_directly(acme)
    someone, other = people(acme, 2)
    now = timezone.now()
    report(acme, ([someone.user_name], "content.chat", "ai.training.first_party", now - timedelta(minutes=3)),
           ([someone.user_name, other.user_name], "telemetry.usage", "ai.training.third_party",
            now - timedelta(days=5)),
           ([other.user_name], "content.transcript", "ai.training.first_party", now - timedelta(days=20)),
           ([other.user_name], "telemetry.usage", "service.provision", now - timedelta(hours=2)))
    assert_counted_directly(acme)


def test_consents_deactivations_new_accounts_and_group_moves_are_counted_on_the_next_view(acme):
    assert_counted_directly(acme)
    first, second, third = people(acme, 3)
    chat, training = catalog("content.chat", DataCategory), catalog("ai.training.first_party", Purpose)
    governance.record_consent(organization=acme, actor=SYSTEM, account=first, action="grant",
                              mechanism="admin_on_behalf", data_category=chat, purpose=training)
    governance.record_consent(organization=acme, actor=SYSTEM, account=second, action="revoke",
                              mechanism="self_service", data_category=chat, purpose=training)
    assert_counted_directly(acme)
    accounts.update_account(account=third, actor=SYSTEM, active=False)
    accounts.update_account(account=first, actor=SYSTEM, groups=list(Group.objects.filter(organization=acme)))
    accounts.create_account(organization=acme, actor=SYSTEM, user_name="newcomer@acme.example")
    accounts.create_account(organization=acme, actor=SYSTEM, user_name="grouped@acme.example",
                            groups=[Group.objects.filter(organization=acme).first()])
    assert_counted_directly(acme)
    accounts.update_account(account=third, actor=SYSTEM, active=True)
    report(acme, (["newcomer@acme.example"], "content.chat", "ai.inference", timezone.now() - timedelta(minutes=1)))
    assert_counted_directly(acme)


def test_a_rule_change_counts_again(acme):
    assert_counted_directly(acme)
    governance.set_rule(organization=acme, actor=SYSTEM, scope="group",
                        group=Group.objects.get(organization=acme, display_name="Support"),
                        data_category=catalog("content.chat", DataCategory),
                        purpose=catalog("ai.training.first_party", Purpose), effect="allow", reason="programme")
    governance.set_rule(organization=acme, actor=SYSTEM, scope="organization",
                        feature=catalog("chat_compose", AIFeature), effect="allow", reason="everyone")
    assert_counted_directly(acme)


def test_consents_turn_stale_when_re_consent_terms_take_effect_later(acme):
    chat, training = catalog("content.chat", DataCategory), catalog("ai.training.first_party", Purpose)
    governance.publish_terms(organization=acme, actor=SYSTEM, version="later", text_sha256="3" * 64,
                             effective_at=timezone.now() + timedelta(hours=1), requires_reconsent=True,
                             covers=[(chat, training)])
    stale_before = overview_of(acme, days=7)["figures"]["stale"]
    assert_counted_directly(acme)
    real_now = timezone.now
    with mock.patch("django.utils.timezone.now", lambda: real_now() + timedelta(hours=2)):
        assert_counted_directly(acme)
        assert overview_of(acme, days=7)["figures"]["stale"] > stale_before


def test_flows_reported_for_tomorrow_by_a_clock_ahead_count_from_tomorrow(acme):
    today = timezone.now().date()
    evening = datetime.combine(today, time(23, 58), tzinfo=timezone.get_current_timezone())
    with mock.patch("django.utils.timezone.now", lambda: evening):
        newcomer = accounts.create_account(organization=acme, actor=SYSTEM, user_name="late@acme.example",
                                           groups=[Group.objects.filter(organization=acme).first()])
        assert_counted_directly(acme)
        report(acme, ([newcomer.user_name], "content.chat", "ai.training.first_party", evening + timedelta(minutes=4)))
        assert_counted_directly(acme)
        before = overview_of(acme, days=7)["figures"]["trained_content"]
    with mock.patch("django.utils.timezone.now", lambda: evening + timedelta(minutes=12)):
        assert_counted_directly(acme)
        assert overview_of(acme, days=7)["figures"]["trained_content"] == before + 1


def test_the_flows_page_counts_the_same_violations(acme):
    since, until = period(30)
    direct = TelemetryFlow.objects.filter(organization=acme, verdict=Verdict.VIOLATION,
                                          occurred_at__date__gte=since).count()
    assert violation_count(acme, since, until) == direct
    report(acme, ([people(acme, 1)[0].user_name], "telemetry.usage", "marketing",
                  timezone.now() - timedelta(minutes=1)))
    assert violation_count(acme, since, until) == direct + 1
