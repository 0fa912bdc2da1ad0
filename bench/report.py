"""A monthly compliance report of a 100,000-account organization (DESIGN §5: < 30 s, peak RSS <= 1 GB).

    createdb -h 127.0.0.1 -U postgres bench_report
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_report .venv/bin/python bench/report.py
    dropdb -h 127.0.0.1 -U postgres bench_report

Seeds the organization `bench-report` once (a later run reuses it): 100,000 accounts in 200 groups
(accounts.services.create_accounts, in chunks), 2,000 rules set before last month and 200 changes
during it, 300,000 consent events (governance.services.import_consents), a terms version requiring
re-consent in the middle of the month, and last month's flows. The flows go through
flows.validation.validate_flows + flows.batches.receive_batch and are judged in this process by process_batch, the
worker's own code: the exposure rollups, flows, account links and chained audit events are the
ones workers write, not bulk rows made up for the benchmark.

Then last month's report is generated, in every format (PDF, HTML, CSV zip, JSON), by a fresh
process, as a worker would: the time from claim to files committed, and that process's peak RSS.
"""
import argparse
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.pop("CELERY_BROKER_URL", None)  # everything here runs in this process

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts import services as accounts  # noqa: E402
from accounts.models import Account, Organization  # noqa: E402
from audit import services as audit  # noqa: E402
from audit.actors import Actor  # noqa: E402
from audit.models import AuditDigest, AuditEvent  # noqa: E402
from flows.batches import process_batch, receive_batch  # noqa: E402
from flows.models import TelemetryFlow  # noqa: E402
from flows.validation import validate_flows  # noqa: E402
from governance import selectors as governance_selectors, services as governance  # noqa: E402
from governance.models import AIFeature, DataCategory, Purpose  # noqa: E402
from reports import periods, services as reports  # noqa: E402
from reports.models import Report  # noqa: E402

SLUG = "bench-report"
ADMIN = Actor("user", None, "bench admin")
SERVICE = Actor("token", None, "bench service")
USES = [  # (category, purpose, destination, weight)
    ("telemetry.usage", "service.provision", "vendor.service", 30),
    ("telemetry.diagnostics", "service.improvement", "vendor.analytics", 15),
    ("content.transcript", "ai.inference", "vendor.llm", 20),
    ("content.transcript", "ai.training.first_party", "vendor.model_training", 12),
    ("content.chat", "ai.training.first_party", "vendor.model_training", 8),
    ("content.audio", "ai.inference", "vendor.llm", 8),
    ("telemetry.engagement", "ai.training.third_party", "thirdparty.llm_provider", 4),
    ("telemetry.meeting_metadata", "marketing", "vendor.marketing", 3),
]
CONSENT_USES = [("content.transcript", "ai.training.first_party"), ("content.chat", "ai.training.first_party"),
                ("telemetry.engagement", "ai.training.third_party"), ("content.audio", "ai.training.first_party")]
MECHANISMS = (["self_service"] * 6 + ["admin_on_behalf"] * 2 + ["join_or_leave_prompt"] * 2 + ["idp_attribute"])


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 "unknown CPU")
    return f"{os.cpu_count()} cores, {model}, {time.strftime('%Y-%m-%d')}"


def clock(start):
    """Run the seeding at a past instant, a millisecond per reading (the rules and accounts predate the month)."""
    ticks = itertools.count()
    return mock.patch("django.utils.timezone.now", side_effect=lambda: start + timedelta(milliseconds=next(ticks)))


def step(message: str, started: float) -> float:
    now = time.perf_counter()
    print(f"  {message} ({now - started:.1f} s)", flush=True)
    return now


def seed(n_accounts: int, n_flows: int, start, end) -> Organization:
    rng = random.Random(8)
    start_at, end_at = periods.midnight(start), periods.midnight(end)
    t = time.perf_counter()
    category = {c.key: c for c in DataCategory.objects.filter(organization=None)}
    purpose = {p.key: p for p in Purpose.objects.filter(organization=None)}
    feature = {f.key: f for f in AIFeature.objects.filter(organization=None)}
    print(f"== seeding '{SLUG}': {n_accounts:,} accounts, last month's flows ({n_flows:,})", flush=True)
    with clock(start_at - timedelta(days=20)):
        org = accounts.create_organization(slug=SLUG, name="Report Bench", actor=ADMIN)
        groups = [accounts.create_group(organization=org, actor=ADMIN, display_name=f"Group {i:03d}",
                                        external_id=f"g{i}") for i in range(200)]
        for first in range(0, n_accounts, 10_000):
            accounts.create_accounts(organization=org, actor=ADMIN, accounts=[
                {"user_name": f"u{i:06d}@report.bench", "display_name": f"Person {i}",
                 "groups": rng.sample(groups, 1 if rng.random() < 0.8 else 2)}
                for i in range(first, min(first + 10_000, n_accounts))])
        t = step("accounts", t)
        rules = []
        for key in ("meeting_summary", "transcription"):
            rules.append(governance.set_rule(organization=org, actor=ADMIN, scope="organization", effect="allow",
                                             reason="Approved", feature=feature[key])[0])
        for c, p, _, _ in USES[3:7]:
            rules.append(governance.set_rule(organization=org, actor=ADMIN, scope="organization", effect="allow",
                                             reason="With each person's consent", data_category=category[c],
                                             purpose=purpose[p])[0])
        for i, group in enumerate(groups):
            rules.append(governance.set_rule(organization=org, actor=ADMIN, scope="group", group=group,
                                             effect="deny" if i % 3 else "allow", locked=i % 10 == 0,
                                             reason=f"Group decision {i}", feature=feature["chat_compose"])[0])
            rules.append(governance.set_rule(organization=org, actor=ADMIN, scope="group", group=group,
                                             effect="deny" if i % 4 else "allow", reason="Training opt-out",
                                             data_category=category["content.chat"],
                                             purpose=purpose["ai.training.first_party"])[0])
        people = list(Account.objects.filter(organization=org).order_by("pk"))
        for account in rng.sample(people, 2000 - len(rules)):
            rules.append(governance.set_rule(organization=org, actor=ADMIN, scope="account", account=account,
                                             effect=rng.choice(["allow", "deny"]), reason="Personal choice",
                                             feature=feature[rng.choice(["meeting_summary", "transcription"])])[0])
        t = step(f"{len(rules):,} rules", t)
    with clock(start_at - timedelta(minutes=30)):
        audit.drain_outbox(org.pk)
        audit.write_digest(org)  # the hourly digest job: one is signed just before the month begins
    with clock(start_at - timedelta(days=19)):
        v1 = governance.publish_terms(organization=org, actor=ADMIN, version="v1", text_sha256="1" * 64,
                                      effective_at=start_at - timedelta(days=90))
        v2 = governance.publish_terms(organization=org, actor=ADMIN, version="v2", text_sha256="2" * 64,
                                      effective_at=start_at + timedelta(days=14), requires_reconsent=True,
                                      covers=[(category[c], purpose[p]) for c, p in CONSENT_USES[:2]])
        events = []
        for _ in range(300_000):
            c, p = rng.choice(CONSENT_USES)
            late = rng.random() < 0.3
            events.append({"account": rng.choice(people), "action": "revoke" if rng.random() < 0.1 else "grant",
                           "mechanism": rng.choice(MECHANISMS), "terms_version": v2 if late else v1,
                           "occurred_at": (start_at + timedelta(days=14, minutes=rng.randrange(20_000)) if late
                                           else start_at - timedelta(minutes=rng.randrange(100_000))),
                           "data_category": category[c], "purpose": purpose[p]})
    events.sort(key=lambda e: e["occurred_at"])
    with clock(start_at + timedelta(days=28)):
        for first in range(0, len(events), 20_000):
            governance.import_consents(organization=org, actor=ADMIN, consents=events[first:first + 20_000])
    t = step(f"{len(events):,} consent events", t)
    with clock(start_at + timedelta(days=9)):
        for rule in rng.sample(rules, 200):
            governance.update_rule(rule=rule, actor=ADMIN, effect="deny" if rule.effect == "allow" else "allow",
                                   reason="Reviewed mid-month")
    t = step("200 rule changes during the month", t)
    audit.drain_outbox(org.pk)
    t = step("outbox chained", t)

    report_flows(org, n_flows, start, end)
    return org


def report_flows(org: Organization, n_flows: int, start, end) -> None:
    """Last month's flows, in batches of 10,000 judged by the workers' code; resumes where a run stopped."""
    start_at, end_at = periods.midnight(start), periods.midnight(end)
    done = TelemetryFlow.objects.filter(organization=org).count()
    t = time.perf_counter()
    compiled = governance_selectors.compiled_policy(org)
    names = list(Account.objects.filter(organization=org).order_by("pk").values_list("user_name", flat=True))
    span = (end_at - start_at).total_seconds()
    uses = [u[:3] for u in USES]
    weights = [u[3] for u in USES]
    batch_size = 10_000
    for first in range(done - done % batch_size, n_flows, batch_size):
        rng = random.Random(first)  # a batch is the same whichever run reports it
        body = {"flows": []}
        for i in range(first, min(first + batch_size, n_flows)):
            c, p, d = rng.choices(uses, weights)[0]
            who = rng.sample(names, rng.choice((1, 1, 1, 2, 3)))
            at = start_at + timedelta(seconds=span * i / n_flows + rng.random())
            body["flows"].append({"flow_id": f"bench-{i}", "accounts": who, "data_category": c, "purpose": p,
                                  "destination": d, "occurred_at": at.isoformat(), "volume": rng.randrange(1, 5000)})
        validated = validate_flows(body, catalog=compiled.snapshot.catalog,
                                         resolve_accounts=lambda wanted: {w: compiled.account_ids[w] for w in wanted})
        batch = receive_batch(organization=org, actor=SERVICE, flows=validated)
        process_batch(batch.pk)  # a flow_id already judged is skipped: resuming never doubles one
        reported = first + len(body["flows"])
        if reported % 100_000 == 0 or reported == n_flows:
            t = step(f"{reported:,} flows judged", t)


def rss_mb() -> int:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited from the seeding parent across exec)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def measure(slug: str) -> None:
    """In a fresh process, as a worker: generate last month's report in every format; print what it took."""
    org = Organization.objects.get(slug=slug)
    start, end = periods.last_full(periods.MONTH, timezone.now().date())
    report = reports.request_report(organization=org, actor=ADMIN, period_start=start, period_end=end, enqueue=False)
    marks = []
    started = time.perf_counter()
    real_progress = reports._progress

    def progress(report_id):
        write = real_progress(report_id)

        def record(percent):
            marks.append((percent, round(time.perf_counter() - started, 2), rss_mb()))
            write(percent)
        return record

    with mock.patch.object(reports, "_progress", progress):
        report = reports.generate_report(report.pk)
    seconds = time.perf_counter() - started
    peak = rss_mb()
    print(json.dumps({"seconds": round(seconds, 2), "peak_rss_mb": round(peak), "status": report.status,
                      "error": report.error, "steps": marks, "summary": report.summary,
                      "files": {f.format: f.size for f in report.files.defer("content")}}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--flows", type=int, default=1_000_000, help="Flows reported over last month.")
    parser.add_argument("--measure", metavar="SLUG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure(args.measure)
    assert settings.USING_POSTGRES, "point DATABASE_URL at a scratch PostgreSQL database"
    call_command("migrate", verbosity=0)
    start, end = periods.last_full(periods.MONTH, timezone.now().date())
    org = Organization.objects.filter(slug=SLUG).first()
    started = time.perf_counter()
    if org is None:
        org = seed(args.accounts, args.flows, start, end)
    else:
        print(f"== reusing '{SLUG}'")
        assert governance_selectors.consent_events(org).count() == 300_000, \
            "the seeding stopped before its flows: drop the database and run again"
        report_flows(org, args.flows, start, end)  # whatever an interrupted run left to report
    if not AuditDigest.objects.filter(organization=org, period_end__gte=periods.midnight(end)).exists():
        audit.write_digest(org)  # the hourly digest job: one covers the month's end
        print(f"  seeded in {time.perf_counter() - started:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # fresh statistics, as autovacuum would have by the month's end
    counts = {"accounts": Account.objects.filter(organization=org).count(),
              "groups": org.groups.count(), "rules": org.policy_rules.filter(deleted_at__isnull=True).count(),
              "consent_events": governance_selectors.consent_events(org).count(),
              "flows_last_month": TelemetryFlow.objects.filter(organization=org, occurred_at__gte=periods.midnight(start),
                                                               occurred_at__lt=periods.midnight(end)).count(),
              "audit_events": AuditEvent.objects.filter(organization=org).count()}
    print("== data: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    print(f"== generating the report of {periods.label(start, end)} in a fresh process (pdf, html, csv, json)",
          flush=True)
    child = subprocess.run([sys.executable, __file__, "--measure", SLUG], capture_output=True, text=True, cwd=ROOT,
                           env={**os.environ, "LOG_LEVEL": "WARNING"})
    if child.returncode:
        sys.exit(child.stdout + child.stderr)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["status"] == Report.Status.DONE, result["error"]
    print("steps (% done: s, peak RSS MB): " + ", ".join(f"{p}%: {s} s, {m}" for p, s, m in result["steps"]))
    print("files: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in result["files"].items()))
    print("summary: " + json.dumps(result["summary"]))
    print(f"report_seconds: {result['seconds']:.1f}  (target < 30)")
    print(f"report_peak_rss_mb: {result['peak_rss_mb']}  (target <= 1024)")
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
