"""Real `celery worker` processes against the test database, for the tests about workers."""
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    db = connection.settings_dict  # the test database, once pytest-django has set it up
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def require_services():
    assert settings.USING_POSTGRES and settings.CELERY_BROKER_URL, (
        "this test needs DATABASE_URL=postgres://... and CELERY_BROKER_URL=redis://... (a real worker process)")


def purge_queue():
    from config.celery import app
    app.control.purge()


class Worker:
    def __init__(self, process: subprocess.Popen, log: Path):
        self.process, self.log = process, log

    def kill(self, sig=signal.SIGKILL):
        """Kill the worker and its pool processes at once, as an OOM killer or a lost host would."""
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def celery_worker(*extra_args: str, concurrency: int = 1, beat: bool = False, **env_overrides: str):
    require_services()
    log = Path(tempfile.mkstemp(prefix="worker-", suffix=".log")[1])
    env = {**os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
           "DJANGO_SETTINGS_MODULE": "config.settings", **env_overrides}
    args = [sys.executable, "-m", "celery", "-A", "config", "worker", "-l", "info", "-c", str(concurrency),
            "-n", f"test-{uuid.uuid4().hex[:8]}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    if beat:
        args += ["-B", "--schedule", str(log.with_suffix(".beat"))]
    with log.open("w") as out:
        process = subprocess.Popen([*args, *extra_args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    worker = Worker(process, log)
    try:
        wait_for(lambda: "ready." in worker.output() or process.poll() is not None, timeout=60, what="worker start")
        assert process.poll() is None, worker.output()
        yield worker
    finally:
        if process.poll() is None:
            worker.kill(signal.SIGTERM if not beat else signal.SIGKILL)


def wait_for(condition, *, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
