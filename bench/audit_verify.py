#!/usr/bin/env python
"""Benchmark the audit chain on PostgreSQL: appending through the outbox, and verifying.

Point it at a scratch database. It runs `migrate` on that database and leaves the rows it writes
behind: audit events cannot be deleted, because the append-only triggers refuse that. Drop the
database when you are done:

    createdb -h 127.0.0.1 -U postgres bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/audit_verify.py [--events 1000000]
    dropdb -h 127.0.0.1 -U postgres bench

What it measures, all in one run:

* append (the real writer): N outbox rows are inserted with `audit.services.record_many` in
  transactions of `--chunk` rows, then `audit.services.drain_outbox(org)` is called in-process
  and timed on its own. It chains them in batches of AUDIT_DRAIN_BATCH, one transaction per batch.
  Celery is not used. CELERY_BROKER_URL and REDIS_URL are set to empty before Django starts, so
  no broker is needed. While the outbox is loaded, the task that `record_many` queues on commit is
  replaced with a recorder. Otherwise the eager task would chain each chunk as it commits, and
  the drain could not be timed separately.
* append baseline: `--baseline-events` events go into a second new organization, one
  `AuditEvent(...).save()` per event in autocommit mode: one INSERT and one COMMIT per event. The
  body and hash are computed with audit.chain exactly as the drain computes them. No outbox is
  involved.
* After loading, the audit tables are ANALYZEd, as autovacuum would do. Without statistics,
  PostgreSQL sorts the whole chain on disk to read it in seq order.
* verification: `audit.selectors.verify_chain(org)` over the N events. It checks the signed
  digest, every link, the JSON body and the projection columns, plus the head. The target is at
  least 500,000 events/s.
* verification baseline: the same N events read as model instances
  (`AuditEvent.objects.filter(...).order_by("seq").iterator()`). For each one, the link and
  `chain.link_hash` are recomputed and compared. The body and columns are not checked.

DEBUG is forced off, as in production. Every figure is printed on its own line as `name: value`.
The load average is printed at the start and at the end: other work on the machine skews the
figures.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STARTED = time.perf_counter()
VERIFY_TARGET = 500_000


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    # Empty, not merely unset: settings would otherwise fall back to REDIS_URL or a .env file.
    os.environ["CELERY_BROKER_URL"] = ""
    os.environ["REDIS_URL"] = ""
    # As in production: with DEBUG on, Django keeps the SQL text of every query (gigabytes of bulk INSERTs here).
    os.environ["DEBUG"] = "False"
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "pgsql://")):
        sys.exit("bench/audit_verify.py needs DATABASE_URL=postgres://... naming a scratch PostgreSQL database.")
    import django
    django.setup()
    from django.conf import settings
    from django.db import connection
    if connection.vendor != "postgresql":
        sys.exit(f"refusing to run on {connection.vendor}: this benchmark is for PostgreSQL")
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        sys.exit("CELERY_BROKER_URL is set: this benchmark runs without a broker")


def line(name: str, value) -> None:
    print(f"{name}: {value}", flush=True)


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}" if seconds > 0 else "inf"


def peak_rss_mib() -> str:
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"  # KiB on Linux


def machine() -> dict[str, str]:
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(len(os.sched_getaffinity(0)))
    model = "unknown"
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": nproc, "cpu_model": model}


def payload(i: int) -> dict:
    """A policy change as governance.services records it, with a trimmed rule state (about 600 bytes of body)."""
    rule = 1000 + i % 5000
    before = {"id": rule, "scope": "group", "group": 40 + i % 17, "group_name": "Recherche & Développement",
              "effect": "allow", "locked": False, "reason": "pilot", "expires_at": None}
    after = dict(before, effect="deny", reason=f"Data-protection review #{i}")
    return {"action": "changed", "rule": rule, "before": before, "after": after, "reason": after["reason"],
            "policy_version": i + 1}


def build_outbox(organization, accounts, n: int, chunk: int, actor) -> tuple[float, int]:
    """Insert n outbox rows with the real writer, in transactions of `chunk` rows."""
    from django.db import transaction

    from audit import services, tasks
    from audit.models import EventKind

    queued = []
    real_delay = tasks.drain_outbox.delay
    tasks.drain_outbox.delay = lambda organization_id: queued.append(organization_id)  # the drain is timed below
    try:
        started = time.perf_counter()
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            with transaction.atomic():
                services.record_many(organization=organization, kind=EventKind.POLICY_CHANGED, actor=actor,
                                     entries=[(accounts[i % len(accounts)] if i % 2 else None, payload(i))
                                              for i in range(start, stop)])
        elapsed = time.perf_counter() - started
    finally:
        tasks.drain_outbox.delay = real_delay
    return elapsed, len(queued)


def baseline_append(organization, n: int, actor) -> float:
    """One AuditEvent(...).save() per event, in autocommit: one INSERT and one COMMIT each."""
    from django.db import connection
    from django.utils import timezone

    from audit import chain
    from audit.models import AuditEvent, ChainHead, EventKind

    # Outbox ids taken from the outbox's own sequence, so they can never collide with a real row.
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('audit_outboxentry', 'id')) "
                       "FROM generate_series(1, %s)", [n])
        outbox_ids = [row[0] for row in cursor.fetchall()]
    actor_dict = actor.as_dict()
    kind = EventKind.POLICY_CHANGED.value
    prev, occurred_at = chain.GENESIS_HASH, timezone.now()
    started = time.perf_counter()
    for i in range(n):
        seq, recorded_at = i + 1, timezone.now()
        body = chain.event_body(organization_id=organization.pk, seq=seq, kind=kind, occurred_at=occurred_at,
                                recorded_at=recorded_at, actor=actor_dict, subject_account=None, payload=payload(i))
        digest = chain.link_hash(prev, body)
        AuditEvent(organization_id=organization.pk, seq=seq, kind=kind, occurred_at=occurred_at,
                   recorded_at=recorded_at, actor_kind=actor.kind, actor_name=actor.name, subject_account_id=None,
                   outbox_id=outbox_ids[i], body=body, prev_hash=prev, hash=digest).save()
        prev = digest
    elapsed = time.perf_counter() - started
    ChainHead.objects.create(organization_id=organization.pk, seq=n, hash=prev)
    return elapsed


def baseline_verify(organization) -> tuple[float, int, bool]:
    """Read every event as a model instance and recompute its link and hash."""
    from audit import chain
    from audit.models import AuditEvent

    started = time.perf_counter()
    expected_prev, expected_seq, valid = chain.GENESIS_HASH, 1, True
    for event in AuditEvent.objects.filter(organization=organization).order_by("seq").iterator(chunk_size=10_000):
        if (event.seq != expected_seq or event.prev_hash != expected_prev
                or chain.link_hash(event.prev_hash, event.body) != event.hash):
            valid = False
            break
        expected_prev, expected_seq = event.hash, expected_seq + 1
    return time.perf_counter() - started, expected_seq - 1, valid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to chain and verify (default 1,000,000)")
    parser.add_argument("--baseline-events", type=int, default=20_000,
                        help="events for the one-INSERT-per-event append baseline (default 20,000)")
    parser.add_argument("--chunk", type=int, default=10_000, help="outbox rows per record_many transaction")
    args = parser.parse_args()
    if args.events < 1 or args.baseline_events < 1 or args.chunk < 1:
        parser.error("--events, --baseline-events and --chunk must be positive")

    setup_django()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Account, Organization
    from audit import services
    from audit.actors import Actor
    from audit.models import AuditEvent, OutboxEntry
    from audit.selectors import verify_chain

    call_command("migrate", interactive=False, verbosity=0)
    n, run = args.events, f"{timezone.now():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    actor = Actor("user", 1, "bench.admin@example.com")
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version'), current_database(), "
                       "current_setting('synchronous_commit'), current_setting('shared_buffers'), "
                       "current_setting('autovacuum')")
        pg_version, database, synchronous_commit, shared_buffers, autovacuum = cursor.fetchone()
    host = machine()
    line("date", timezone.now().isoformat(timespec="seconds"))
    line("machine", f"{host['nproc']} CPUs ({host['cpu_model']}), {platform.system()} {platform.release()}")
    line("nproc", host["nproc"])
    line("cpu_model", host["cpu_model"])
    line("python", platform.python_version())
    line("postgresql", f"{pg_version} (database {database}, synchronous_commit={synchronous_commit}, "
                       f"shared_buffers={shared_buffers}, autovacuum={autovacuum})")
    line("load_average_at_start", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    line("events", f"{n:,}")

    # 1. The real writer: outbox rows in bulk, then the drain.
    organization = Organization.objects.create(slug=f"bench-{run}", name=f"Benchmark {run}")
    accounts = [Account.objects.create(organization=organization, user_name=f"user{i}@example.com")
                for i in range(10)]
    load_seconds, queued = build_outbox(organization, accounts, n, args.chunk, actor)
    line("outbox_insert_seconds", f"{load_seconds:.1f}")
    line("outbox_insert_events_per_s", rate(n, load_seconds))
    line("outbox_insert_drains_queued", f"{queued} (one per record_many transaction; held, run below)")

    started = time.perf_counter()
    chained = services.drain_outbox(organization.pk)
    drain_seconds = time.perf_counter() - started
    assert chained == n, f"drain chained {chained} of {n}"
    assert not OutboxEntry.objects.filter(organization=organization).exists()
    line("drain_batch_size", settings.AUDIT_DRAIN_BATCH)
    line("drain_seconds", f"{drain_seconds:.1f}")
    line("drain_events_per_s", rate(n, drain_seconds))
    services.write_digest(organization)  # so verification checks a signed anchor at the head too
    line("peak_rss_mib_after_append", peak_rss_mib())

    with connection.cursor() as cursor:
        cursor.execute("SELECT avg(octet_length(body))::int FROM audit_auditevent WHERE organization_id = %s",
                       [organization.pk])
        line("event_body_avg_bytes", cursor.fetchone()[0])

    # 2. Append baseline: one INSERT (and one COMMIT) per event.
    m = args.baseline_events
    other = Organization.objects.create(slug=f"bench-{run}-baseline", name=f"Benchmark {run} (baseline)")
    baseline_seconds = baseline_append(other, m, actor)
    line("baseline_append_mode", "AuditEvent(...).save() in autocommit: one INSERT + one COMMIT per event")
    line("baseline_append_events", f"{m:,}")
    line("baseline_append_seconds", f"{baseline_seconds:.1f}")
    line("baseline_append_events_per_s", rate(m, baseline_seconds))
    line("drain_vs_baseline_append", f"{(n / drain_seconds) / (m / baseline_seconds):.1f}x")
    assert verify_chain(other).valid, "the baseline wrote an invalid chain"

    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute("ANALYZE audit_auditevent, audit_outboxentry, audit_chainhead, audit_auditdigest")
        line("analyze_seconds", f"{time.perf_counter() - started:.1f}")

    # 3. Verification through the selector, then the model-instance baseline.
    started = time.perf_counter()
    result = verify_chain(organization)
    verify_seconds = time.perf_counter() - started
    assert result.valid, f"verify_chain: {result.as_dict()}"
    assert result.events_checked == n, f"verify_chain checked {result.events_checked} of {n}"
    verify_rate = n / verify_seconds
    line("verify_chain_seconds", f"{verify_seconds:.2f}")
    line("verify_chain_events_per_s", rate(n, verify_seconds))
    line("verify_chain_target_events_per_s", f"{VERIFY_TARGET:,} ({'met' if verify_rate >= VERIFY_TARGET else 'NOT met'})")
    line("peak_rss_mib_after_verify_chain", peak_rss_mib())

    seconds, checked, valid = baseline_verify(organization)
    assert valid and checked == n, f"baseline verification failed after {checked} events"
    line("baseline_verify_mode", "ORM model instances via .iterator(), link + chain.link_hash only")
    line("baseline_verify_seconds", f"{seconds:.2f}")
    line("baseline_verify_events_per_s", rate(n, seconds))
    line("verify_chain_vs_baseline_verify", f"{verify_rate / (n / seconds):.1f}x")

    line("audit_events_in_database", f"{AuditEvent.objects.count():,}")
    line("peak_rss_mib", peak_rss_mib())
    line("load_average_at_end", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    line("total_seconds", f"{time.perf_counter() - STARTED:.0f}")


if __name__ == "__main__":
    main()
