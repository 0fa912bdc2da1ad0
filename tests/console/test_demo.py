"""`manage.py demo` as a newcomer types it: a few lines saying what was seeded, the logins, the token
and the URL, and nothing else on the terminal."""
import logging
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from django.contrib.auth.hashers import check_password

from accounts.models import ApiToken
from console.management.commands.demo import quiet_eager_tasks

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "DJANGO_ENV", "LOG_LEVEL")


def test_the_demo_prints_a_few_lines_with_the_logins_the_token_and_the_url(tmp_path):
    # given a fresh checkout's embedded default: SQLite, no broker, tasks run in-process
    database = tmp_path / "demo.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in SERVICES} | {"DATABASE_URL": f"sqlite:///{database}"}

    # when the newcomer runs the demo (without serving, so the test ends)
    result = subprocess.run([sys.executable, "manage.py", "demo", "--no-serve", "--addrport", "127.0.0.1:8123"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)

    # then the terminal holds a few lines, each a fact the newcomer needs, and no task chatter
    assert result.returncode == 0, result.stderr
    terminal = result.stdout + result.stderr
    assert len(terminal.splitlines()) <= 8, terminal
    assert "succeeded in" not in terminal and "No hostname" not in terminal, terminal
    assert re.search(r"Seeded the demo organization 'acme': [\d,]+ accounts in 12 groups", terminal), terminal
    assert re.search(r"Seeded 30 days of activity: [\d,]+ flows, [\d,]+ consent events", terminal), terminal
    assert "http://127.0.0.1:8123/" in terminal
    leaves = int(re.search(r"Signed the audit log's tree head: ([\d,]+) leaves", terminal).group(1).replace(",", ""))

    # and what it prints works: the passwords and the token are the ones stored
    logins = dict(re.findall(r"^Console \((\w+)\):\s+(\S+ / \S+)$", result.stdout, re.MULTILINE))
    token = re.search(r"^API token:\s+(agc_\S+)$", result.stdout, re.MULTILINE).group(1)
    with sqlite3.connect(database) as db:
        for role in ("admin", "auditor"):
            username, password = logins[role].split(" / ")
            assert username == f"{role}@acme.example"
            (encoded,) = db.execute("SELECT password FROM auth_user WHERE username = ?", (username,)).fetchone()
            assert check_password(password, encoded), role
        assert db.execute("SELECT count(*) FROM accounts_apitoken WHERE digest = ? AND revoked_at IS NULL",
                          (ApiToken.digest_of(token),)).fetchone() == (1,)
        # a signed tree head covers the seeded log: its events' and flows' proofs can be downloaded at once
        assert db.execute("SELECT max(tree_size) FROM audit_auditdigest").fetchone() == (leaves,)
        assert leaves > db.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] > 0


def test_quieting_the_tasks_keeps_their_failures(caplog):
    trace, kombu = logging.getLogger("celery.app.trace"), logging.getLogger("kombu.connection")
    with caplog.at_level(logging.INFO), quiet_eager_tasks():
        trace.info("Task audit.tasks.drain_outbox[1] succeeded in 0.01s: 1")
        kombu.warning("No hostname was supplied. Reverting to default 'localhost'")
        trace.error("Task audit.tasks.drain_outbox[2] raised unexpected: RuntimeError('boom')")
    trace.info("Task audit.tasks.drain_outbox[3] succeeded in 0.01s: 1")  # outside the demo: as before

    assert [r.getMessage() for r in caplog.records] == [
        "Task audit.tasks.drain_outbox[2] raised unexpected: RuntimeError('boom')",
        "Task audit.tasks.drain_outbox[3] succeeded in 0.01s: 1"]
