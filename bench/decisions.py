"""Decision benchmark (DESIGN §5): compiled policy in-process, a 10,000-decision batch over HTTP,
and single decisions over HTTP at a fixed rate, each against a plain baseline measured in the same run.

    createdb -h 127.0.0.1 -U postgres bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/decisions.py

The organization (100,000 accounts, 200 groups, 2,000 rules, 300,000 consent events by default)
is seeded once and reused by later runs (slug `bench-decisions`); --fresh seeds it again.
Point it at a scratch database: it migrates it and writes to it.
"""
import argparse
import asyncio
import gc
import tracemalloc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.pop("CELERY_BROKER_URL", None)  # seeding runs the audit drain eagerly, in-process
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django.db.models import Q  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts import services as accounts  # noqa: E402
from accounts.models import Account, AccountGroup, Organization  # noqa: E402
from audit.actors import SYSTEM  # noqa: E402
from governance import services as governance  # noqa: E402
from governance.models import (AIFeature, ConsentEvent, DataCategory, PolicyRuleVersion, Purpose,  # noqa: E402
                               TermsCoverage, TermsVersion)
from governance.selectors import compile_policy, compiled_policy, forget_compiled_policies  # noqa: E402

SLUG = "bench-decisions"
MECHANISMS = ["self_service", "self_service", "self_service", "admin_on_behalf", "join_or_leave_prompt", "import"]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 "unknown CPU")
    return f"{os.cpu_count()} cores, {model}, {time.strftime('%Y-%m-%d')}"


def seed(n_accounts: int, n_groups: int, n_rules: int, n_consents: int) -> Organization:
    rng = random.Random(42)
    org = accounts.create_organization(slug=SLUG, name="Bench Corp", actor=SYSTEM)
    groups = [accounts.create_group(organization=org, actor=SYSTEM, display_name=f"Group {i:03d}")
              for i in range(n_groups)]
    for start in range(0, n_accounts, 10_000):
        accounts.create_accounts(organization=org, actor=SYSTEM, accounts=[
            {"user_name": f"person{i:06d}@bench.test", "email": f"person{i:06d}@bench.test",
             "groups": rng.sample(groups, rng.choice([1, 1, 2, 3]))}
            for i in range(start, min(start + 10_000, n_accounts))])
    print(f"seeded {n_accounts} accounts in {n_groups} groups", flush=True)
    categories = list(DataCategory.objects.filter(organization=None))
    purposes = list(Purpose.objects.filter(organization=None))
    features = list(AIFeature.objects.filter(organization=None))
    people = list(Account.objects.filter(organization=org).order_by("?")[: n_rules])
    seen = set()
    while len(seen) < n_rules:
        roll = rng.random()
        scope = "organization" if roll < 0.03 else "group" if roll < 0.8 else "account"
        subject = {"group": rng.choice(groups)} if scope == "group" else \
            {"account": rng.choice(people)} if scope == "account" else {}
        target = {"feature": rng.choice(features)} if rng.random() < 0.2 else \
            {"data_category": rng.choice(categories), "purpose": rng.choice(purposes)}
        key = (scope, *(o.pk for o in subject.values()), *(o.pk for o in target.values()), len(target))
        if key in seen:
            continue
        seen.add(key)
        governance.set_rule(organization=org, actor=SYSTEM, scope=scope, effect=rng.choice(["allow", "deny"]),
                            locked=rng.random() < 0.1 and scope != "account", reason="bench", **subject, **target)
    print(f"seeded {n_rules} rules", flush=True)
    now = timezone.now()
    terms = [governance.publish_terms(organization=org, actor=SYSTEM, version=f"v{i}",
                                      effective_at=now - timedelta(days=300 - 100 * i), text_sha256="0" * 64,
                                      requires_reconsent=i == 2,
                                      covers=[(c, p) for c in categories[:7] for p in purposes if p.key ==
                                              "ai.training.first_party"])
             for i in range(3)]
    consent_pairs = [(c, p) for c in categories for p in purposes
                     if c.kind in p.requires_individual_consent_for]
    ids = list(Account.objects.filter(organization=org).values_list("pk", flat=True))
    by_id = {a.pk: a for a in Account.objects.filter(organization=org)}
    for start in range(0, n_consents, 20_000):
        batch = []
        for _ in range(min(20_000, n_consents - start)):
            category, purpose = rng.choice(consent_pairs)
            when = now - timedelta(days=rng.uniform(1, 290))
            version = max((t for t in terms if t.effective_at <= when), key=lambda t: t.effective_at, default=None)
            batch.append({"account": by_id[rng.choice(ids)], "data_category": category, "purpose": purpose,
                          "action": "grant" if rng.random() < 0.85 else "revoke",
                          "mechanism": rng.choice(MECHANISMS), "terms_version": version, "occurred_at": when})
        governance.import_consents(organization=org, actor=SYSTEM, consents=batch)
    print(f"seeded {n_consents} consent events", flush=True)
    return org


# ---------------------------------------------------------------------------------------------------
# The baseline: the same decision, resolved straight from the ORM, row at a time.

def orm_switch(org, account_id: int, at, **target) -> tuple[str, bool]:
    """(effect, whether a rule decided it) for one target, through ORM queries."""
    versions = (PolicyRuleVersion.objects.filter(organization=org, valid_from__lte=at,
                                                 **{f"rule__{k}": v for k, v in target.items()})
                .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))
                .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=at)).select_related("rule"))
    effect, decided = "deny", False
    if "purpose" in target and target["purpose"].key == "service.provision":
        effect = "allow"
    org_rule = versions.filter(rule__scope="organization").first()
    if org_rule:
        effect, decided = org_rule.effect, True
        if org_rule.locked:
            return effect, decided
    groups = list(AccountGroup.objects.filter(account_id=account_id).values_list("group_id", flat=True))
    group_rules = list(versions.filter(rule__scope="group", rule__group_id__in=groups))
    if group_rules:
        effect, decided = ("deny" if any(v.effect == "deny" for v in group_rules) else "allow"), True
        if any(v.locked for v in group_rules):
            return effect, decided
    account_rule = versions.filter(rule__scope="account", rule__account_id=account_id).first()
    if account_rule:
        effect, decided = account_rule.effect, True
    return effect, decided


def orm_decide(org, account_id: int, category: str, purpose: str, at) -> bool:
    category_obj = DataCategory.objects.get(organization=None, key=category)
    purpose_obj = Purpose.objects.get(organization=None, key=purpose)
    effect, decided = orm_switch(org, account_id, at, data_category=category_obj, purpose=purpose_obj)
    if effect == "deny" and not decided:  # a feature switched on allows what it reads
        for feature in AIFeature.objects.filter(organization=None, data_categories=category_obj, purposes=purpose_obj):
            if orm_switch(org, account_id, at, feature=feature)[0] == "allow" and not any(
                    orm_switch(org, account_id, at, data_category=c, purpose=p) == ("deny", True)
                    for c in feature.data_categories.all() for p in feature.purposes.all()):
                effect = "allow"
                break
    return effect == "allow" and orm_consent(org, account_id, category_obj, purpose_obj, at)


def orm_consent(org, account_id, category, purpose, at) -> bool:
    if category.kind not in purpose.requires_individual_consent_for:
        return True
    latest = (ConsentEvent.objects.filter(account_id=account_id, data_category=category, purpose=purpose,
                                          occurred_at__lte=at).select_related("terms_version")
              .order_by("-occurred_at", "-id").first())
    if latest is None or latest.action == "revoke":
        return False
    reconsent = (TermsCoverage.objects.filter(terms_version__organization=org, terms_version__requires_reconsent=True,
                                              terms_version__effective_at__lte=at, data_category=category,
                                              purpose=purpose).order_by("-terms_version__effective_at").first())
    if reconsent is None:
        return True
    granted_under = latest.terms_version.effective_at if latest.terms_version else None
    return granted_under is not None and granted_under >= reconsent.terms_version.effective_at


# ---------------------------------------------------------------------------------------------------

def bench_in_process(org, n: int, baseline_n: int):
    print("\n== in-process, one core", flush=True)
    started = time.perf_counter()
    compiled = compile_policy(org)
    print(f"compile_seconds: {time.perf_counter() - started:.2f}")
    del compiled
    gc.collect()
    tracemalloc.start()
    compiled = compile_policy(org)
    gc.collect()
    live_mb = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()
    print(f"compiled_policy_mb: {live_mb:.1f}  (live objects after compiling, by tracemalloc; target <= 150 MB)")
    print(f"process_rss_mb: {current_rss_mb():.0f}")
    gc.freeze()  # as the server does after compiling
    rng = random.Random(7)
    catalog = compiled.snapshot.catalog
    pairs = [(c, p) for c in catalog.category_kinds for p in catalog.purpose_keys]
    ids = list(compiled.account_ids.values())
    requests = [(rng.choice(ids), *rng.choice(pairs)) for _ in range(n)]
    at = timezone.now()
    decide = compiled.decide_account
    started = time.perf_counter()
    allowed = 0
    for account_id, category, purpose in requests:
        allowed += decide(account_id, category, purpose, at).allowed
    elapsed = time.perf_counter() - started
    rate = n / elapsed
    print(f"decisions: {n}, allowed {allowed}")
    print(f"in_process_decisions_per_s: {rate:,.0f}  (target >= 200,000)")
    sample = requests[:baseline_n]
    started = time.perf_counter()
    mismatches = sum(orm_decide(org, a, c, p, at) != decide(a, c, p, at).allowed for a, c, p in sample)
    base_rate = baseline_n / (time.perf_counter() - started)
    print(f"baseline_orm_decisions_per_s: {base_rate:,.0f}  (over {baseline_n}; answers differing: {mismatches})")
    print(f"ratio_vs_baseline: {rate / base_rate:,.0f}x")
    return compiled, requests


def start_gunicorn(port: int, workers: int):
    # persistent database connections, as in production (CONN_MAX_AGE defaults to 60 there)
    env = {**os.environ, "DJANGO_ENV": "development", "DEBUG": "false", "CONN_MAX_AGE": "60"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers),
         "-k", "gthread", "--threads", "4", "--keep-alive", "30",
         "--access-logfile", "/dev/null", "--error-logfile", "/tmp/bench-gunicorn.log"],
        cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    import urllib.request
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/schema/", timeout=2)
            return process
        except Exception:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("gunicorn did not start; see /tmp/bench-gunicorn.log")


def http_post(port, token, body: bytes):
    import http.client
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/api/v1/decisions/", body, {"Authorization": f"Bearer {token}",
                                                             "Content-Type": "application/json"})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    if response.status != 200:
        raise SystemExit(f"HTTP {response.status}: {payload[:300]!r}")
    return payload


def warm_every_worker(port, token, body: bytes):
    """Each gunicorn process compiles the policy on its first request: make sure all have, before measuring."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(20):
            started = time.perf_counter()
            list(pool.map(lambda _: http_post(port, token, body), range(8)))
            if time.perf_counter() - started < 2.0:  # no process compiled during this round
                return
    raise SystemExit("the server did not warm up")


def bench_http_batch(port, token, requests, compiled, repeats: int):
    print("\n== a 10,000-decision batch over HTTP (gunicorn)", flush=True)
    names = {v: k for k, v in compiled.account_ids.items()}
    body = json.dumps({"requests": [{"account": names[a], "data_category": c, "purpose": p}
                                    for a, c, p in requests[:10_000]]}).encode()
    warm_every_worker(port, token, body)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        http_post(port, token, body)
        times.append((time.perf_counter() - started) * 1000)
    print(f"batch_10000_ms_median: {statistics.median(times):.1f}  min {min(times):.1f}  max {max(times):.1f}"
          f"  (target < 100 ms)")
    singles = [json.dumps({"account": names[a], "data_category": c, "purpose": p}).encode()
               for a, c, p in requests[:200]]
    started = time.perf_counter()
    for one in singles:
        http_post(port, token, one)
    per_single = (time.perf_counter() - started) / len(singles)
    print(f"baseline_10000_singles_ms (estimated from {len(singles)} sequential single requests): "
          f"{per_single * 10_000 * 1000:,.0f}")
    print(f"ratio_vs_baseline: {per_single * 10_000 * 1000 / statistics.median(times):,.0f}x")


async def _load(port, token, bodies, rate: float, seconds: float, connections: int):
    queue: asyncio.Queue = asyncio.Queue()
    latencies, errors = [], []

    async def client():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            item = await queue.get()
            if item is None:
                writer.close()
                return
            scheduled, body = item
            request = (f"POST /api/v1/decisions/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                       f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
            writer.write(request)
            await writer.drain()
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:  # the server closed an idle connection: reconnect, resend
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(head[:40])
            latencies.append((time.perf_counter() - scheduled) * 1000)  # from when it was due: open loop

    workers = [asyncio.create_task(client()) for _ in range(connections)]
    start, total = time.perf_counter(), int(rate * seconds)
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, bodies[i % len(bodies)]))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return latencies, errors, time.perf_counter() - start


def load_process(port, token, bodies_path, rate, seconds, connections, out_path):
    """Runs in a second process: the load generator must not share the server's interpreter."""
    bodies = [line.encode() for line in Path(bodies_path).read_text().splitlines()]
    latencies, errors, elapsed = asyncio.run(_load(port, token, bodies, rate, seconds, connections))
    Path(out_path).write_text(json.dumps({"latencies": latencies, "errors": len(errors), "elapsed": elapsed}))


def bench_http_rate(port, token, requests, compiled, rate: float, seconds: float):
    print(f"\n== single decisions over HTTP at {rate:.0f} requests/s for {seconds:.0f} s (load from a second process)",
          flush=True)
    names = {v: k for k, v in compiled.account_ids.items()}
    bodies = Path("/tmp/bench-decision-bodies.txt")
    bodies.write_text("\n".join(json.dumps({"account": names[a], "data_category": c, "purpose": p})
                                for a, c, p in requests[:5000]))
    out = Path("/tmp/bench-decision-latencies.json")
    subprocess.run([sys.executable, __file__, "--load", str(port), token, str(bodies), str(rate), str(seconds), str(out)],
                   check=True, cwd=ROOT)
    result = json.loads(out.read_text())
    latencies = sorted(result["latencies"])
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    print(f"requests: {len(latencies)} in {result['elapsed']:.1f} s ({len(latencies) / result['elapsed']:.0f}/s), "
          f"errors {result['errors']}")
    print(f"single_http_p50_ms: {p(0.50):.2f}  p90 {p(0.90):.2f}  p99_ms: {p(0.99):.2f}  max {latencies[-1]:.2f}"
          f"  (target p99 < 10 ms)")


def bench_consent_catch_up(org, repeats: int):
    """A consent recorded, then the next decision: the compiled policy takes in the new event alone.
    Baseline: compiling the organization again, which is what every consent cost before."""
    print(f"\n== the next decision after a consent: catching up ({repeats} consents) vs compiling again", flush=True)
    forget_compiled_policies()
    compiled_policy(org)
    transcript = DataCategory.objects.get(key="content.transcript", organization=None)
    training = Purpose.objects.get(key="ai.training.first_party", organization=None)
    people = list(Account.objects.filter(organization=org).order_by("?")[:repeats])
    catch_up = []
    for person in people:
        event = governance.record_consent(organization=org, actor=SYSTEM, account=person, action="grant",
                                          mechanism="self_service", data_category=transcript, purpose=training)
        started = time.perf_counter()
        compiled = compiled_policy(org)
        catch_up.append((time.perf_counter() - started) * 1000)
        assert compiled.consents.basis(person.pk, (transcript.key, training.key), timezone.now()).record.id == event.pk
    rebuild = []
    for _ in range(3):
        started = time.perf_counter()
        compile_policy(org)
        rebuild.append((time.perf_counter() - started) * 1000)
    print(f"consent_catch_up_ms_median: {statistics.median(catch_up):.1f}  max {max(catch_up):.1f}")
    print(f"baseline_full_compile_ms_median: {statistics.median(rebuild):.0f}")
    print(f"ratio_vs_baseline: {statistics.median(rebuild) / statistics.median(catch_up):,.0f}x")


def bench_membership_catch_up(org, repeats: int):
    """A person moved to another group (as an IdP's sync does), then the next decision: the compiled
    policy reloads that person's memberships alone. Baseline: compiling the organization again."""
    print(f"\n== the next decision after a group move: catching up ({repeats} moves) vs compiling again", flush=True)
    forget_compiled_policies()
    compiled_policy(org)
    groups = list(org.groups.order_by("pk"))
    people = list(Account.objects.filter(organization=org).order_by("?")[:repeats])
    catch_up = []
    for person in people:
        destination = random.choice(groups)
        accounts.update_account(account=person, actor=SYSTEM, groups=[destination])
        started = time.perf_counter()
        compiled = compiled_policy(org)
        catch_up.append((time.perf_counter() - started) * 1000)
        assert compiled.memberships.groups_at(person.pk, timezone.now()) == (destination.pk,)
    print(f"membership_catch_up_ms_median: {statistics.median(catch_up):.1f}  max {max(catch_up):.1f}")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        _, _, port, token, bodies, rate, seconds, out = sys.argv
        load_process(int(port), token, bodies, float(rate), float(seconds), 16, out)
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--rules", type=int, default=2_000)
    parser.add_argument("--consents", type=int, default=300_000)
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--baseline", type=int, default=500, help="decisions resolved through the ORM")
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--catch-up", type=int, default=20, help="consents recorded, each followed by a decision")
    parser.add_argument("--fresh", action="store_true", help="seed the organization again")
    parser.add_argument("--in-process-only", action="store_true", help="skip the HTTP measurements")
    args = parser.parse_args()
    if not settings.USING_POSTGRES:
        raise SystemExit("Run on PostgreSQL: DATABASE_URL=postgres://... (a scratch database)")
    print(f"machine: {machine()}")
    call_command("migrate", verbosity=0)
    org = Organization.objects.filter(slug=SLUG).first()
    if org is not None and args.fresh:
        raise SystemExit("--fresh needs an empty database (audit rows cannot be deleted): drop and create it")
    if org is None:
        started = time.perf_counter()
        with transaction.atomic():
            org = seed(args.accounts, args.groups, args.rules, args.consents)
        print(f"seed_seconds: {time.perf_counter() - started:.0f}")
    print(f"organization: {Account.objects.filter(organization=org).count()} accounts, "
          f"{org.groups.count()} groups, {org.policy_rules.filter(deleted_at__isnull=True).count()} rules, "
          f"{ConsentEvent.objects.filter(organization=org).count()} consent events, "
          f"{TermsVersion.objects.filter(organization=org).count()} terms versions")
    compiled, requests = bench_in_process(org, args.decisions, args.baseline)
    bench_consent_catch_up(org, args.catch_up)
    bench_membership_catch_up(org, args.catch_up)
    if args.in_process_only:
        print(f"\npeak_rss_mb: {rss_mb():.0f}")
        return
    _, token = _token(org)
    server = start_gunicorn(args.port, args.workers)
    try:
        bench_http_batch(args.port, token, requests, compiled, repeats=10)
        bench_http_rate(args.port, token, requests, compiled, args.rate, args.seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\npeak_rss_mb: {rss_mb():.0f}")


def _token(org):
    with transaction.atomic():
        return accounts.create_api_token(organization=org, name=f"bench-{time.time_ns()}", scope="api", actor=SYSTEM)


if __name__ == "__main__":
    main()
