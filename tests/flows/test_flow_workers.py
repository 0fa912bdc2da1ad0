"""Flow batches judged by real workers on PostgreSQL and Redis, while workers, Redis and PostgreSQL fail."""
import subprocess
import time
from datetime import timedelta

import orjson
import pytest
from django.db import connection
from django.utils import timezone

from audit import proofs
from audit import services as audit
from audit.actors import Actor
from audit.models import AuditEvent
from audit.selectors import verify_chain
from flows.batches import receive_batch
from flows.leaves import leaf_of
from flows.models import FlowBatch, TelemetryFlow
from flows.validation import validate_flows
from governance.selectors import compiled_policy

from ..factories import AccountFactory
from ..verifier import tool
from ..workers import celery_worker, purge_queue, require_services, wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
SERVICE = Actor("token", None, "test service")


@pytest.fixture(autouse=True)
def clean_queue():
    require_services()
    purge_queue()


@pytest.fixture
def people(org):
    return [AccountFactory(organization=org) for _ in range(50)]


def make_flows(people, n, prefix):
    now = timezone.now() - timedelta(minutes=1)
    return {"flows": [{"flow_id": f"{prefix}-{i}", "accounts": [people[i % len(people)].user_name],
                       "data_category": "telemetry.usage" if i % 3 else "content.chat",
                       "purpose": "service.provision" if i % 3 else "ai.training.first_party",
                       "destination": "vendor.service", "occurred_at": (now - timedelta(seconds=i)).isoformat(),
                       "volume": i} for i in range(n)]}


def store_batches(org, people, batches, size):
    compiled = compiled_policy(org)
    for b in range(batches):
        flows = validate_flows(make_flows(people, size, f"b{b}"), catalog=compiled.snapshot.catalog,
                                            resolve_accounts=lambda names: {n: compiled.account_ids[n]
                                                                            for n in names})
        receive_batch(organization=org, actor=SERVICE, flows=flows)


def judged(org):
    return TelemetryFlow.objects.filter(organization=org).count()


def assert_each_flow_judged_once(org, total):
    """Every flow judged, once, as one leaf of the log each, in its batch; the log verifies leaf by leaf,
    and the inclusion proofs of flows taken across it verify with the standalone verifier."""
    assert judged(org) == total
    leaves = list(TelemetryFlow.objects.filter(organization=org).values_list("leaf_index", flat=True))
    assert None not in leaves and len(set(leaves)) == total
    batches = FlowBatch.objects.filter(organization=org)
    assert AuditEvent.objects.filter(organization=org, kind="flow.batch").count() == batches.count()
    assert not batches.filter(status="received").exists()
    result = verify_chain(org)
    assert result.valid, result.problem
    assert result.leaves_checked == total + AuditEvent.objects.filter(organization=org).count()

    audit.write_digest(org)
    verifier = tool
    for flow in TelemetryFlow.objects.filter(organization=org).order_by("?")[:25]:
        leaf_index, entry = leaf_of(flow)
        proof = proofs.inclusion_proof(org, leaf_index=leaf_index, entry=entry)
        root = bytes.fromhex(orjson.loads(proof["tree_head"]["body"])["root_hash"])
        assert verifier.verify_inclusion(leaf_index, proof["tree_size"], verifier.leaf_hash(entry),
                                         [bytes.fromhex(h) for h in proof["audit_path"]], root)


def test_a_worker_killed_mid_run_judges_every_flow_exactly_once(org, people):
    total = 100_000
    with celery_worker() as worker:
        store_batches(org, people, batches=10, size=10_000)
        wait_for(lambda: judged(org) >= 20_000, timeout=300, what="the worker to judge some batches")
        worker.kill()
    assert judged(org) < total, "the worker must die mid-run for this test to mean anything"
    with celery_worker(beat=True, AUDIT_SWEEP_SECONDS="1", FLOW_SWEEP_AFTER_SECONDS="0"):
        wait_for(lambda: not FlowBatch.objects.filter(organization=org, status="received").exists(),
                 timeout=600, what="the sweep to judge the remaining batches")
    assert_each_flow_judged_once(org, total)


def redis(*args):
    return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", "6379", *args], capture_output=True, text=True)


def start_redis():
    subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "",
                    "--appendonly", "no"], check=True)
    wait_for(lambda: redis("ping").stdout.strip() == "PONG", timeout=30, what="Redis to come back")


def test_with_redis_down_the_api_still_accepts_and_the_sweep_judges_later(api, org, people):
    redis("shutdown", "nosave")
    try:
        wait_for(lambda: redis("ping").returncode != 0, timeout=10, what="Redis to stop")
        responses = [api.post("/api/v1/flows/", make_flows(people, 200, f"r{i}"), format="json") for i in range(3)]
        assert [r.status_code for r in responses] == [202, 202, 202]
        assert FlowBatch.objects.filter(organization=org, status="received").count() == 3
    finally:
        start_redis()
    with celery_worker(beat=True, AUDIT_SWEEP_SECONDS="1", FLOW_SWEEP_AFTER_SECONDS="0"):
        wait_for(lambda: judged(org) == 600, timeout=120, what="the sweep to judge the stored batches")
    assert_each_flow_judged_once(org, 600)


def postgres_cluster():
    version = subprocess.run(["ls", "/etc/postgresql"], capture_output=True, text=True).stdout.split()[0]
    return version


def test_postgres_restarted_mid_run_loses_nothing(org, people):
    with celery_worker(beat=True, AUDIT_SWEEP_SECONDS="1", FLOW_SWEEP_AFTER_SECONDS="5"):
        store_batches(org, people, batches=6, size=5_000)
        wait_for(lambda: judged(org) >= 5_000, timeout=120, what="the first batch to be judged")
        connection.close()
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", postgres_cluster(), "main", "restart",
                        "-m", "fast"], check=True)
        wait_for(lambda: subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"]).returncode == 0, timeout=60,
                 what="PostgreSQL to come back")
        time.sleep(1)
        wait_for(lambda: _judged_after_restart(org) == 30_000, timeout=300, what="every batch to be judged")
    assert_each_flow_judged_once(org, 30_000)


def _judged_after_restart(org):
    try:
        return judged(org)
    except Exception:  # the test's own connection may still be reconnecting
        connection.close()
        return -1
