"""Redis down, with the broker and the cache on it: every request is still answered, never with a 500.

DESIGN §6: Redis is an accelerator, not a dependency of the request path. While it is down the
throttles count per process (logged once), writes are stored and answered (202 for flows), and
when it is back shared counting resumes and the stored work is judged, by itself.
"""
import json
import logging
import os
import runpy
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from accounts import services as accounts
from accounts.throttling import PrincipalRateThrottle
from audit.actors import SYSTEM
from config import outage
from identity import throttle
from flows.models import FlowBatch

from .flows.test_flow_workers import assert_each_flow_judged_once, make_flows
from .console.conftest import PASSWORD, member
from .factories import AccountFactory
from .workers import ROOT, celery_worker, database_url, require_services, wait_for

THROTTLE_KEYS = "*throttle_principal*"
OUTAGE_LOG = "config.outage"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test's own, to stop, hang and start again without touching anyone else's."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def cli(self, *args: str) -> str:
        return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
                              capture_output=True, text=True, timeout=10).stdout.strip()

    def start(self):
        self.process = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
                                         "--save", "", "--appendonly", "no"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.cli("ping") == "PONG", timeout=10, what="the private Redis to start")

    def stop(self):
        """As a crash or a restart does: the port refuses connections until it is started again."""
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process = None

    def hang(self):
        """As an overloaded or half-dead host does: connections are accepted, nothing is answered."""
        self.process.send_signal(signal.SIGSTOP)

    def keys(self, pattern: str) -> list[str]:
        return self.cli("--scan", "--pattern", pattern).split()


@pytest.fixture
def private_redis():
    redis = PrivateRedis()
    redis.start()
    yield redis
    if redis.process is not None:
        redis.stop()


def settings_for(monkeypatch, **environment) -> dict:
    """The settings config/settings.py gives for this environment (evaluated afresh, as at start-up)."""
    for name in ("REDIS_URL", "CACHE_URL", "CELERY_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "config" / "settings.py"))


@pytest.fixture
def cache_on_redis(private_redis, settings, monkeypatch):
    """This process's cache, as the settings configure it for REDIS_URL, on the private Redis."""
    settings.CACHES = settings_for(monkeypatch, REDIS_URL=private_redis.url)["CACHES"]
    yield private_redis
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.fixture
def three_a_minute(monkeypatch):
    monkeypatch.setattr(PrincipalRateThrottle, "THROTTLE_RATES", {"principal": "3/min"})


def outage_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == OUTAGE_LOG]


# --- the cache, in this process -----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_with_the_caches_redis_stopped_the_api_answers_and_still_throttles_per_process(api, cache_on_redis,
                                                                                     three_a_minute):
    assert [api.get("/api/v1/catalog/").status_code for _ in range(2)] == [200, 200]
    assert cache_on_redis.keys(THROTTLE_KEYS), "counted in Redis while it answers, so every process shares it"
    cache_on_redis.stop()
    # the count starts again in this process: three more, then refused as before
    assert [api.get("/api/v1/catalog/").status_code for _ in range(4)] == [200, 200, 200, 429]


@pytest.mark.django_db
def test_when_the_caches_redis_is_back_counting_is_shared_again_and_the_outage_was_logged_once(
        api, cache_on_redis, caplog, monkeypatch):
    monkeypatch.setattr(outage, "RETRY_AFTER_SECONDS", 0.05)  # so Redis is tried, and fails, many times
    caplog.set_level(logging.WARNING, logger=OUTAGE_LOG)
    cache_on_redis.stop()
    statuses, until = set(), time.monotonic() + 0.5
    while time.monotonic() < until:
        statuses.add(api.get("/api/v1/catalog/").status_code)
    assert statuses == {200}
    cache_on_redis.start()  # empty, as a restarted Redis without persistence is
    wait_for(lambda: api.get("/api/v1/catalog/").status_code == 200 and cache_on_redis.keys(THROTTLE_KEYS),
             timeout=10, what="the throttle to count in Redis again")
    down, back = outage_lines(caplog)
    assert "does not answer" in down and "count in each process" in down
    assert "answers again" in back


@pytest.mark.django_db
def test_the_sign_in_lockout_holds_while_the_caches_redis_is_down(org, cache_on_redis):
    user = member(org, "admin")
    cache_on_redis.stop()
    client = Client(REMOTE_ADDR="203.0.113.9")
    failed = client.post(reverse("login"), {"username": user.username, "password": "wrong"})
    assert failed.status_code == 400 and b"Please enter a correct" in failed.content
    for _ in range(throttle.FAILURE_LIMIT - 1):
        throttle.record_failure(user.username, "203.0.113.9")  # as the sign-in page does on each failure
    locked = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert locked.status_code == 400 and b"Too many failed sign-in attempts" in locked.content


@pytest.mark.django_db
def test_a_hung_redis_costs_one_request_a_socket_timeout_and_the_others_nothing(api, cache_on_redis, settings):
    assert api.get("/api/v1/catalog/").status_code == 200  # what a first request costs anyway, paid before
    cache_on_redis.hang()
    wake_up = threading.Timer(15, cache_on_redis.process.send_signal, [signal.SIGCONT])  # were it to wait forever
    wake_up.start()
    durations, statuses = [], []
    try:
        for _ in range(20):
            started = time.monotonic()
            statuses.append(api.get("/api/v1/catalog/").status_code)
            durations.append(time.monotonic() - started)
    finally:
        wake_up.cancel()
    assert set(statuses) == {200}
    slow = [d for d in durations if d > settings.REDIS_TIMEOUT_SECONDS / 2]
    assert len(slow) <= 1 and max(durations) < 3 * settings.REDIS_TIMEOUT_SECONDS, durations


# --- a live server, broker and cache on one Redis -----------------------------------------------------------------

class LiveServer:
    def __init__(self, port: int, token: str, log: Path):
        self.base, self.token, self.log = f"http://127.0.0.1:{port}", token, log

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(self.base + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, {}

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def gunicorn(token: str, **environment: str):
    """The WSGI application served by a gunicorn process of its own, against the test database."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="gunicorn-", suffix=".log")[1])
    env = {name: value for name, value in os.environ.items()
           if name not in ("REDIS_URL", "CACHE_URL", "CELERY_BROKER_URL")}
    env.update(DATABASE_URL=database_url(), DJANGO_SETTINGS_MODULE="config.settings", **environment)
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}",
                                    "--access-logfile", "-", "--error-logfile", "-"],
                                   cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = LiveServer(port, token, log)
    try:
        wait_for(lambda: process.poll() is not None or _answers(server), timeout=30, what="gunicorn to serve")
        assert process.poll() is None, server.output()
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(server: LiveServer) -> bool:
    try:
        return server.request("GET", "/healthz")[0] == 200
    except OSError:
        return False


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_live_server_on_one_redis_answers_while_it_is_down_and_the_work_is_judged_when_it_is_back(
        org, private_redis):
    require_services()
    people = [AccountFactory(organization=org) for _ in range(20)]
    _, token = accounts.create_api_token(organization=org, name="ingest", scope="api", actor=SYSTEM)
    reads = ["/api/v1/flows/", "/api/v1/audit-events/", "/api/v1/accounts/", "/api/v1/catalog/"]
    with gunicorn(token, REDIS_URL=private_redis.url) as server:
        assert server.request("POST", "/api/v1/flows/", make_flows(people, 100, "up"))[0] == 202
        assert private_redis.keys(THROTTLE_KEYS), "the live server counts in the private Redis"

        private_redis.stop()
        started = time.monotonic()
        posted = [server.request("POST", "/api/v1/flows/", make_flows(people, 100, f"down{i}")) for i in range(6)]
        writes_took = time.monotonic() - started
        assert [status for status, _ in posted] == [202] * 6
        assert [server.request("GET", path)[0] for path in reads] == [200] * len(reads)
        status, stored = server.request("GET", f"/api/v1/flow-batches/{posted[-1][1]['batch_id']}/")
        assert status == 200 and stored["status"] == "received"
        assert server.request("GET", "/readyz")[0] == 503  # it says the broker is down, and only that
        assert writes_took < 3, f"six writes took {writes_took:.1f} s with Redis down"

        private_redis.start()
        wait_for(lambda: server.request("GET", "/readyz")[0] == 200, timeout=10, what="ready again")
        wait_for(lambda: server.request("GET", "/api/v1/catalog/")[0] == 200 and private_redis.keys(THROTTLE_KEYS),
                 timeout=15, what="the live server to count in Redis again")
        assert server.request("POST", "/api/v1/flows/", make_flows(people, 100, "back"))[0] == 202

        with celery_worker(beat=True, CELERY_BROKER_URL=private_redis.url, AUDIT_SWEEP_SECONDS="1",
                           FLOW_SWEEP_AFTER_SECONDS="0"):
            wait_for(lambda: not FlowBatch.objects.filter(organization=org, status="received").exists(),
                     timeout=45, what="every stored batch to be judged")
        log = server.output()
    assert_each_flow_judged_once(org, 800)
    assert '" 500 ' not in log and "Internal Server Error" not in log, log
    # the process says once that each use of Redis is down and once that it is back, not once a request
    for use in ("The cache's Redis", "The broker ("):
        said = [line for line in log.splitlines() if use in line]
        assert len(said) == 2 and "does not answer" in said[0] and "answers again" in said[1], log
    assert "Traceback" not in log, log
