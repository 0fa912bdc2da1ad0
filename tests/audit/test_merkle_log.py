"""The Merkle log: its tree against RFC 9162's definitions, and its verification finding and naming each
kind of tampering (a flow row, an event row, a node hash, a tree head), in one process and in several."""
import hashlib
import json
import random
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import logcheck, merkle, signing
from audit import services as audit
from audit.actors import SYSTEM
from audit.models import AuditDigest, AuditEvent, ChainHead, MerkleTile
from audit.selectors import export_chain, verify_chain
from flows.batches import process_batch, receive_batch
from flows.models import TelemetryFlow
from governance import selectors as governance_selectors

from ..factories import AccountFactory
from ..verifier import TOOL
from ..workers import require_services
from .test_chain import behind_the_triggers_back


def naive_root(leaves: list[bytes]) -> bytes:
    """MTH straight from RFC 9162 §2.1.1."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = merkle.split_point(len(leaves))
    return merkle.node_hash(naive_root(leaves[:k]), naive_root(leaves[k:]))


@settings(max_examples=40, deadline=None)
@given(chunks=st.lists(st.integers(1, 700), min_size=1, max_size=6), seed=st.integers(0, 1000))
def test_the_stored_tree_is_the_rfc_tree_however_the_leaves_arrive(chunks, seed):
    leaves = [merkle.leaf_hash(f"{seed}:{i}".encode()) for i in range(sum(chunks))]
    frontier, tiles, at = merkle.Frontier(), {}, 0
    for chunk in chunks:  # each append stored and read back as the chain head keeps it
        tiles.update({(level, index): blob for level, index, blob in frontier.append(leaves[at:at + chunk])})
        frontier, at = merkle.Frontier(frontier.size, frontier.pack()), at + chunk
    assert frontier.root() == naive_root(leaves)
    rng = random.Random(seed)
    size = rng.randint(1, len(leaves))  # an older signed tree head's size
    tree = merkle.Tree(size, frontier, lambda keys: {key: tiles[key] for key in keys})
    assert tree.root() == naive_root(leaves[:size])
    index, old = rng.randrange(size), rng.randint(0, size)
    assert tree.inclusion_path(index) == naive_path(index, leaves[:size])
    assert tree.consistency_path(old) == ([] if old in (0, size) else naive_subproof(old, leaves[:size], True))


def naive_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]), RFC 9162 §2.1.3.1."""
    if len(leaves) <= 1:
        return []
    k = merkle.split_point(len(leaves))
    if m < k:
        return naive_path(m, leaves[:k]) + [naive_root(leaves[k:])]
    return naive_path(m - k, leaves[k:]) + [naive_root(leaves[:k])]


def naive_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b), RFC 9162 §2.1.4.1."""
    if m == len(leaves):
        return [] if whole else [naive_root(leaves)]
    k = merkle.split_point(len(leaves))
    if m <= k:
        return naive_subproof(m, leaves[:k], whole) + [naive_root(leaves[k:])]
    return naive_subproof(m - k, leaves[k:], False) + [naive_root(leaves[:k])]


pytestmark = pytest.mark.django_db


def judge_flows(org, accounts, count, prefix="f"):
    """Report `count` flows through the door and a worker, as the API and a worker would."""
    from django.utils import timezone

    from flows.validation import validate_flows
    compiled = governance_selectors.compiled_policy(org)
    flows = [{"flow_id": f"{prefix}{i}", "accounts": [accounts[i % len(accounts)].user_name],
              "data_category": "content.chat", "purpose": "ai.training.first_party",
              "destination": "vendor.model_training", "occurred_at": timezone.now().isoformat(), "volume": i}
             for i in range(count)]
    validated = validate_flows({"flows": flows}, catalog=compiled.snapshot.catalog,
                               resolve_accounts=lambda names: governance_selectors.known_accounts(compiled, org, names))
    batch = receive_batch(organization=org, actor=SYSTEM, flows=validated)
    process_batch(batch.pk)
    return batch


@pytest.fixture
def log(org):
    """An organization's log: events, then three batches of flows around two signed tree heads."""
    people = [AccountFactory(organization=org) for _ in range(5)]
    audit.drain_outbox(org.pk)
    judge_flows(org, people, 300, "a")
    audit.write_digest(org)
    judge_flows(org, people, 200, "b")
    audit.write_digest(org)
    judge_flows(org, people, 45, "c")  # after the last head: on the frontier, in a partial tile
    return org


def test_a_log_of_events_and_flows_verifies_leaf_by_leaf(log):
    result = verify_chain(log)
    head = ChainHead.objects.get(organization=log)
    assert result.valid, result.problem
    assert result.leaves_checked == head.tree_size == AuditEvent.objects.filter(organization=log).count() + 545
    assert result.root_hash == head.tree_root
    assert MerkleTile.objects.filter(organization=log, level=0).count() == head.tree_size // 256


@pytest.mark.parametrize("flow_id", ["a7", "c3"])  # in a full tile; on the frontier
def test_a_flow_row_changed_behind_the_triggers_back_is_named(log, flow_id):
    flow = TelemetryFlow.objects.get(organization=log, flow_id=flow_id)
    behind_the_triggers_back("UPDATE audit_telemetryflow SET verdict = %s WHERE id = %s",
                             ["violation" if flow.verdict == "permitted" else "permitted", flow.pk],
                             table="audit_telemetryflow")
    result = verify_chain(log)
    assert not result.valid and result.first_invalid_leaf == flow.leaf_index
    assert result.problem == (f"leaf {flow.leaf_index} (flow {flow_id} of batch {flow.batch_id}) differs from the "
                              "leaf hash the log stored")


def test_a_flow_row_deleted_behind_the_triggers_back_is_named(log):
    flow = TelemetryFlow.objects.get(organization=log, flow_id="b10")
    behind_the_triggers_back("DELETE FROM audit_flowaccount WHERE flow_id = %s", [flow.pk], table="audit_telemetryflow")
    behind_the_triggers_back("DELETE FROM audit_telemetryflow WHERE id = %s", [flow.pk], table="audit_telemetryflow")
    result = verify_chain(log)
    assert (result.valid, result.first_invalid_leaf) == (False, flow.leaf_index)
    assert result.problem == f"leaf {flow.leaf_index} is missing"


def test_a_node_hash_changed_behind_the_triggers_back_is_named(log):
    tile = MerkleTile.objects.get(organization=log, level=0, index=1)
    blob = bytearray(tile.hashes)
    blob[40] ^= 1  # leaf 257's stored hash
    behind_the_triggers_back("UPDATE audit_merkletile SET hashes = %s WHERE id = %s", [bytes(blob), tile.pk],
                             table="audit_merkletile")
    result = verify_chain(log)
    assert (result.valid, result.first_invalid_leaf) == (False, 257)
    assert result.problem == ("node hashes altered: the stored leaf hashes of tile 0/1 do not add up to their "
                              "parent node")


def test_a_frontier_changed_behind_the_chain_heads_back_is_named(log):
    head = ChainHead.objects.get(organization=log)
    edge = bytearray(head.tree_edge)
    edge[-1] ^= 1  # the level-8 node of the first full tile
    ChainHead.objects.filter(pk=head.pk).update(tree_edge=bytes(edge))
    result = verify_chain(log)
    assert not result.valid and "frontier differs" in result.problem


def test_an_event_row_changed_behind_the_triggers_back_is_named(log):
    event = AuditEvent.objects.filter(organization=log, kind="flow.batch").order_by("seq").first()
    behind_the_triggers_back("UPDATE audit_auditevent SET body = %s WHERE id = %s",
                             [event.body.replace('"leaf_count":300', '"leaf_count":299'), event.pk],
                             table="audit_auditevent")
    result = verify_chain(log)
    assert (result.valid, result.first_invalid_seq) == (False, event.seq)
    assert result.problem == "hash does not match the event's content"


def test_a_tree_head_with_another_root_is_named_even_signed_with_the_right_key(log):
    digest = AuditDigest.objects.filter(organization=log).order_by("id").last()
    forged = digest.body.replace(digest.root_hash, "ab" * 32)
    behind_the_triggers_back("UPDATE audit_auditdigest SET body = %s, signature = %s, root_hash = %s "
                             "WHERE id = %s", [forged, signing.sign(forged), "ab" * 32, digest.pk],
                             table="audit_auditdigest")
    result = verify_chain(log)
    assert not result.valid
    assert result.problem == f"digest 2: its root differs from the tree of the first {digest.tree_size} leaves"


def test_a_tree_head_whose_columns_differ_from_what_it_signed_is_named(log):
    digest = AuditDigest.objects.filter(organization=log).order_by("id").first()
    behind_the_triggers_back("UPDATE audit_auditdigest SET tree_size = tree_size + 1 WHERE id = %s", [digest.pk],
                             table="audit_auditdigest")
    result = verify_chain(log)
    assert not result.valid
    assert result.problem == "digest 1: its tree_size or root_hash column differs from what it signed"


def test_a_tree_head_altered_without_its_key_is_refused(log):
    digest = AuditDigest.objects.filter(organization=log).order_by("id").first()
    forged = digest.body.replace(f'"tree_size":{digest.tree_size}', f'"tree_size":{digest.tree_size - 1}')
    behind_the_triggers_back("UPDATE audit_auditdigest SET body = %s WHERE id = %s", [forged, digest.pk],
                             table="audit_auditdigest")
    result = verify_chain(log)
    assert not result.valid and result.problem == "digest 1: the signature does not verify"


@pytest.mark.services
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_segments_checked_in_two_processes_find_what_one_finds(org, monkeypatch):
    """`verify_audit_chain --jobs 2`: segments of whole tiles in two processes, batches across their edges."""
    require_services()
    monkeypatch.setattr(logcheck, "SEGMENT_MIN", 256)
    people = [AccountFactory(organization=org) for _ in range(3)]
    audit.drain_outbox(org.pk)
    for n in range(4):
        judge_flows(org, people, 700, f"p{n}-")
        audit.write_digest(org)
    assert len(logcheck.segments(ChainHead.objects.get(organization=org).tree_size, 2, ())) > 4

    one, two = verify_chain(org), verify_chain(org, jobs=2)
    assert one.valid and two.valid and (one.root_hash, one.leaves_checked) == (two.root_hash, two.leaves_checked)

    flow = TelemetryFlow.objects.get(organization=org, flow_id="p2-350")
    behind_the_triggers_back("UPDATE audit_telemetryflow SET volume = volume + 1 WHERE id = %s", [flow.pk],
                             table="audit_telemetryflow")
    one, two = verify_chain(org), verify_chain(org, jobs=2)
    assert (one.first_invalid_leaf, one.problem) == (two.first_invalid_leaf, two.problem)
    assert two.first_invalid_leaf == flow.leaf_index and f"flow p2-350 of batch {flow.batch_id}" in two.problem




def standalone(directory) -> subprocess.CompletedProcess:
    fingerprint = signing.fingerprint(signing.public_pem(signing.signing_key()))
    return subprocess.run([sys.executable, str(TOOL), "export", str(directory), "--trusted-key", fingerprint],
                          capture_output=True, text=True, timeout=120)


def test_the_standalone_verifier_passes_the_products_export(log, tmp_path):
    export_chain(log, tmp_path)
    result = standalone(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"valid: {ChainHead.objects.get(organization=log).tree_size} leaves")


def test_a_flow_row_changed_behind_the_triggers_back_is_found_by_the_standalone_verifier_too(log, tmp_path):
    """Its export carries the changed row; the batch's leaves_root, chained and signed, no longer adds up."""
    flow = TelemetryFlow.objects.get(organization=log, flow_id="a7")
    behind_the_triggers_back("UPDATE audit_telemetryflow SET destination = %s WHERE id = %s",
                             ["somewhere.else", flow.pk], table="audit_telemetryflow")
    export_chain(log, tmp_path)
    result = standalone(tmp_path)
    batch = AuditEvent.objects.get(organization=log, kind="flow.batch", seq=flow.audit_seq)
    assert result.returncode == 1
    assert result.stdout.startswith(f"INVALID: event seq {batch.seq} (leaf {batch.leaf_index}): ")
    assert f"batch {flow.batch_id}" in result.stdout and "leaves_root" in result.stdout


def test_an_event_row_changed_behind_the_triggers_back_is_found_by_the_standalone_verifier_too(log, tmp_path):
    event = AuditEvent.objects.filter(organization=log, kind="flow.batch").order_by("seq").first()
    behind_the_triggers_back("UPDATE audit_auditevent SET body = %s WHERE id = %s",
                             [event.body.replace('"leaf_count":300', '"leaf_count":299'), event.pk],
                             table="audit_auditevent")
    export_chain(log, tmp_path)
    result = standalone(tmp_path)
    assert result.returncode == 1
    assert result.stdout.startswith(f"INVALID: event seq {event.seq} (leaf {event.leaf_index}): ")


def test_a_tree_head_re_signed_with_another_root_is_found_by_the_standalone_verifier_too(log, tmp_path):
    digest = AuditDigest.objects.filter(organization=log).order_by("id").last()
    forged = digest.body.replace(digest.root_hash, "ab" * 32)
    behind_the_triggers_back("UPDATE audit_auditdigest SET body = %s, signature = %s, root_hash = %s "
                             "WHERE id = %s", [forged, signing.sign(forged), "ab" * 32, digest.pk],
                             table="audit_auditdigest")
    export_chain(log, tmp_path)
    result = standalone(tmp_path)
    assert result.returncode == 1
    assert f"root_hash differs from the tree of the first {digest.tree_size} leaves" in result.stdout


def test_a_proof_reads_the_full_tiles_its_path_crosses_on_either_database(log):
    from audit import proofs
    from flows.leaves import leaf_of
    flow = TelemetryFlow.objects.get(organization=log, flow_id="a7")  # in tile 0/0, full
    leaf_index, entry = leaf_of(flow)
    proof = proofs.inclusion_proof(log, leaf_index=leaf_index, entry=entry)
    head = AuditDigest.objects.filter(organization=log).order_by("id").last()
    assert proof["tree_size"] == head.tree_size > merkle.TILE_WIDTH
    assert merkle.verify_inclusion(merkle.leaf_hash(entry), leaf_index, head.tree_size,
                                   [bytes.fromhex(h) for h in proof["audit_path"]], bytes.fromhex(head.root_hash))


def test_a_node_hash_changed_behind_the_triggers_back_makes_the_proofs_it_serves_fail_the_standalone_verifier(
        log, tmp_path):
    """An export carries leaves, not nodes: a stored node shows in the proofs served from it, which no
    longer reach the signed root, and the server's verification names it."""
    from audit import proofs
    from flows.leaves import leaf_of
    flow = TelemetryFlow.objects.get(organization=log, flow_id="a7")
    leaf_index, entry = leaf_of(flow)
    tile = MerkleTile.objects.get(organization=log, level=0, index=0)
    blob = bytearray(tile.hashes)
    sibling = leaf_index ^ 1  # the leaf's sibling: the first hash of its audit path
    blob[sibling * 32] ^= 1
    behind_the_triggers_back("UPDATE audit_merkletile SET hashes = %s WHERE id = %s", [bytes(blob), tile.pk],
                             table="audit_merkletile")
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(json.dumps(proofs.inclusion_proof(log, leaf_index=leaf_index, entry=entry)))
    key_file = tmp_path / "key.pem"
    key_file.write_text(signing.public_pem(signing.signing_key()))
    result = subprocess.run([sys.executable, str(TOOL), "inclusion", str(proof_file), "--public-key", str(key_file)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stdout.startswith("INVALID"), result.stdout + result.stderr
    assert not verify_chain(log).valid
