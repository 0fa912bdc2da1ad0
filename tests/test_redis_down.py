"""Redis down, with the broker and the cache on it: every request is still answered, never with a 500.

DESIGN §6: Redis is an accelerator, not a dependency of the request path. While it is down the
throttles count per process (logged once), writes are stored and answered (202 for flows), and
when it is back shared counting resumes and the stored work is judged, by itself.
"""
import logging
import runpy
import signal
import socket
import subprocess
import threading
import time

import pytest
from django.test import Client
from django.urls import reverse

from accounts.throttling import PrincipalRateThrottle
from config import outage
from console import throttle

from .console.conftest import PASSWORD, member
from .workers import ROOT, wait_for

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
    assert failed.status_code == 200 and b"Please enter a correct" in failed.content
    for _ in range(throttle.FAILURE_LIMIT - 1):
        throttle.record_failure(user.username, "203.0.113.9")  # as the sign-in page does on each failure
    locked = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert locked.status_code == 200 and b"Too many failed sign-in attempts" in locked.content


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
