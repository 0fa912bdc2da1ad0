"""Flow ingestion end to end (DESIGN §5): HTTP batches from a second process -> stored batch ->
Celery worker verdicts -> flows as leaves of the organization's Merkle log, one chained flow.batch
event per batch, flows, account links and rollups committed in PostgreSQL.
Prints flows/s and the ratio against a baseline doing the same work with a DRF serializer and
one ORM save() per flow, measured in the same run; the worker's RSS over the run; and where the
time of one batch goes (cProfile of the worker's code).

    createdb -h 127.0.0.1 -U postgres bench_ingest
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_ingest CELERY_BROKER_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python bench/ingest.py [--batches 30]

Point it at a scratch database and Redis database: it migrates, writes and purges them.

The baseline, flow by flow: DRF serializer, accounts fetched one by one, the decision, then in one
transaction per flow the chain head locked, the flow's entry appended as one leaf
(`audit.ledger.append_flows` with one entry: the frontier read, grown and saved per flow), the flow
and its account links save()d, the rollup cells get_or_create()d and updated by F(); at the end one
flow.batch event for the baseline's leaves, as the worker writes per batch.

Memory over a longer run (DESIGN §5: a worker's RSS flat across the run):

    ... bench/ingest.py --batches 50 --rss-every 5 --no-baseline --no-profile

samples the RSS (VmRSS of /proc/<pid>/status) of the worker's processes each time another
`--rss-every` batches are done and prints the series with first/last/max.
"""
import argparse
import cProfile
import json
import os
import pstats
import random
import resource
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
BROKER = os.environ.pop("CELERY_BROKER_URL", "")  # this process works eagerly; the worker gets the broker

import django  # noqa: E402
import orjson  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django.db.models import F  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework import serializers  # noqa: E402

from accounts import services as accounts  # noqa: E402
from accounts.models import Account, Organization  # noqa: E402
from audit import chain, ledger, merkle  # noqa: E402
from audit.actors import SYSTEM, Actor  # noqa: E402
from audit.models import ChainHead, EventKind  # noqa: E402
from flows.batches import receive_batch  # noqa: E402
from flows.judging import flow_entry  # noqa: E402
from flows.models import ExposureRollup, FlowAccount, FlowBatch, TelemetryFlow  # noqa: E402
from flows.validation import validate_flows  # noqa: E402
from governance import services as governance  # noqa: E402
from governance.decisions import blocking_reasons, decision_payload  # noqa: E402
from governance.models import DataCategory, Purpose  # noqa: E402
from governance.selectors import compiled_policy  # noqa: E402

PAIRS = [("telemetry.usage", "service.provision", "vendor.service"),
         ("telemetry.diagnostics", "service.improvement", "vendor.analytics"),
         ("content.transcript", "ai.training.first_party", "vendor.model_training"),
         ("content.chat", "ai.inference", "vendor.llm"),
         ("telemetry.engagement", "ai.training.third_party", "thirdparty.llm_provider")]


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 "unknown CPU")
    return f"{os.cpu_count()} cores, {model}, {time.strftime('%Y-%m-%d')}"


def seed(n_accounts: int) -> Organization:
    rng = random.Random(5)
    slug = f"bench-ingest-{int(time.time())}"
    with transaction.atomic():
        org = accounts.create_organization(slug=slug, name="Ingest Bench", actor=SYSTEM)
        groups = [accounts.create_group(organization=org, actor=SYSTEM, display_name=f"Group {i}") for i in range(50)]
        accounts.create_accounts(organization=org, actor=SYSTEM, accounts=[
            {"user_name": f"u{i:06d}@ingest.test", "groups": rng.sample(groups, rng.choice([1, 2]))}
            for i in range(n_accounts)])
        transcript = DataCategory.objects.get(key="content.transcript", organization=None)
        training = Purpose.objects.get(key="ai.training.first_party", organization=None)
        governance.set_rule(organization=org, actor=SYSTEM, scope="organization", effect="allow",
                            data_category=transcript, purpose=training)
        for group in groups[:10]:
            governance.set_rule(organization=org, actor=SYSTEM, scope="group", group=group, effect="deny",
                                data_category=transcript, purpose=training, locked=True)
        people = list(Account.objects.filter(organization=org)[: n_accounts // 2])
        governance.import_consents(organization=org, actor=SYSTEM, consents=[
            {"account": a, "data_category": transcript, "purpose": training, "action": "grant",
             "mechanism": "self_service", "occurred_at": timezone.now() - timedelta(days=3)} for a in people])
    return org


SEEDED_AT = None  # flows happen after the policy was set, as in a steady state


def batch_body(names, prefix: str, size: int, rng) -> bytes:
    now = timezone.now()
    window = max(1, int((now - SEEDED_AT).total_seconds()) - 1) if SEEDED_AT else 3600
    return json.dumps({"flows": [
        {"flow_id": f"{prefix}-{i}", "accounts": [rng.choice(names)] if i % 5 else rng.sample(names, 3),
         "data_category": pair[0], "purpose": pair[1], "destination": pair[2],
         "occurred_at": (now - timedelta(seconds=rng.uniform(0, window))).isoformat(),
         "volume": rng.randint(1, 5000)}
        for i, pair in ((i, rng.choice(PAIRS)) for i in range(size))]}).encode()


def post(port, token, body: bytes):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/flows/", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 202, response.status
        return json.loads(response.read())["batch_id"]


def load_process(port, token, bodies_dir, out):
    """The second process: posts every batch over HTTP, two at a time, and records when it started."""
    from concurrent.futures import ThreadPoolExecutor
    bodies = sorted(Path(bodies_dir).glob("*.json"))
    started = time.time()
    with ThreadPoolExecutor(max_workers=2) as pool:
        ids = list(pool.map(lambda p: post(port, token, p.read_bytes()), bodies))
    Path(out).write_text(json.dumps({"started": started, "posted": time.time(), "batch_ids": ids}))


def rss_of(pids) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def children(pid) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid] + [int(p) for p in out]


SCRATCH = Path(f"/tmp/bench-ingest-{os.getpid()}")


def rss_by_pid(pids) -> dict:
    return {pid: rss_of([pid]) for pid in pids}


def end_to_end(org, token, args) -> float:
    print(f"\n== end to end: {args.batches} batches of {args.size} flows over HTTP, gunicorn ({args.http_workers} "
          f"workers) + celery worker (-c {args.concurrency}) + PostgreSQL on this machine", flush=True)
    rng = random.Random(9)
    names = list(Account.objects.filter(organization=org).values_list("user_name", flat=True))
    bodies = SCRATCH / "bodies"
    bodies.mkdir(parents=True, exist_ok=True)
    for old in bodies.glob("*.json"):
        old.unlink()
    run = int(time.time())
    for b in range(args.batches):
        (bodies / f"{b:05d}.json").write_bytes(batch_body(names, f"r{run}-{b}", args.size, rng))
    env = {**os.environ, "CELERY_BROKER_URL": BROKER, "DEBUG": "false", "CONN_MAX_AGE": "60"}
    from config.celery import app
    app.conf.broker_url = BROKER
    app.control.purge()
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{args.port}",
                               "-w", str(args.http_workers), "--access-logfile", "/dev/null",
                               "--error-logfile", str(SCRATCH / "gunicorn.log")], cwd=ROOT, env=env)
    worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "-l", "warning",
                               "-c", str(args.concurrency), "--without-gossip", "--without-mingle",
                               "--without-heartbeat"], cwd=ROOT, env=env,
                              stdout=open(SCRATCH / "worker.log", "w"), stderr=subprocess.STDOUT)
    try:
        for _ in range(60):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{args.port}/api/schema/", timeout=2)
                break
            except Exception:
                time.sleep(0.5)
        time.sleep(3)  # the worker connects to the broker
        warm = post(args.port, token, batch_body(names, f"warm{run}", 100, rng))
        while FlowBatch.objects.get(pk=warm).status != "done":
            time.sleep(0.2)
        out = SCRATCH / "load.json"
        loader = subprocess.Popen([sys.executable, __file__, "--load", str(args.port), token, str(bodies), str(out)],
                                  cwd=ROOT)
        rss_samples, by_batches = [], []  # by_batches: (batches done, {pid: MB}) every --rss-every batches
        total = args.batches * args.size
        while True:
            done = FlowBatch.objects.filter(organization=org, status="done").exclude(pk=warm).count()
            pids = children(worker.pid)
            rss_samples.append(rss_of(pids))
            if args.rss_every and (not by_batches or done >= by_batches[-1][0] + args.rss_every):
                by_batches.append((done, rss_by_pid(pids)))
            if loader.poll() is not None and done == args.batches:
                break
            time.sleep(0.5)
        finished = time.time()
        result = json.loads(out.read_text())
        elapsed = finished - result["started"]
        rate = total / elapsed
        print(f"flows: {total} in {elapsed:.1f} s (all posted after {result['posted'] - result['started']:.1f} s)")
        print(f"end_to_end_flows_per_s: {rate:,.0f}  (target >= 50,000)")
        print(f"worker_rss_mb: first {rss_samples[0]:.0f}, min {min(rss_samples):.0f}, max {max(rss_samples):.0f}, "
              f"last {rss_samples[-1]:.0f}  ({len(rss_samples)} samples; -c {args.concurrency} pool included)")
        if by_batches:
            report_rss(by_batches, args.size)
        return rate
    finally:
        server.terminate()
        worker.terminate()
        server.wait(timeout=30)
        worker.wait(timeout=60)
        shutil.rmtree(bodies, ignore_errors=True)  # the logs stay in SCRATCH


def report_rss(by_batches, size: int) -> None:
    """The RSS of each worker process (the celery main process and its pool) every --rss-every batches."""
    print(f"worker RSS (MB) every ~{by_batches[1][0] - by_batches[0][0] if len(by_batches) > 1 else '?'} batches:")
    pids = sorted({pid for _, sample in by_batches for pid in sample})
    print("  batches   flows     " + "  ".join(f"pid {pid:>7}" for pid in pids) + "     total")
    for done, sample in by_batches:
        print(f"  {done:7d} {done * size:9,d}   " + "  ".join(f"{sample.get(pid, 0):11.1f}" for pid in pids)
              + f"  {sum(sample.values()):8.1f}")
    for pid in pids:
        series = [sample[pid] for _, sample in by_batches if pid in sample]
        # the first sample after the warm-up batch; the pool child is the one whose RSS moves
        print(f"worker_rss_pid_{pid}: first {series[0]:.1f}, last {series[-1]:.1f}, max {max(series):.1f}, "
              f"min {min(series):.1f} MB; last/first {series[-1] / series[0] - 1:+.1%}, "
              f"max/first {max(series) / series[0] - 1:+.1%} ({len(series)} samples)")


class FlowSerializer(serializers.ModelSerializer):
    """The baseline's way in: a plain DRF serializer, one flow at a time."""

    accounts = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = TelemetryFlow
        fields = ["flow_id", "accounts", "data_category", "purpose", "destination", "occurred_at", "volume"]


def baseline(org, n: int) -> float:
    """The same work, the plain way: serializer per flow, one save() per row, one leaf appended per flow,
    rollups by F(), then the batch's event."""
    print(f"\n== baseline: DRF serializer + ORM save() per flow, {n} flows, in-process", flush=True)
    rng = random.Random(3)
    names = list(Account.objects.filter(organization=org).values_list("user_name", flat=True))
    items = json.loads(batch_body(names, f"base{int(time.time())}", n, rng))["flows"]
    actor = Actor("token", None, "baseline")
    batch = FlowBatch.objects.create(organization=org, flow_count=n, payload=b"[]", received_at=timezone.now(),
                                     submitted_by=actor.as_dict(), status="done")
    compiled = compiled_policy(org)
    # flows are append-only: each names its batch's event, appended after them, by the seq it will get
    batch_seq = ChainHead.objects.get(organization=org).seq + 1
    started = time.perf_counter()
    leaves = []
    for item in items:
        serializer = FlowSerializer(data=item)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        people = [Account.objects.get(organization=org, user_name=name) for name in data["accounts"]]
        decision = compiled.decide([p.pk for p in people], data["data_category"], data["purpose"], data["occurred_at"])
        verdict = "permitted" if decision.allowed else "violation"
        names = [p.user_name for p in people]
        if decision.allowed:
            blocking, reasons = [], decision_payload(decision, names[:1])["reasons"]
        else:
            blocking = [name for name, d in zip(names, decision.accounts) if not d.allowed]
            reasons = blocking_reasons(decision, names)
        blocking_json = orjson.dumps(blocking, option=orjson.OPT_SORT_KEYS).decode()
        reasons_json = orjson.dumps(reasons, option=orjson.OPT_SORT_KEYS).decode()
        ids_text = ",".join(str(p.pk) for p in people)
        entry = flow_entry(org.pk, batch.pk, data["flow_id"], chain.iso(data["occurred_at"]), data["data_category"],
                           data["purpose"], data["destination"], data["volume"], ids_text, verdict, blocking_json,
                           decision.policy_version, reasons_json)
        with transaction.atomic():
            head = ledger.locked_head(org.pk)
            leaf, _ = ledger.append_flows(head, [entry])
            leaves.append(merkle.leaf_hash(entry))
            flow = TelemetryFlow(organization=org, batch=batch, flow_id=data["flow_id"],
                                 occurred_at=data["occurred_at"], data_category=data["data_category"],
                                 purpose=data["purpose"], destination=data["destination"], volume=data["volume"],
                                 account_count=len(people), verdict=verdict, policy_version=decision.policy_version,
                                 blocking_accounts=blocking, reasons=reasons, account_ids=ids_text,
                                 audit_seq=batch_seq, leaf_index=leaf, recorded_at=timezone.now())
            flow.save()
            for person, d in zip(people, decision.accounts):
                FlowAccount(flow=flow, account=person, blocking=not d.allowed).save()
                for group_id in person.groups.values_list("pk", flat=True) or [0]:
                    cell, _ = ExposureRollup.objects.get_or_create(
                        organization=org, day=data["occurred_at"].date(), group_key=group_id,
                        data_category=data["data_category"], purpose=data["purpose"],
                        destination=data["destination"], verdict=verdict)
                    ExposureRollup.objects.filter(pk=cell.pk).update(flows=F("flows") + 1,
                                                                     volume=F("volume") + data["volume"])
    with transaction.atomic():  # the batch's event, whose seq the flows named (nothing else appends meanwhile)
        head = ledger.locked_head(org.pk)
        first = head.tree_size - len(leaves)
        now = timezone.now()
        event = ledger.append(head, [ledger.Entry(EventKind.FLOW_BATCH, now, actor.as_dict(), None, {
            "batch": batch.pk, "first_leaf": first, "leaf_count": len(leaves),
            "leaves_root": merkle.root_of(leaves).hex(), "counts": {}})], recorded_at=now)
        assert event.first_seq == batch_seq, (event.first_seq, batch_seq)
    rate = n / (time.perf_counter() - started)
    print(f"baseline_flows_per_s: {rate:,.0f}")
    return rate


def profile_one_batch(org, size: int) -> None:
    print(f"\n== where the time of one {size}-flow batch goes (in-process, cProfile, cumulative seconds)", flush=True)
    compiled = compiled_policy(org)
    names = list(compiled.account_ids)
    body = json.loads(batch_body(names, f"prof{int(time.time())}", size, random.Random(4)))
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    validated = validate_flows(body, catalog=compiled.snapshot.catalog,
                                     resolve_accounts=lambda ns: {n: compiled.account_ids[n] for n in ns})
    receive_batch(organization=org, actor=Actor("token", None, "profile"), flows=validated)  # judged eagerly
    profiler.disable()
    total = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    parts = {"validate (HTTP side)": "validate_flows", "judge: decisions as of occurred_at": "judge",
             "leaves, batch event, flows and links written (rollups included)": "write_judged",
             "  of which flow leaves: leaf hashes, tiles, frontier (append_flows)": "append_flows",
             "    of which the tree itself (Frontier.append, tiles COPY)": "_grow",
             "  of which the batch's chained event (ledger.append)": "append",
             "  of which COPY (flows, links, tiles, event, rollup rows)": "copy_rows",
             "  of which rollups and distinct accounts": "roll_up"}
    for label, function in parts.items():
        seconds = sum(row[3] for key, row in stats.stats.items() if key[2] == function)
        print(f"  {label:68s} {seconds:6.3f} s  {seconds / total:5.0%}")
    waited = sum(row[3] for key, row in stats.stats.items() if key[2] == "wait" and "psycopg" in key[0])
    print(f"  {'  of which waiting on PostgreSQL':68s} {waited:6.3f} s  {waited / total:5.0%}")
    print(f"  {'total (wall, under the profiler)':68s} {total:6.3f} s  -> {size / total:,.0f} flows/s on one core")
    print("  top cumulative entries of the project's code (and psycopg's wait):")
    rows = sorted(((row[3], row[2], key) for key, row in stats.stats.items()
                   if (str(ROOT) in key[0] and ".venv" not in key[0]) or (key[2] == "wait" and "psycopg" in key[0])),
                  reverse=True)
    for cumulative, own, (filename, lineno, function) in rows[:25]:
        where = filename.replace(str(ROOT) + "/", "") if str(ROOT) in filename else "psycopg"
        print(f"    {cumulative:7.3f} s cum {own:7.3f} s own  {where}:{lineno}({function})")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        load_process(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=20_000)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=2_000)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--http-workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1, help="celery worker processes")
    parser.add_argument("--rss-every", type=int, default=0, help="sample the worker's RSS every N batches done")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    if not settings.USING_POSTGRES or not BROKER:
        raise SystemExit("Run on PostgreSQL and Redis: DATABASE_URL=postgres://... CELERY_BROKER_URL=redis://...")
    print(f"machine: {machine()}")
    print(f"loadavg_start: {Path('/proc/loadavg').read_text().strip()}")
    call_command("migrate", verbosity=0)
    global SEEDED_AT
    org = seed(args.accounts)
    time.sleep(2)
    SEEDED_AT = timezone.now()
    with transaction.atomic():
        _, token = accounts.create_api_token(organization=org, name="bench", scope="api", actor=SYSTEM)
    rate = end_to_end(org, token, args)
    if not args.no_baseline:
        base = baseline(org, args.baseline)
        print(f"ratio_vs_baseline: {rate / base:,.1f}x  (target >= 30x)")
    if not args.no_profile:
        profile_one_batch(org, args.size)
    print(f"\npeak_rss_mb (this process): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")
    print(f"loadavg_end: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
