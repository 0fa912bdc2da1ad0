#!/usr/bin/env python
"""Benchmark recomputing the Merkle log from its leaves on PostgreSQL: one process, then N.

Point it at a scratch database (it runs `migrate`, and the append-only rows it writes cannot be
deleted: drop the database afterwards):

    createdb -h 127.0.0.1 -U postgres benchlog
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/benchlog .venv/bin/python bench/log_verify.py --flows 2000000
    dropdb -h 127.0.0.1 -U postgres benchlog

The log is built by the real writer, without judging: batches of `--batch` flows whose entries and
rows are made as `flows.judging.write_judged` makes them (`flow_entry`, the same columns), appended
with `audit.ledger.append_flows` and the batch's `flow.batch` event, then a signed tree head.

* verification: `audit.logcheck.verify_leaves(org, jobs=J)` for J = 1 and `--jobs`: every flow row
  read and rebuilt into its entry, every leaf hashed, every tile, the frontier and the signed head's
  root recomputed. The target is 500,000 leaves/s with 2 processes.
* baseline, same run: the same flow rows read in one process by a plain query and each row's text
  hashed once with SHA-256 (no entry, no tree, no checks): what reading and hashing alone costs.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time

from audit_verify import line, machine, rate, setup_django

TARGET = 500_000


def build(organization, flows: int, batch: int) -> None:
    from django.db import transaction
    from django.utils import timezone

    from audit import chain, ledger
    from audit.actors import SYSTEM
    from audit.models import EventKind
    from config.db import copy_rows, reserve_ids
    from flows.judging import FLOW_COLUMNS, flow_entry
    from flows.models import FlowBatch, TelemetryFlow

    reasons = '[{"code":"consent_missing","detail":"no consent on record"}]'
    for start in range(0, flows, batch):
        count = min(batch, flows - start)
        with transaction.atomic():
            now = timezone.now()
            record = FlowBatch.objects.create(organization=organization, flow_count=count, payload=b"[]",
                                              received_at=now, submitted_by=SYSTEM.as_dict(), status="done")
            head = ledger.locked_head(organization.pk)
            ids = reserve_ids(TelemetryFlow, count)
            occurred = chain.iso(now)
            entries, rows = [], []
            for n, pk in enumerate(ids, start=start):
                flow_id, destination, verdict = f"f-{n}", f"vendor-{n % 50}", "violation" if n % 7 else "permitted"
                blocking = '["p%d@example.com"]' % (n % 1000) if verdict == "violation" else "[]"
                entries.append(flow_entry(organization.pk, record.pk, flow_id, occurred, "content.chat",
                                          "ai.training.first_party", destination, n, str(1 + n % 1000), verdict,
                                          blocking, 7, reasons))
                rows.append([pk, organization.pk, flow_id, record.pk, now, "content.chat", "ai.training.first_party",
                             destination, n, 1, verdict, blocking, reasons, 7, None, now, str(1 + n % 1000), None])
            first, root = ledger.append_flows(head, entries)
            appended = ledger.append(head, [ledger.Entry(EventKind.FLOW_BATCH, now, SYSTEM.as_dict(), None, {
                "batch": record.pk, "first_leaf": first, "leaf_count": count, "leaves_root": root,
                "counts": {}})], recorded_at=now)
            for leaf, row in enumerate(rows, start=first):
                row[14], row[17] = appended.first_seq, leaf
            copy_rows(TelemetryFlow, FLOW_COLUMNS, rows)


def baseline(organization) -> tuple[float, int]:
    from config.db import stream_rows
    from flows.models import TelemetryFlow

    started, count = time.perf_counter(), 0
    sql = (f"SELECT leaf_index, flow_id, destination, volume, account_ids, verdict, blocking_accounts::text, "
           f"reasons::text FROM {TelemetryFlow._meta.db_table} WHERE organization_id = %s ORDER BY leaf_index")
    sha256 = hashlib.sha256
    for row in stream_rows(sql, [organization.pk]):
        sha256(repr(row).encode()).digest()
        count += 1
    return time.perf_counter() - started, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--flows", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    setup_django()
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import Organization
    from audit import logcheck, services

    line("load_average_start", open("/proc/loadavg").read().strip())
    for key, value in machine().items():
        line(key, value)
    call_command("migrate", verbosity=0)
    slug = f"bench-log-{os.getpid()}"
    organization = Organization.objects.create(slug=slug, name=slug)
    started = time.perf_counter()
    build(organization, args.flows, args.batch)
    services.write_digest(organization)
    line("build_seconds", f"{time.perf_counter() - started:.1f}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_telemetryflow; ANALYZE audit_auditevent; ANALYZE audit_merkletile")

    seconds, count = baseline(organization)
    baseline_rate = count / seconds
    line("baseline_read_and_hash_rows_per_s", rate(count, seconds))
    for jobs in (1, args.jobs):
        started = time.perf_counter()
        result = logcheck.verify_leaves(organization, jobs=jobs)
        seconds = time.perf_counter() - started
        if not result.valid:
            sys.exit(f"the log does not verify: {result.problem}")
        line(f"verify_leaves_jobs_{jobs}_leaves", result.leaves_checked)
        line(f"verify_leaves_jobs_{jobs}_seconds", f"{seconds:.2f}")
        line(f"verify_leaves_jobs_{jobs}_leaves_per_s", rate(result.leaves_checked, seconds))
        line(f"verify_leaves_jobs_{jobs}_vs_baseline", f"{result.leaves_checked / seconds / baseline_rate:.2f}")
    line("target_leaves_per_s", f"{TARGET:,}")
    line("load_average_end", open("/proc/loadavg").read().strip())


if __name__ == "__main__":
    main()
