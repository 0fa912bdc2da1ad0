"""Console exposure page (DESIGN §5): the overview of an organization of 100,000 accounts and
10,000,000 flows renders in < 300 ms of server time, from the rollups. Against a baseline measured
in the same run: the overview's headline figures and exposure cells counted straight from the flow
rows and their account links with the ORM.

    createdb -h 127.0.0.1 -U postgres console_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/console_bench .venv/bin/python bench/console.py
    dropdb -h 127.0.0.1 -U postgres console_bench

Seeds the organization `bench-console` once (a later run reuses it, and writes the days of flows an
interrupted run left out). Through the services, backdated 120 days so that every membership and
rule predates the flows: 100,000 accounts in 200 groups (2 % in none, 3 % deactivated), 2,000 rules
(organization switches for AI features and consented training, group opt-outs, personal choices)
and terms v1 and v2 (re-consent for training on chat and transcripts, effective 40 days ago); then
300,000 consent events over the last 400 days, 40 % of them within the 90 days of flows.

Then 10,000,000 flows over the last 90 days (today's share in today's hours so far), a day per
transaction, each of 1 to 3 people (mostly of one group), in the demo's mix of categories, purposes
and destinations (console.demo_data.DAILY_FLOWS, with its transcript-training incident). Each flow
is judged as a worker judges it (the compiled policy as of its instant: verdict, blocking accounts,
reasons) and the flows and account links are written by COPY. The day's ExposureRollup and
ExposureSeen rows are then derived from exactly those rows in SQL (INSERT ... SELECT ... GROUP BY):
per UTC day and group x category x purpose x destination x verdict, the flows that touched the group
once each, their volume and the distinct accounts; the accounts' groups stand for the groups at each
flow's instant (group_key 0 for none), which they are, since no membership changes after the
backdated seeding. Every run checks one day of them against flows.rollups.roll_up, the workers' own
code, fed the same flows in batches of 10,000 (in a transaction rolled back afterwards). Not written:
the flows' audit events (this page never reads the chain; `audit_seq` is 0) and the batches'
payloads (one done FlowBatch per 10,000 flows, with its counts).

Measured in this process through Django's test client signed in as an admin, each page after one
warm-up request (the compiled policy and the overview's counts, console.overview.state.OverviewState,
are kept per process, as in a server; the policy is compiled first, and the first view counts the
rest, whose time and memory are printed too): the overview for 30 and 90 days, training uses and
all uses, the flows page and the accounts page, median and max of --repeats requests and the
queries of one. The baseline (--no-baseline skips it) is timed once per period and checked against
the page's own figures. Other processes sharing the machine show in the load averages printed
before and after.
"""
import argparse
import cProfile
import gc
import os
import pstats
import random
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before bench/, whose console.py is this file, not the console app
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.pop("CELERY_BROKER_URL", None)  # seeding runs the audit drain eagerly, in-process
os.environ.pop("REDIS_URL", None)
os.environ.setdefault("DEBUG", "false")  # as served: no debug cursor, no template debugging

import django  # noqa: E402

django.setup()

import orjson  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Count, Q, Sum  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_otp import DEVICE_ID_SESSION_KEY  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402

from decisions import current_rss_mb, machine, rss_mb  # noqa: E402  (bench/decisions.py)

from accounts import services as accounts  # noqa: E402
from accounts.models import Account, AccountGroup, Group, Organization, PastMembership  # noqa: E402
from audit.actors import Actor  # noqa: E402
from config.db import copy_rows, reserve_ids  # noqa: E402
from console.overview import forget_overview_states, overview_of  # noqa: E402
from console.periods import period  # noqa: E402
from console.demo_data import DAILY_FLOWS, INCIDENT, backdated  # noqa: E402
from flows.judging import FLOW_COLUMNS, LINK_COLUMNS  # noqa: E402
from flows.models import ExposureRollup, ExposureSeen, FlowAccount, FlowBatch, TelemetryFlow, Verdict  # noqa: E402
from flows.rollups import roll_up  # noqa: E402
from governance import services as governance  # noqa: E402
from governance.decisions import blocking_reasons, decision_payload  # noqa: E402
from governance.models import AIFeature, ConsentEvent, DataCategory, Purpose  # noqa: E402
from governance.selectors import catalog_names, compiled_policy  # noqa: E402

SLUG = "bench-console"
ADMIN = Actor("user", None, "bench admin")
SERVICE = Actor("token", None, "bench service")
BACKDATED_DAYS = 120
BATCH = 10_000
# (category, purpose, destination, weight), the demo's daily mix; the incident runs for a tenth of the period
USES = [(c, p, d, per_day) for c, p, d, per_day, *_ in DAILY_FLOWS]
INCIDENT_USE = (*INCIDENT[:3], INCIDENT[4])
CONSENTS = [  # (target, weight)
    (("content.chat", "ai.training.first_party"), 35), (("content.transcript", "ai.training.first_party"), 20),
    (("telemetry.usage", "ai.training.third_party"), 15), (("meeting_summary",), 30)]
MECHANISMS = ["self_service"] * 6 + ["admin_on_behalf"] * 2 + ["join_or_leave_prompt"] * 2 + ["import"]


def step(message: str, started: float) -> float:
    now = time.perf_counter()
    print(f"  {message} ({now - started:.1f} s)", flush=True)
    return now


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=dt_timezone.utc)


# --- the organization, its policy and consents ------------------------------------------------------------------

def seed_organization(n_accounts: int, n_groups: int, n_rules: int, n_consents: int) -> Organization:
    rng = random.Random(11)
    t = time.perf_counter()
    category = {c.key: c for c in DataCategory.objects.filter(organization=None)}
    purpose = {p.key: p for p in Purpose.objects.filter(organization=None)}
    feature = {f.key: f for f in AIFeature.objects.filter(organization=None)}
    now = timezone.now()
    print(f"== seeding '{SLUG}': {n_accounts:,} accounts, {n_groups} groups, {n_rules:,} rules, "
          f"{n_consents:,} consent events", flush=True)
    with backdated(now - timedelta(days=BACKDATED_DAYS)), transaction.atomic():
        org = accounts.create_organization(slug=SLUG, name="Console Bench", actor=ADMIN)
        groups = [accounts.create_group(organization=org, actor=ADMIN, display_name=f"Group {i:03d}",
                                        external_id=f"g{i}") for i in range(n_groups)]
        for first in range(0, n_accounts, 10_000):
            accounts.create_accounts(organization=org, actor=ADMIN, accounts=[
                {"user_name": f"u{i:06d}@console.bench", "display_name": f"Person {i}", "active": rng.random() > 0.03,
                 "groups": [] if rng.random() < 0.02 else rng.sample(groups, 1 if rng.random() < 0.8 else 2)}
                for i in range(first, min(first + 10_000, n_accounts))])
        t = step("accounts", t)
        rules = 0

        def rule(**arguments):
            nonlocal rules
            governance.set_rule(organization=org, actor=ADMIN, **arguments)
            rules += 1

        for key in ("meeting_summary", "transcription"):
            rule(scope="organization", effect="allow", reason="Approved", feature=feature[key])
        rule(scope="organization", effect="deny", locked=True, reason="Legal hold", feature=feature["smart_recording"])
        for c, p in (("telemetry.usage", "service.improvement"), ("telemetry.diagnostics", "service.improvement"),
                     ("telemetry.engagement", "service.improvement"), ("content.chat", "ai.training.first_party"),
                     ("telemetry.diagnostics", "ai.training.first_party"),
                     ("telemetry.usage", "ai.training.third_party")):
            rule(scope="organization", effect="allow", reason="With each person's consent where needed",
                 data_category=category[c], purpose=purpose[p])
        rule(scope="organization", effect="deny", locked=True, reason="No marketing use",
             data_category=category["telemetry.usage"], purpose=purpose["marketing"])
        for i, group in enumerate(groups):
            rule(scope="group", group=group, effect="allow" if i % 3 == 0 else "deny", locked=i % 10 == 0,
                 reason=f"Group decision {i}", feature=feature["chat_compose"])
            rule(scope="group", group=group, effect="deny" if i % 4 == 0 else "allow", reason="Training opt-out",
                 data_category=category["content.chat"], purpose=purpose["ai.training.first_party"])
        people = list(Account.objects.filter(organization=org).order_by("pk"))
        for account in rng.sample(people, n_rules - rules):
            rule(scope="account", account=account, effect=rng.choice(["allow", "deny"]), reason="Personal choice",
                 feature=feature[rng.choice(["meeting_summary", "transcription", "chat_compose"])])
        t = step(f"{rules:,} rules", t)
        v1 = governance.publish_terms(organization=org, actor=ADMIN, version="v1", text_sha256="1" * 64,
                                      effective_at=now - timedelta(days=400),
                                      covers=[(category["content.chat"], purpose["ai.training.first_party"])])
        v2 = governance.publish_terms(organization=org, actor=ADMIN, version="v2", text_sha256="2" * 64,
                                      effective_at=now - timedelta(days=40), requires_reconsent=True,
                                      covers=[(category[c], purpose["ai.training.first_party"])
                                              for c in ("content.chat", "content.transcript")])
    targets, weights = zip(*CONSENTS)
    events = []
    for _ in range(n_consents):
        target = rng.choices(targets, weights)[0]
        occurred = now - timedelta(days=rng.uniform(1 / 24, 90) if rng.random() < 0.4 else rng.uniform(90, 400))
        if len(target) == 1:
            what = {"feature": feature[target[0]], "action": "grant", "mechanism": "join_or_leave_prompt"}
        else:
            what = {"data_category": category[target[0]], "purpose": purpose[target[1]],
                    "action": "revoke" if rng.random() < 0.1 else "grant", "mechanism": rng.choice(MECHANISMS)}
        events.append({"account": rng.choice(people), "occurred_at": occurred,
                       "terms_version": v2 if occurred >= v2.effective_at else v1, **what})
    events.sort(key=lambda e: e["occurred_at"])
    for first in range(0, len(events), 20_000):
        with transaction.atomic():
            governance.import_consents(organization=org, actor=ADMIN, consents=events[first:first + 20_000])
    step(f"{len(events):,} consent events", t)
    return org


# --- flows, account links, rollups ------------------------------------------------------------------------------

def flow_days(n_flows: int, first: date, days: int) -> list[tuple[date, int]]:
    """The days of flows and how many each gets: weekdays busier than weekends, `n_flows` in all."""
    dates = [first + timedelta(days=n) for n in range(days)]
    weights = [0.35 if d.weekday() >= 5 else 1.0 for d in dates]
    counts = [int(n_flows * w / sum(weights)) for w in weights]
    counts[-1] += n_flows - sum(counts)
    return list(zip(dates, counts))


def seed_flows(org: Organization, n_flows: int, days: int) -> None:
    """The flows of each day not written yet, their account links and rollups, a day per transaction."""
    compiled = compiled_policy(org)
    assert compiled.covers_rules_at(timezone.now() - timedelta(days=days)), "rules changed within the period"
    assert not PastMembership.objects.filter(organization=org).exists(), "memberships changed within the period"
    names = {pk: name for name, pk in compiled.account_ids.items()}
    people = list(Account.objects.filter(organization=org, active=True).order_by("pk").values_list("pk", flat=True))
    members = {}
    for account_id, group_id in AccountGroup.objects.filter(account__organization=org).values_list("account_id",
                                                                                                   "group_id"):
        members.setdefault(group_id, []).append(account_id)
    active = set(people)
    members = {g: [a for a in ids if a in active] for g, ids in members.items()}
    groups_of = compiled.snapshot.account_groups
    first_day = (ExposureRollup.objects.filter(organization=org).order_by("day").values_list("day", flat=True).first()
                 or timezone.now().date() - timedelta(days=days - 1))
    done = set(ExposureRollup.objects.filter(organization=org).values_list("day", flat=True).distinct())
    schedule = flow_days(n_flows, first_day, days)
    incident = range(int(days * INCIDENT[3][0]), int(days * INCIDENT[3][1]))
    t = time.perf_counter()
    written = sum(count for day, count in schedule if day in done)
    for index, (day, count) in enumerate(schedule):
        if day in done:
            continue
        uses = USES + [INCIDENT_USE] if index in incident else USES
        rng = random.Random(day.toordinal())
        start = midnight(day)
        span = min(timezone.now() - timedelta(seconds=1), start + timedelta(days=1)) - start
        with transaction.atomic():
            seed_day(org, compiled, rng, day, start, span, count, uses, people, members, groups_of, names)
        written += count
        t = step(f"{day}: {count:,} flows ({written:,} of {n_flows:,})", t)


def seed_day(org, compiled, rng, day, start, span, count, uses, people, members, groups_of, names) -> None:
    keys, weights = [u[:3] for u in uses], [u[3] for u in uses]
    ids = sorted(reserve_ids(TelemetryFlow, count))
    cursor = connection.cursor()
    cursor.execute("SET LOCAL synchronous_commit = off")
    flow_rows, links = [], []
    counts = Counter()
    batch = None
    for n, flow_pk in enumerate(ids):
        if n % BATCH == 0:
            if batch is not None:
                FlowBatch.objects.filter(pk=batch.pk).update(counts=dict(counts))
            counts = Counter()
            batch = FlowBatch.objects.create(
                organization=org, status=FlowBatch.Status.DONE, flow_count=min(BATCH, count - n), payload=b"[]",
                received_at=start + span * (n / count), processed_at=start + span * (n / count),
                submitted_by=SERVICE.as_dict(), attempts=1)
        category, purpose, destination = rng.choices(keys, weights)[0]
        first = rng.choice(people)
        who = [first]
        for _ in range(rng.choice((0, 0, 0, 1, 2))):  # 1 to 3 people, mostly of the first one's group
            pool = members.get(rng.choice(groups_of.get(first) or (0,))) if rng.random() < 0.8 else None
            other = rng.choice(pool or people)
            if other not in who:
                who.append(other)
        at = start + span * ((n + rng.random()) / count)
        decision = compiled.decide(who, category, purpose, at)
        user_names = [names[a] for a in who]
        if decision.allowed:
            verdict, blocking = Verdict.PERMITTED, []
            reasons = decision_payload(decision, user_names[:1])["reasons"]
        else:
            verdict = Verdict.VIOLATION
            blocking = [name for name, d in zip(user_names, decision.accounts) if not d.allowed]
            reasons = blocking_reasons(decision, user_names)
        counts[verdict] += 1
        volume = rng.randrange(1, 5000)
        flow_rows.append((flow_pk, org.pk, f"{day.isoformat()}-{n:06d}", batch.pk, at, category, purpose, destination,
                          volume, len(who), verdict, orjson.dumps(blocking).decode(), orjson.dumps(reasons).decode(),
                          decision.policy_version, 0, at))
        links.extend((flow_pk, d.account_id, not d.allowed) for d in decision.accounts)
    FlowBatch.objects.filter(pk=batch.pk).update(counts=dict(counts))
    copy_rows(TelemetryFlow, FLOW_COLUMNS, flow_rows)
    copy_rows(FlowAccount, LINK_COLUMNS, links)
    derive_rollups(org, ids[0], ids[-1])


# Per flow and group it touched (its accounts' groups; 0 for an account in none): what the rollup adds up.
FLOW_GROUPS = """
    SELECT f.id, (f.occurred_at AT TIME ZONE 'UTC')::date AS day, COALESCE(ag.group_id, 0) AS group_key,
           f.data_category, f.purpose, f.destination, f.verdict, f.volume, fa.account_id
    FROM audit_telemetryflow f
    JOIN audit_flowaccount fa ON fa.flow_id = f.id
    LEFT JOIN accounts_accountgroup ag ON ag.account_id = fa.account_id
    WHERE f.organization_id = %(org)s AND f.id BETWEEN %(first)s AND %(last)s"""
CELL = "day, group_key, data_category, purpose, destination, verdict"


def derive_rollups(org, first_id: int, last_id: int) -> None:
    """The rollup and seen rows of the flows with ids first_id..last_id (whole days), from those rows alone."""
    params = {"org": org.pk, "first": first_id, "last": last_id}
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(f"""
            INSERT INTO audit_exposureseen (organization_id, day, account_id, data_category, purpose, destination,
                                            verdict)
            SELECT DISTINCT f.organization_id, (f.occurred_at AT TIME ZONE 'UTC')::date, fa.account_id,
                   f.data_category, f.purpose, f.destination, f.verdict
            FROM audit_telemetryflow f JOIN audit_flowaccount fa ON fa.flow_id = f.id
            WHERE f.organization_id = %(org)s AND f.id BETWEEN %(first)s AND %(last)s""", params)
        cursor.execute(f"""
            WITH links AS ({FLOW_GROUPS}),
            touched AS (SELECT DISTINCT id, {CELL}, volume FROM links)
            INSERT INTO audit_exposurerollup (organization_id, {CELL}, flows, volume, accounts)
            SELECT %(org)s, {CELL}, cells.flows, cells.volume, people.accounts
            FROM (SELECT {CELL}, count(*) AS flows, sum(volume) AS volume FROM touched GROUP BY {CELL}) cells
            JOIN (SELECT {CELL}, count(DISTINCT account_id) AS accounts FROM links GROUP BY {CELL}) people
            USING (day, group_key, data_category, purpose, destination, verdict)""", params)


def rollups_of(org, day: date) -> tuple[dict, set]:
    cells = {row[:6]: row[6:] for row in ExposureRollup.objects.filter(organization=org, day=day).values_list(
        "group_key", "data_category", "purpose", "destination", "verdict", "day", "flows", "volume", "accounts")}
    seen = set(ExposureSeen.objects.filter(organization=org, day=day).values_list(
        "account_id", "data_category", "purpose", "destination", "verdict"))
    return cells, seen


class RolledBack(Exception):
    pass


def check_rollups(org, day: date) -> None:
    """The SQL-derived rollups of `day` against the workers' flows.rollups.roll_up over the same flows."""
    t = time.perf_counter()
    derived = rollups_of(org, day)
    compiled = compiled_policy(org)
    flows = list(TelemetryFlow.objects.filter(organization=org, occurred_at__gte=midnight(day),
                                              occurred_at__lt=midnight(day + timedelta(days=1)))
                 .order_by("pk").values_list("pk", "flow_id", "occurred_at", "data_category", "purpose",
                                             "destination", "volume", "verdict"))
    who = {}
    for flow_id, account_id in (FlowAccount.objects.filter(flow_id__in=[f[0] for f in flows]).order_by("pk")
                                .values_list("flow_id", "account_id")):
        who.setdefault(flow_id, []).append(account_id)
    judged = [([flow_id, who[pk], category, purpose, destination, at.isoformat(), volume], at,
               SimpleNamespace(allowed=verdict == Verdict.PERMITTED), None)
              for pk, flow_id, at, category, purpose, destination, volume, verdict in flows]
    try:
        with transaction.atomic():
            ExposureRollup.objects.filter(organization=org, day=day).delete()
            ExposureSeen.objects.filter(organization=org, day=day).delete()
            for first in range(0, len(judged), BATCH):
                roll_up(org, judged[first:first + BATCH], compiled.memberships)
            workers = rollups_of(org, day)
            raise RolledBack
    except RolledBack:
        pass
    same = derived == workers
    print(f"rollup_check: {day}, {len(flows):,} flows, {len(derived[0]):,} rollup cells and {len(derived[1]):,} seen "
          f"rows: {'the same as' if same else 'DIFFERENT FROM'} flows.rollups.roll_up in batches of {BATCH:,} "
          f"({time.perf_counter() - t:.0f} s)", flush=True)
    if not same:
        raise SystemExit(f"cells differing: {len(set(derived[0].items()) ^ set(workers[0].items()))}, "
                         f"seen rows differing: {len(derived[1] ^ workers[1])}")


# --- measuring ----------------------------------------------------------------------------------------------------

def admin_client(org) -> Client:
    user, _ = get_user_model().objects.get_or_create(username="bench-console-admin")
    if not user.org_roles.filter(organization=org).exists():
        with transaction.atomic():
            accounts.add_org_role(organization=org, user=user, role="admin", actor=ADMIN)
    client = Client()
    client.force_login(user)
    # an admin signed in with a password has passed the one-time-code check too (identity.access)
    device, _ = TOTPDevice.objects.get_or_create(user=user, name="bench", defaults={"confirmed": True})
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def measure_page(client, url: str, repeats: int) -> float:
    started = time.perf_counter()
    response = client.get(url)  # warm-up: the process's first view compiles the policy and counts what it keeps
    warm_up = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    median = statistics.median(times)
    print(f"{url:<36} median {median:7.1f} ms  max {max(times):7.1f} ms  {len(queries):3d} queries"
          f"  ({len(response.content) / 1e6:.1f} MB; warm-up {warm_up:,.0f} ms)", flush=True)
    return median


def baseline(org, days: int) -> tuple[dict, dict]:
    """The overview's headline figures and exposure cells counted from the flow rows and links with the ORM."""
    since, until = period(days)
    flows = TelemetryFlow.objects.filter(organization=org, occurred_at__gte=midnight(since),
                                         occurred_at__lt=midnight(until + timedelta(days=1)))
    links = FlowAccount.objects.filter(flow__in=flows)
    names = catalog_names(org)
    content = [k for k, kind in names.category_kinds.items() if kind == "customer_content"]
    training = compiled_policy(org).snapshot.catalog.training_purposes()
    trained = links.filter(flow__purpose__in=training).aggregate(
        content=Count("account_id", distinct=True, filter=Q(flow__data_category__in=content)),
        generated=Count("account_id", distinct=True, filter=~Q(flow__data_category__in=content)))
    figures = {"trained_content": trained["content"], "trained_generated": trained["generated"],
               "violations": flows.filter(verdict=Verdict.VIOLATION).count()}
    violation = Q(verdict=Verdict.VIOLATION)
    cells = {}
    for group in [*Group.objects.filter(organization=org).values_list("pk", flat=True), None]:
        members = (AccountGroup.objects.filter(group_id=group).values("account_id") if group else
                   Account.objects.filter(organization=org, groups__isnull=True).values("pk"))
        touched = FlowAccount.objects.filter(account_id__in=members).values("flow_id")
        for row in (flows.filter(pk__in=touched).values("data_category", "purpose", "destination")
                    .annotate(n=Count("id"), total=Sum("volume"), bad=Count("id", filter=violation),
                              bad_volume=Sum("volume", filter=violation))):
            cells[(group, row["data_category"], row["purpose"], row["destination"])] = (
                row["n"], row["total"], row["bad"], row["bad_volume"] or 0)
    return figures, cells


def page_answers(org, days: int) -> tuple[dict, dict]:
    data = overview_of(org, days=days, uses="all")
    figures = {key: data["figures"][key] for key in ("trained_content", "trained_generated", "violations")}
    cells = {(c["group"], c["data_category"], c["purpose"], c["destination"]):
             (c["flows"], c["volume"], c["violations"], c["violation_volume"]) for c in data["cells"]}
    return figures, cells


def state_mb(org) -> float:
    """What the overview keeps of the organization, in MB of live objects (tracemalloc), counted anew
    for both periods; the compiled policy is compiled already and not counted."""
    forget_overview_states()
    gc.collect()
    tracemalloc.start()
    for days in (30, 90):
        overview_of(org, days=days, uses="all")
    gc.collect()
    size = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()
    return size


def profile(client, url: str) -> None:
    client.get(url)
    profiler = cProfile.Profile()
    profiler.enable()
    client.get(url)
    profiler.disable()
    print(f"\n== profile of {url}")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--rules", type=int, default=2_000)
    parser.add_argument("--consents", type=int, default=300_000)
    parser.add_argument("--flows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90, help="days of flows, up to today")
    parser.add_argument("--repeats", type=int, default=7, help="timed requests per page")
    parser.add_argument("--no-baseline", action="store_true", help="skip the ORM baseline")
    parser.add_argument("--profile", metavar="URL", help="cProfile one request of URL (after its warm-up)")
    args = parser.parse_args()
    if not settings.USING_POSTGRES:
        raise SystemExit("Run on PostgreSQL: DATABASE_URL=postgres://... (a scratch database)")
    print(f"machine: {machine()}")
    call_command("migrate", verbosity=0)
    org = Organization.objects.filter(slug=SLUG).first()
    started = time.perf_counter()
    if org is None:
        org = seed_organization(args.accounts, args.groups, args.rules, args.consents)
    else:
        print(f"== reusing '{SLUG}'")
        assert ConsentEvent.objects.filter(organization=org).count() == args.consents, \
            "the seeding stopped before its flows: drop the database and run again"
    days_before = ExposureRollup.objects.filter(organization=org).values("day").distinct().count()
    seed_flows(org, args.flows, args.days)
    if ExposureRollup.objects.filter(organization=org).values("day").distinct().count() != days_before:
        print(f"  seeded in {time.perf_counter() - started:.0f} s; VACUUM ANALYZE", flush=True)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # fresh statistics and visibility, as autovacuum would leave them
    since, until = period(args.days)
    flows = TelemetryFlow.objects.filter(organization=org, occurred_at__gte=midnight(since))
    counts = {"accounts": Account.objects.filter(organization=org).count(),
              "groups": Group.objects.filter(organization=org).count(),
              "rules": org.policy_rules.filter(deleted_at__isnull=True).count(),
              "consent_events": ConsentEvent.objects.filter(organization=org).count(),
              f"flows_since_{since}": flows.count(),
              "violations": flows.filter(verdict=Verdict.VIOLATION).count(),
              "account_links": FlowAccount.objects.filter(flow__in=flows).count(),
              "rollup_rows": ExposureRollup.objects.filter(organization=org, day__gte=since).count(),
              "seen_rows": ExposureSeen.objects.filter(organization=org, day__gte=since).count()}
    print("== data: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()), flush=True)
    checked = until - timedelta(days=1)
    while checked.weekday() >= 5:  # a busy day: yesterday, or the last weekday before it
        checked -= timedelta(days=1)
    check_rollups(org, checked)

    client = admin_client(org)
    if args.profile:
        profile(client, args.profile)
        return
    rss = current_rss_mb()  # the rollup check compiled the policy
    print(f"\n== server time through the test client, {args.repeats} requests after one warm-up; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    overview = reverse("console:overview")
    medians = {}
    for days in (30, 90):
        for uses in ("training", "all"):
            medians[days, uses] = measure_page(client, f"{overview}?days={days}&uses={uses}", args.repeats)
    for url in (reverse("console:flows"), reverse("console:flows") + "?verdict=violation",
                reverse("console:accounts"), reverse("console:accounts") + "?q=u0999"):
        measure_page(client, url, args.repeats)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"overview_ms_median_worst: {max(medians.values()):.1f}  (target < 300 ms)")
    print(f"process RSS {rss:.0f} MB with the compiled policy, {current_rss_mb():.0f} MB with the overview's counts")
    print(f"overview_state_mb: {state_mb(org):.0f}  (live objects, by tracemalloc)")
    if not args.no_baseline:
        for days in (30, 90):
            print(f"\n== baseline, {days} days: headline figures and exposure cells from the flow rows (ORM)",
                  flush=True)
            started = time.perf_counter()
            expected = baseline(org, days)
            seconds = time.perf_counter() - started
            answers = page_answers(org, days)
            differing = sum(answers[0][k] != expected[0][k] for k in expected[0]) + len(
                set(answers[1].items()) ^ set(expected[1].items()))
            print(f"baseline_ms: {seconds * 1000:,.0f}  (figures {expected[0]}; {len(expected[1]):,} cells; "
                  f"answers differing from the page's: {differing})")
            print(f"ratio_vs_baseline: {seconds * 1000 / medians[days, 'training']:,.0f}x "
                  f"(the whole overview page, days={days}, against the baseline's figures and cells alone)")
    print(f"\npeak_rss_mb: {rss_mb():.0f}")
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
