"""SCIM provisioning benchmark (DESIGN §5): 10,000 users and 500 groups with their memberships,
provisioned over HTTP the way an identity provider does it, against gunicorn on PostgreSQL.

    createdb -h 127.0.0.1 -U postgres bench_scim
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_scim .venv/bin/python bench/scim.py
    dropdb -h 127.0.0.1 -U postgres bench_scim

Each user is looked up by userName first (Okta's sequence: GET ?filter=userName eq "…", then
POST /Users); each group is created (POST /Groups) and then given its members by PATCH add
(members in batches of 100, as Okta and Entra send them). Every write is audited: as in production,
requests write the outbox and a Celery worker (started here, on Redis) chains it; the time runs
until the chain has caught up (the organization's outbox is empty). --eager chains in the request
instead, as the embedded default does. The baseline provisions users through the REST API
(POST /api/v1/accounts/: a DRF serializer and the same service, one row at a time) in the same run.

Point it at a scratch database: it migrates it and writes to it (a new organization each run).

--breakdown N does no HTTP run: it sends N of each request type through Django's WSGI handler in
this process (no gunicorn, nothing else competing) and prints each type's server CPU and queries,
split into token authentication, throttling, SQL (compiling, executing, reading rows), the audit
outbox rows, the Celery enqueue after commit, and the rest (Django, DRF and the SCIM code).
"""
import argparse
import functools
import http.client
import io
import json
import os
import random
import resource
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
BROKER = os.environ.pop("CELERY_BROKER_URL", None) or os.environ.pop("REDIS_URL", None)
os.environ.pop("REDIS_URL", None)  # this process seeds with eager tasks; the server and the worker get the broker

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from accounts import services as accounts  # noqa: E402
from accounts.models import Account, AccountGroup, Group  # noqa: E402
from audit.actors import SYSTEM  # noqa: E402
from audit.models import AuditEvent, OutboxEntry  # noqa: E402

SCIM_JSON = "application/scim+json"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                 "unknown CPU")
    return f"{os.cpu_count()} cores, {model}, {time.strftime('%Y-%m-%d')}"


def peak_rss_mb(pid: int) -> float:
    """The high-water mark of a process's resident memory (VmHWM)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (its threads included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time every process of the machine has used so far (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def postgres_backends() -> list[int]:
    from django.db import connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        return [row[0] for row in cursor.fetchall()]


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def server_env(broker: str | None) -> dict:
    env = {**os.environ, "DJANGO_ENV": "development", "DEBUG": "false", "CONN_MAX_AGE": "60", "LOG_LEVEL": "WARNING"}
    if broker:
        env["CELERY_BROKER_URL"] = broker
    return env


def start_worker(broker: str) -> subprocess.Popen:
    """One Celery worker chaining the outbox, as in production (DESIGN §3); tasks a previous run left
    queued are purged first (the outbox, not the queue, holds the pending work)."""
    subprocess.run([sys.executable, "-m", "celery", "-A", "config", "purge", "-f"], cwd=ROOT, env=server_env(broker),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "solo", "-l", "warning",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=server_env(broker), stdout=subprocess.DEVNULL, stderr=open("/tmp/bench-scim-worker.log", "w"))
    time.sleep(3)
    if process.poll() is not None:
        raise SystemExit("the Celery worker did not start; see /tmp/bench-scim-worker.log")
    return process


def wait_for_chain(org, timeout: float = 120) -> float:
    """Seconds until the organization's outbox is empty: every change chained."""
    started = time.perf_counter()
    while OutboxEntry.objects.filter(organization=org).exists():
        if time.perf_counter() - started > timeout:
            raise SystemExit("the audit chain did not catch up")
        time.sleep(0.1)
    return time.perf_counter() - started


def start_gunicorn(port: int, workers: int, threads: int, broker: str | None) -> subprocess.Popen:
    env = server_env(broker)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers),
         "-k", "gthread", "--threads", str(threads), "--keep-alive", "30",
         "--access-logfile", "/dev/null", "--error-logfile", "/tmp/bench-scim-gunicorn.log"],
        cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/scim/v2/ServiceProviderConfig")
            connection.getresponse().read()
            return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("gunicorn did not start; see /tmp/bench-scim-gunicorn.log")


class Client:
    """One kept-alive connection per thread; requests are sent whole, with Nagle off."""

    def __init__(self, port: int, token: str):
        self.port, self.token = port, token
        self.local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            connection.connect()
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.local.connection = connection
        return connection

    def call(self, method: str, path: str, body=None, expect=(200, 201)) -> dict:
        payload = json.dumps(body).encode() if body is not None else None
        media_type = "application/json" if path.startswith("/api/") else SCIM_JSON
        headers = {"Authorization": f"Bearer {self.token}", "Accept": media_type}
        if payload is not None:
            headers["Content-Type"] = media_type
        for attempt in (1, 2):
            connection = self._connection()
            try:
                connection.request(method, path, payload, headers)
                response = connection.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):  # the server closed an idle connection: reconnect
                connection.close()
                self.local.connection = None
                if attempt == 2:
                    raise
        if response.status not in expect:
            raise SystemExit(f"{method} {path} -> HTTP {response.status}: {data[:300]!r}")
        return json.loads(data) if data else {}


def user_body(i: int) -> dict:
    user_name = f"person{i:05d}@bench.example"
    return {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name,
            "name": {"givenName": "Person", "familyName": f"{i:05d}"},
            "emails": [{"primary": True, "value": user_name, "type": "work"}],
            "displayName": f"Person {i:05d}", "externalId": f"00u{i:07d}", "active": True}


def provision_user(client: Client, i: int, lookups: bool) -> str:
    body = user_body(i)
    if lookups:
        expression = quote('userName eq "%s"' % body["userName"])
        found = client.call("GET", f"/scim/v2/Users?filter={expression}&startIndex=1&count=100")
        if found["totalResults"]:
            return found["Resources"][0]["id"]
    return client.call("POST", "/scim/v2/Users", body)["id"]


def provision_group(client: Client, index: int, member_ids: list[str]) -> tuple[int, int]:
    """Create a group, then add its members; returns (members, requests)."""
    group = client.call("POST", "/scim/v2/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                                    "displayName": f"Group {index:03d}",
                                                    "externalId": f"00g{index:07d}", "members": []})
    for start in range(0, len(member_ids), 100):
        batch = member_ids[start:start + 100]
        client.call("PATCH", f"/scim/v2/Groups/{group['id']}", {"schemas": [PATCH_OP], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": v} for v in batch]}]})
    return len(member_ids), 1 + (len(member_ids) + 99) // 100


def run_scim(client: Client, n_users: int, n_groups: int, concurrency: int, lookups: bool, seed: int):
    rng = random.Random(seed)
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        ids = list(pool.map(lambda i: provision_user(client, i, lookups), range(n_users), chunksize=50))
    users_s = time.perf_counter() - started
    members = {g: [] for g in range(n_groups)}
    for user_id in ids:  # each person in one to three groups
        for g in rng.sample(range(n_groups), rng.choice([1, 1, 2, 3])):
            members[g].append(user_id)
    with ThreadPoolExecutor(concurrency) as pool:
        done = list(pool.map(lambda g: provision_group(client, g, members[g]), range(n_groups)))
    total_s = time.perf_counter() - started
    requests = n_users * (2 if lookups else 1) + sum(r for _, r in done)
    return ids, sum(m for m, _ in done), requests, users_s, total_s


def run_baseline(client: Client, n_users: int, concurrency: int, lookups: bool) -> float:
    """The same work through the REST API: look the user up by user_name, then create it."""
    def create(i):
        if lookups:
            found = client.call("GET", f"/api/v1/accounts/?user_name=baseline{i:05d}%40bench.example")
            if found["results"]:
                return
        client.call("POST", "/api/v1/accounts/", {"user_name": f"baseline{i:05d}@bench.example",
                                                  "email": f"baseline{i:05d}@bench.example",
                                                  "display_name": f"Baseline {i:05d}",
                                                  "external_id": f"00b{i:07d}"})
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(create, range(n_users), chunksize=50))
    return time.perf_counter() - started


class CpuParts:
    """CPU time of this thread by part, the outermost part a call is in taking the whole of it (the
    query of the token lookup counts as token authentication, not as SQL)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.local = threading.local()

    def wrap(self, owner, name: str, part: str) -> None:
        function = getattr(owner, name)

        @functools.wraps(function)
        def timed(*args, **kwargs):
            if getattr(self.local, "part", None) is not None:
                return function(*args, **kwargs)
            self.local.part, started = part, time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[part] = self.seconds.get(part, 0.0) + time.thread_time() - started
                self.local.part = None

        setattr(owner, name, timed)


BREAKDOWN_PARTS = {"auth": "token authentication, its query included", "throttle": "throttling",
                   "SQL": "the other queries: compiling, executing, reading rows, commit",
                   "outbox": "the audit outbox rows", "enqueue": "the Celery enqueue of the outbox drain after commit"}


def run_breakdown(org, token: str, n: int, broker: str | None) -> None:
    """Each request type's server CPU and queries, in-process through the WSGI handler."""
    from celery.app.task import Task
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql import compiler
    from rest_framework.throttling import SimpleRateThrottle

    from accounts.authentication import BearerTokenAuthentication
    from audit import services as audit
    from config.celery import app as celery_app

    settings.DEBUG = False  # as the server runs (server_env): no query log, and the connection kept
    connection.close()
    connection.settings_dict["CONN_MAX_AGE"] = 60
    if broker:  # as the server: the commit enqueues the outbox drain on the broker
        celery_app.conf.update(broker_url=broker, task_always_eager=False)
    parts = CpuParts()
    for owner, name, part in [
            (BearerTokenAuthentication, "authenticate", "auth"), (SimpleRateThrottle, "allow_request", "throttle"),
            (Task, "apply_async", "enqueue"), (audit, "record", "outbox"), (audit, "record_many", "outbox"),
            (compiler.SQLCompiler, "execute_sql", "SQL"), (compiler.SQLInsertCompiler, "execute_sql", "SQL"),
            (compiler.SQLUpdateCompiler, "execute_sql", "SQL"), (BaseDatabaseWrapper, "commit", "SQL")]:
        parts.wrap(owner, name, part)
    handler = WSGIHandler()
    queries = [0]

    def count(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    def call(method: str, path: str, body=None) -> dict:
        payload = json.dumps(body).encode() if body is not None else b""
        path, _, query = path.partition("?")
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
                   "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1",
                   "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(payload), "wsgi.errors": sys.stderr,
                   "CONTENT_LENGTH": str(len(payload)), "CONTENT_TYPE": SCIM_JSON, "HTTP_ACCEPT": SCIM_JSON,
                   "HTTP_AUTHORIZATION": f"Bearer {token}"}
        status = []
        data = b"".join(handler(environ, lambda line, headers, exc_info=None: status.append(line)))
        if not status[0].startswith("20"):
            raise SystemExit(f"{method} {path} -> {status[0]}: {data[:300]!r}")
        return json.loads(data) if data else {}

    def measure(label: str, requests: list) -> list:
        parts.seconds.clear()
        queries[0] = 0
        with connection.execute_wrapper(count):
            started = time.thread_time()
            answers = [call(*request) for request in requests]
            total = time.thread_time() - started
        share = {part: parts.seconds.get(part, 0.0) / total for part in BREAKDOWN_PARTS}
        print(f"{label:38s} {total / len(requests) * 1000:6.2f} {queries[0] / len(requests):7.1f} "
              + " ".join(f"{share[part]:>8.0%}" for part in BREAKDOWN_PARTS) + f" {1 - sum(share.values()):>8.0%}")
        return answers

    def lookup(i):
        expression = quote('userName eq "%s"' % user_body(i)["userName"])
        return "GET", f"/scim/v2/Users?filter={expression}&startIndex=1&count=100"

    call(*lookup(0))  # the first request of a process imports the views
    call("POST", "/scim/v2/Users", user_body(0))
    print(f"\n== server CPU per request, in-process (no HTTP server, one thread, nothing else competing), "
          f"{n} of each, and its share in each part:")
    for short, part in {**BREAKDOWN_PARTS, "rest": "Django, DRF and the SCIM code"}.items():
        print(f"   {short}: {part}")
    print(f"{'request':38s} {'CPU ms':>6s} {'queries':>7s} " + " ".join(f"{p:>8s}" for p in BREAKDOWN_PARTS)
          + f" {'rest':>8s}")
    measure("GET /Users?filter=userName eq (none)", [lookup(i) for i in range(1, n + 1)])
    ids = [r["id"] for r in measure("POST /Users", [("POST", "/scim/v2/Users", user_body(i))
                                                    for i in range(1, n + 1)])]
    groups = max(n // 20, 5)
    created = measure("POST /Groups (no members)", [("POST", "/scim/v2/Groups", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": f"Group {g:03d}",
        "externalId": f"00g{g:07d}", "members": []}) for g in range(groups)])
    measure("PATCH /Groups/{id} add 100 members", [("PATCH", f"/scim/v2/Groups/{group['id']}", {
        "schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [
            {"value": v} for v in (ids * 2)[g * 37 % len(ids):][:100]]}]}) for g, group in enumerate(created)])
    measure("POST /Groups with 20 members", [("POST", "/scim/v2/Groups", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": f"Team {g:03d}",
        "externalId": f"00t{g:07d}", "members": [{"value": v} for v in (ids * 2)[g * 20:][:20]]})
        for g in range(groups)])
    audit.drain_outbox(org.pk)  # chain what the requests recorded, as the worker of an HTTP run does


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16, help="client connections")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--no-lookups", action="store_true", help="POST without Okta's GET ?filter first")
    parser.add_argument("--baseline", type=int, default=1_000, help="users provisioned through the REST API")
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--broker", default=BROKER or "redis://127.0.0.1:6379/14",
                        help="Celery broker for the server and the worker (default: local Redis, db 14)")
    parser.add_argument("--eager", action="store_true", help="no broker: chain the audit trail in each request")
    parser.add_argument("--breakdown", type=int, metavar="N", default=0,
                        help="no HTTP run: N of each request type in-process, with where their CPU goes")
    args = parser.parse_args()
    broker = None if args.eager else args.broker
    if not settings.USING_POSTGRES:
        raise SystemExit("Run on PostgreSQL: DATABASE_URL=postgres://... (a scratch database)")
    print(f"machine: {machine()}")
    call_command("migrate", verbosity=0)
    with transaction.atomic():
        org = accounts.create_organization(slug=f"bench-scim-{time.time_ns()}", name="Bench SCIM", actor=SYSTEM)
        _, scim_token = accounts.create_api_token(organization=org, name="bench-idp", scope="scim", actor=SYSTEM)
        _, api_token = accounts.create_api_token(organization=org, name="bench-api", scope="api", actor=SYSTEM)
    if args.breakdown:
        run_breakdown(org, scim_token, args.breakdown, broker)
        return
    worker = start_worker(broker) if broker else None
    server = start_gunicorn(args.port, args.workers, args.threads, broker)
    try:
        scim = Client(args.port, scim_token)
        scim.call("GET", "/scim/v2/Users?count=1")  # warm every worker's imports a little
        chaining = f"a Celery worker on {broker}" if broker else "each request (eager)"
        print(f"\n== SCIM: {args.users} users ({'with' if not args.no_lookups else 'without'} a userName lookup "
              f"first), {args.groups} groups, members by PATCH; {args.concurrency} connections, gunicorn "
              f"{args.workers}x{args.threads}; audit chained by {chaining}", flush=True)
        before = {pid: cpu_seconds(pid) for pid in [os.getpid(), *children(server.pid), *postgres_backends()]
                  + ([worker.pid] if worker else [])}
        machine_before = machine_busy_seconds()
        ids, memberships, requests, users_s, sent_s = run_scim(scim, args.users, args.groups, args.concurrency,
                                                               not args.no_lookups, seed=42)
        lag_s = wait_for_chain(org)
        used = {"gunicorn": sum(cpu_seconds(p) - before.get(p, 0) for p in children(server.pid)),
                "celery worker": cpu_seconds(worker.pid) - before[worker.pid] if worker else 0.0,
                "postgres": sum(cpu_seconds(p) - before.get(p, 0) for p in postgres_backends()),
                "bench client": cpu_seconds(os.getpid()) - before[os.getpid()]}
        others = machine_busy_seconds() - machine_before - sum(used.values())
        total_s = sent_s + lag_s
        print(f"requests done in {sent_s:.1f} s; audit chain caught up {lag_s:.1f} s later")
        print(f"users: {len(ids)} in {users_s:.1f} s ({len(ids) / users_s:,.0f} users/s)")
        print(f"groups: {args.groups} with {memberships} memberships in {sent_s - users_s:.1f} s")
        print(f"elapsed_seconds: {total_s:.1f}  (target < 60 s)")
        print(f"users_per_s: {len(ids) / total_s:,.0f} (whole run); {requests} requests, "
              f"{requests / total_s:,.0f} requests/s")
        mine = sum(used.values())
        print(f"cpu_seconds: {mine:.1f} in this run's processes ("
              + ", ".join(f"{name} {seconds:.1f}" for name, seconds in used.items())
              + f"); other processes on the machine {max(others, 0):.1f}; {os.cpu_count() * total_s:.1f} available")
        print(f"cpu_ms_per_user: {mine / len(ids) * 1000:.1f} (groups and memberships included); "
              f"on {os.cpu_count()} otherwise idle cores that is at least {mine / os.cpu_count():.0f} s")
        baseline_s = None
        if args.baseline:
            api = Client(args.port, api_token)
            baseline_s = run_baseline(api, args.baseline, args.concurrency, not args.no_lookups)
            baseline_s += wait_for_chain(org)
            lookup = "GET ?user_name= then " if not args.no_lookups else ""
            print(f"\n== baseline: {args.baseline} users through the REST API ({lookup}POST /api/v1/accounts/: "
                  f"DRF serializer, row at a time), same connections")
            print(f"baseline_users_per_s: {args.baseline / baseline_s:,.0f}")
            print(f"ratio_vs_baseline (SCIM users/s over REST users/s, user phase): "
                  f"{(len(ids) / users_s) / (args.baseline / baseline_s):.2f}x")
        workers = children(server.pid)
        worker_rss = [peak_rss_mb(pid) for pid in workers]
    finally:
        server.terminate()
        server.wait(timeout=30)
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)

    # What the database holds now: exactly what was sent, and every change chained.
    scim_accounts = Account.objects.filter(organization=org).exclude(user_name__startswith="baseline").count()
    links = AccountGroup.objects.filter(group__organization=org).count()
    pending = OutboxEntry.objects.filter(organization=org).count()
    print(f"\ncheck: {scim_accounts} SCIM accounts, {Group.objects.filter(organization=org).count()} groups, "
          f"{links} memberships (sent {memberships}); outbox left {pending}, "
          f"audit events {AuditEvent.objects.filter(organization=org).count()}")
    if scim_accounts != args.users or links != memberships:
        raise SystemExit("the database does not hold what was provisioned")
    print(f"peak_rss_mb: bench client {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}; "
          f"gunicorn workers {', '.join(f'{r:.0f}' for r in worker_rss) or 'n/a'}")


if __name__ == "__main__":
    main()
