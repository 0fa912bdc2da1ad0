"""Inclusion and consistency proofs of an organization's log: built by the product from real changes, checked by
audit.merkle and by the standalone verifier an auditor runs, through the API and across months of signed heads."""
import copy
import hashlib
import json
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone as django_timezone

from audit import merkle, proofs, signing
from audit import services as audit
from audit.actors import Actor
from audit.models import AuditDigest, AuditEvent
from audit.selectors import export_chain
from audit.verification import verify_export
from flows.models import FlowBatch, TelemetryFlow

from ..factories import AccountFactory
from ..reports.conftest import clock
from ..verifier import TOOL, tool

pytestmark = pytest.mark.django_db


TRAINING = {"data_category": "content.transcript", "purpose": "ai.training.first_party"}


# --- audit.merkle's verification, against its own Tree and the standalone tool ------------------------------

def tree_of(entries: list[bytes]) -> merkle.Tree:
    """A Tree over `entries` kept in memory as the ledger keeps it in tiles."""
    frontier, tiles = merkle.Frontier(), {}
    for level, index, hashes in frontier.append(merkle.leaf_hash(e) for e in entries):
        tiles[level, index] = hashes
    return merkle.Tree(len(entries), frontier, lambda keys: {key: tiles[key] for key in keys})


def flipped(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


@pytest.mark.parametrize("seed", range(6))
def test_inclusion_proofs_of_random_trees_verify_and_nothing_else_does(seed):
    rng = random.Random(seed)
    entries = [rng.randbytes(rng.randrange(0, 40)) for _ in range(rng.choice([1, 2, 7, 255, 256, 257, 700]))]
    tree = tree_of(entries)
    root = tree.root()
    assert root == merkle.root_of(merkle.leaf_hash(e) for e in entries)
    for index in rng.sample(range(len(entries)), min(len(entries), 25)):
        path, leaf = tree.inclusion_path(index), merkle.leaf_hash(entries[index])
        assert merkle.verify_inclusion(leaf, index, len(entries), path, root)
        assert tool.verify_inclusion(index, len(entries), leaf, path, root)
        assert not merkle.verify_inclusion(flipped(leaf), index, len(entries), path, root)
        assert not merkle.verify_inclusion(leaf, index, len(entries), path, flipped(root))
        assert not merkle.verify_inclusion(leaf, len(entries), len(entries), path, root)
        if path:
            assert not merkle.verify_inclusion(leaf, index, len(entries), [flipped(path[0]), *path[1:]], root)
            assert not merkle.verify_inclusion(leaf, index, len(entries), path[:-1], root)
            assert not merkle.verify_inclusion(leaf, index ^ 1, len(entries), path, root)


@pytest.mark.parametrize("seed", range(6))
def test_consistency_proofs_of_random_trees_verify_and_nothing_else_does(seed):
    rng = random.Random(seed)
    entries = [rng.randbytes(8) for _ in range(rng.choice([1, 3, 8, 256, 300, 600]))]
    new = tree_of(entries)
    new_root = new.root()
    for old_size in sorted({0, 1, len(entries), *rng.sample(range(len(entries) + 1), min(len(entries), 20))}):
        old_root = merkle.root_of(merkle.leaf_hash(e) for e in entries[:old_size])
        proof = new.consistency_path(old_size)
        assert merkle.verify_consistency(old_size, len(entries), proof, old_root, new_root)
        assert tool.verify_consistency(old_size, len(entries), old_root, new_root, proof)
        if 0 < old_size < len(entries):
            assert not merkle.verify_consistency(old_size, len(entries), proof, flipped(old_root), new_root)
            assert not merkle.verify_consistency(old_size, len(entries), proof, old_root, flipped(new_root))
            assert not merkle.verify_consistency(old_size, len(entries), [flipped(proof[0]), *proof[1:]],
                                                 old_root, new_root)
            assert not merkle.verify_consistency(old_size, len(entries), proof[:-1], old_root, new_root)
    assert not merkle.verify_consistency(len(entries) + 1, len(entries), [], new_root, new_root)


def test_the_rfc_6962_reference_proofs_verify():
    from .test_standalone_verifier import CONSISTENCY, INCLUSION, LEAVES, ROOTS, path
    for index, size, names in INCLUSION:
        assert merkle.verify_inclusion(merkle.leaf_hash(LEAVES[index]), index, size, path(names), ROOTS[size])
    for first, second, names in CONSISTENCY:
        assert merkle.verify_consistency(first, second, path(names), ROOTS[first], ROOTS[second])


# --- Real data: consents and flows through the API, signed tree heads through the service ---------------------

@pytest.fixture(autouse=True)
def workers(django_capture_on_commit_callbacks, eager_celery):
    global _after_commit
    _after_commit = django_capture_on_commit_callbacks
    yield


_after_commit = None


def consent(api, account, action="grant"):
    body = {"account": account.user_name, "action": action, "mechanism": "self_service", **TRAINING}
    with _after_commit(execute=True):
        assert api.post("/api/v1/consents/", body, format="json").status_code == 201


def post_flows(api, *flows):
    body = {"flows": [{"accounts": [a.user_name for a in accounts], **TRAINING, "flow_id": flow_id,
                       "destination": "vendor.model_training", "occurred_at": django_timezone.now().isoformat(),
                       "volume": 10} for flow_id, accounts in flows]}
    with _after_commit(execute=True):
        response = api.post("/api/v1/flows/", body, format="json")
    assert response.status_code == 202, response.content
    return response.json()["batch_id"]


def sign(org) -> AuditDigest:
    """Chain what is pending and sign a tree head, as the beat's write_digests does."""
    audit.drain_outbox(org.pk)
    return audit.write_digest(org)


def consent_event(org, account) -> AuditEvent:
    return AuditEvent.objects.filter(organization=org, kind="consent.granted", subject_account=account).latest("seq")


@pytest.fixture
def key_pem(tmp_path) -> Path:
    path = tmp_path / "key.pem"
    path.write_text(signing.public_pem(signing.signing_key()))
    return path


def run_tool(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, timeout=60)


def check_file(kind, proof: dict, key_pem: Path) -> subprocess.CompletedProcess:
    path = key_pem.parent / f"{kind}-{hashlib.sha256(json.dumps(proof).encode()).hexdigest()[:12]}.json"
    path.write_text(json.dumps(proof))
    return run_tool(kind, path, "--public-key", key_pem)


def verifies(kind, proof, key_pem) -> bool:
    result = check_file(kind, proof, key_pem)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode == 0


def verifies_here(proof: dict) -> bool:
    """audit.merkle's own check of an inclusion proof file's path against its head's root."""
    head = json.loads(proof["tree_head"]["body"])
    return merkle.verify_inclusion(merkle.leaf_hash(proof["entry"].encode()), proof["leaf_index"], head["tree_size"],
                                   [bytes.fromhex(h) for h in proof["audit_path"]], bytes.fromhex(head["root_hash"]))


@pytest.fixture
def log(api, org):
    """Acme's log: consents, two batches of flows and more changes, with two signed tree heads."""
    people = [AccountFactory(organization=org) for _ in range(3)]
    consent(api, people[0])
    post_flows(api, ("f-1", people[:2]), ("f-2", people[2:]))
    first = sign(org)
    consent(api, people[1])
    post_flows(api, ("f-3", people[:1]), ("f-4", people), ("f-5", people[1:]))
    consent(api, people[0], "revoke")
    second = sign(org)
    return {"people": people, "heads": [first, second]}


def test_the_standalone_verifier_accepts_the_products_proofs_and_refuses_a_flipped_byte(api, org, log, key_pem):
    event = consent_event(org, log["people"][0])
    flow = TelemetryFlow.objects.get(organization=org, flow_id="f-4")
    first, second = log["heads"]

    event_proof = api.get(f"/api/v1/audit-events/{event.seq}/proof/").json()
    assert event_proof["event"] == {"seq": event.seq, "kind": "consent.granted"}
    assert event_proof["entry"] == event.body and event_proof["leaf_index"] == event.leaf_index
    flow_proof = api.get(f"/api/v1/flows/{flow.pk}/proof/").json()
    assert flow_proof["flow"] == {"flow_id": "f-4", "batch": flow.batch_id, "proven_by": "leaf"}
    assert flow_proof["entry"].split("\t")[3] == "f-4" and flow_proof["leaf_index"] == flow.leaf_index
    consistency = api.get("/api/v1/audit-events/consistency/", {"first": first.pk, "second": second.pk}).json()
    assert consistency["proof"] and json.loads(consistency["second"]["body"])["tree_size"] == second.tree_size

    for proof in (event_proof, flow_proof):
        assert verifies_here(proof) and verifies("inclusion", proof, key_pem)
        tampered = copy.deepcopy(proof)
        tampered["entry"] = proof["entry"].replace("consent", "konsent").replace("f-4", "f-5")
        assert tampered["entry"] != proof["entry"]
        assert not verifies_here(tampered) and not verifies("inclusion", tampered, key_pem)
        tampered = copy.deepcopy(proof)
        tampered["audit_path"][0] = flipped(bytes.fromhex(proof["audit_path"][0])).hex()
        assert not verifies_here(tampered) and not verifies("inclusion", tampered, key_pem)
    assert verifies("consistency", consistency, key_pem)
    tampered = copy.deepcopy(consistency)
    tampered["proof"][-1] = flipped(bytes.fromhex(consistency["proof"][-1])).hex()
    assert not verifies("consistency", tampered, key_pem)

    # the file says what the CLI says to an auditor: one line naming what it proved
    assert "valid" in check_file("inclusion", flow_proof, key_pem).stdout.lower()


def test_a_proof_produced_for_a_consent_in_january_still_verifies_against_a_tree_head_signed_in_june(
        api, org, key_pem):
    ada, bob = AccountFactory(organization=org), AccountFactory(organization=org)
    with clock(datetime(2025, 1, 14, 9, tzinfo=timezone.utc)):
        consent(api, ada)
        january = sign(org)
    heads = [january]
    for month in range(2, 7):
        with clock(datetime(2025, month, 10, 9, tzinfo=timezone.utc)):
            consent(api, bob, "grant" if month % 2 else "revoke")
            post_flows(api, (f"m{month}-a", [ada, bob]), (f"m{month}-b", [bob]))
            heads.append(sign(org))
    june = heads[-1]
    assert june.period_end.month == 6 and june.tree_size > january.tree_size
    event = consent_event(org, ada)

    in_january = api.get(f"/api/v1/audit-events/{event.seq}/proof/", {"tree_head": january.pk}).json()
    assert json.loads(in_january["tree_head"]["body"])["period_end"].startswith("2025-01-14")
    assert in_january["tree_size"] == january.tree_size
    assert verifies_here(in_january) and verifies("inclusion", in_january, key_pem)

    january_to_june = api.get("/api/v1/audit-events/consistency/", {"first": january.pk}).json()
    assert json.loads(january_to_june["second"]["body"])["root_hash"] == june.root_hash
    assert verifies("consistency", january_to_june, key_pem)
    assert merkle.verify_consistency(january.tree_size, june.tree_size,
                                     [bytes.fromhex(h) for h in january_to_june["proof"]],
                                     bytes.fromhex(january.root_hash), bytes.fromhex(june.root_hash))

    in_june = api.get(f"/api/v1/audit-events/{event.seq}/proof/").json()
    assert in_june["tree_size"] == june.tree_size and in_june["entry"] == in_january["entry"]
    assert verifies_here(in_june) and verifies("inclusion", in_june, key_pem)

    # and every month's head extends the one before it, as the verify answer says of the last two
    for earlier, later in zip(heads, heads[1:]):
        proof = proofs.consistency_proof(org, first_id=earlier.pk, second_id=later.pk)
        assert verifies("consistency", proof, key_pem)
    answer = api.get("/api/v1/audit-events/verify/").json()
    assert answer["valid"] and answer["consistent_with_previous"] is True
    assert answer["latest_tree_head"]["id"] == june.pk and answer["latest_tree_head"]["tree_size"] == june.tree_size


def test_a_flow_judged_before_format_2_is_proven_by_its_own_event(api, org, key_pem):
    ada = AccountFactory(organization=org)
    with transaction.atomic():  # as a format-1 judge wrote it: the flow's own event, and no leaf
        audit.record(organization=org, kind="flow.violation", actor=Actor("system", None, "judge"),
                     payload={"flow_id": "old"}, subject_account=ada)
    audit.drain_outbox(org.pk)
    own = AuditEvent.objects.filter(organization=org, kind="flow.violation").get()
    now = django_timezone.now()
    batch = FlowBatch.objects.create(organization=org, status="done", flow_count=1, payload=b"[]", received_at=now,
                                     submitted_by={}, counts={"violation": 1})
    flow = TelemetryFlow.objects.create(
        organization=org, flow_id="old", batch=batch, occurred_at=now, account_count=1, verdict="violation",
        policy_version=1, audit_seq=own.seq, recorded_at=now, leaf_index=None, **TRAINING,
        destination="vendor.model_training")
    batch_id = batch.pk
    sign(org)

    proof = api.get(f"/api/v1/flows/{flow.pk}/proof/").json()
    assert proof["flow"] == {"flow_id": "old", "batch": batch_id, "proven_by": "event"}
    assert proof["event"] == {"seq": own.seq, "kind": "flow.violation"} and proof["entry"] == own.body
    assert "before log format 2" in proof["note"]
    assert verifies("inclusion", proof, key_pem)


# --- API errors and isolation --------------------------------------------------------------------------------

def problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


def test_a_leaf_newer_than_the_latest_signed_tree_head_is_a_409_saying_when_it_will_be_covered(api, org, settings):
    ada = AccountFactory(organization=org)
    consent(api, ada)
    audit.drain_outbox(org.pk)
    event = consent_event(org, ada)
    body = problem(api.get(f"/api/v1/audit-events/{event.seq}/proof/"), 409)
    assert "no signed tree head yet" in body["detail"].lower() and "next signed tree head" in body["detail"]

    head = sign(org)
    post_flows(api, ("late", [ada]))
    flow = TelemetryFlow.objects.get(organization=org, flow_id="late")
    body = problem(api.get(f"/api/v1/flows/{flow.pk}/proof/"), 409)
    expected = head.period_end + timedelta(minutes=settings.AUDIT_DIGEST_MINUTES)
    assert f"leaf {flow.leaf_index} is newer" in body["detail"].lower()
    assert expected.strftime("%Y-%m-%dT%H:%M:%S") in body["detail"]
    # proven against an earlier head than asked for: a 409 too, naming the head
    assert "ask for a later one" in problem(
        api.get(f"/api/v1/flows/{flow.pk}/proof/", {"tree_head": head.pk}), 409)["detail"]
    sign(org)
    assert api.get(f"/api/v1/flows/{flow.pk}/proof/").status_code == 200


def test_malformed_parameters_are_a_400_naming_them(api, org, log):
    event = consent_event(org, log["people"][0])
    flow = TelemetryFlow.objects.filter(organization=org).first()
    for value in ("abc", "0", "-1", "1.0", "1e3", "99999999999999999999"):
        body = problem(api.get(f"/api/v1/audit-events/{event.seq}/proof/", {"tree_head": value}), 400)
        assert [e["field"] for e in body["errors"]] == ["tree_head"]
        body = problem(api.get(f"/api/v1/flows/{flow.pk}/proof/", {"tree_head": value}), 400)
        assert [e["field"] for e in body["errors"]] == ["tree_head"]
        body = problem(api.get("/api/v1/audit-events/consistency/", {"first": value}), 400)
        assert [e["field"] for e in body["errors"]] == ["first"]
    body = problem(api.get("/api/v1/audit-events/consistency/"), 400)
    assert [e["field"] for e in body["errors"]] == ["first"]
    first = log["heads"][0].pk
    body = problem(api.get("/api/v1/audit-events/consistency/", {"first": first, "second": "x"}), 400)
    assert [e["field"] for e in body["errors"]] == ["second"]
    body = problem(api.get("/api/v1/audit-events/consistency/", {"first": first, "secnd": 2}), 400)
    assert [e["field"] for e in body["errors"]] == ["secnd"]
    body = problem(api.get(f"/api/v1/audit-events/{event.seq}/proof/?tree_head="), 400)
    assert [e["field"] for e in body["errors"]] == ["tree_head"]
    body = problem(api.get("/api/v1/audit-events/tree-heads/", {"page_size": "0"}), 400)
    assert [e["field"] for e in body["errors"]] == ["page_size"]
    assert problem(api.get("/api/v1/audit-events/abc/proof/"), 404)


def test_another_organizations_events_flows_and_tree_heads_are_never_reachable(api, other_api, org, other_org, log):
    event = consent_event(org, log["people"][0])
    flow = TelemetryFlow.objects.filter(organization=org).first()
    first, second = log["heads"]
    theirs = AccountFactory(organization=other_org)
    consent(other_api, theirs)
    their_head = sign(other_org)
    their_event = consent_event(other_org, theirs)

    # Globex's seq 1 exists, but as Globex's own event: never Acme's
    assert other_api.get(f"/api/v1/audit-events/{their_event.seq}/proof/").json()["organization"] == other_org.pk
    problem(other_api.get(f"/api/v1/audit-events/{event.seq + 100}/proof/"), 404)
    problem(other_api.get(f"/api/v1/flows/{flow.pk}/proof/"), 404)
    problem(other_api.get("/api/v1/audit-events/consistency/", {"first": first.pk}), 404)
    problem(other_api.get("/api/v1/audit-events/consistency/", {"first": their_head.pk, "second": second.pk}), 404)
    problem(api.get(f"/api/v1/audit-events/{event.seq}/proof/", {"tree_head": their_head.pk}), 404)
    problem(api.get(f"/api/v1/flows/{flow.pk}/proof/", {"tree_head": their_head.pk}), 404)
    problem(api.get("/api/v1/audit-events/consistency/", {"first": their_head.pk}), 404)
    problem(api.get(f"/api/v1/flows/{flow.pk + 10_000}/proof/"), 404)

    heads = api.get("/api/v1/audit-events/tree-heads/").json()["results"]
    assert [h["id"] for h in heads] == [second.pk, first.pk]
    assert heads[0] == {"id": second.pk, "tree_size": second.tree_size, "root_hash": second.root_hash,
                        "period_end": heads[0]["period_end"], "key_fingerprint": second.key_fingerprint,
                        "body": second.body, "signature": second.signature}
    assert [h["id"] for h in other_api.get("/api/v1/audit-events/tree-heads/").json()["results"]] == [their_head.pk]
    page = api.get("/api/v1/audit-events/tree-heads/", {"page_size": 1}).json()
    assert [h["id"] for h in page["results"]] == [second.pk] and page["next"]
    assert other_api.get("/api/v1/audit-events/verify/").json()["consistent_with_previous"] is None


def test_flows_list_their_id_the_key_of_their_proof(api, org, log):
    listed = api.get("/api/v1/flows/").json()["results"]
    assert {f["id"] for f in listed} == set(TelemetryFlow.objects.filter(organization=org).values_list("pk", flat=True))


# --- Export (format 2) ----------------------------------------------------------------------------------------

def test_an_export_of_a_real_organization_verifies_with_the_standalone_tool_and_the_command(api, org, log, tmp_path):
    consent(api, log["people"][2])  # chained after the last head: exported, not yet signed
    audit.drain_outbox(org.pk)
    directory = tmp_path / "export"
    summary = export_chain(org, directory)
    manifest = json.loads((directory / "manifest.json").read_text())
    events, flows = AuditEvent.objects.filter(organization=org), TelemetryFlow.objects.filter(organization=org)
    assert manifest == {"format": 2, "organization": org.pk, "tree_size": events.count() + flows.count(),
                        "event_count": events.count(), "flow_count": flows.count()}
    assert summary["flows"] == flows.count()
    lines = [json.loads(line) for line in (directory / "flows.jsonl").read_text().splitlines()]
    assert [line["leaf_index"] for line in lines] == sorted(flows.values_list("leaf_index", flat=True))
    assert all("leaf_index" in json.loads(line) for line in (directory / "events.jsonl").read_text().splitlines())

    fingerprint = signing.fingerprint(signing.public_pem(signing.signing_key()))
    result = run_tool("export", directory, "--trusted-key", fingerprint)
    assert result.returncode == 0, result.stdout + result.stderr
    call_command("verify_audit_chain", "--export", str(directory), "--trusted-key", fingerprint)

    # a flow's entry altered in the export is caught by both
    lines[1]["entry"] = lines[1]["entry"].replace("vendor.model_training", "vendor.model_trainin")
    (directory / "flows.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert run_tool("export", directory, "--trusted-key", fingerprint).returncode == 1
    assert not verify_export(directory, trusted_keys={fingerprint}).valid

