"""tools/verify_audit_log.py, the verifier an auditor runs without this code base: RFC 9162 vectors, exports, CLI."""
import base64
import hashlib
import json
import random
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..verifier import TOOL
from ..verifier import tool as v

# The RFC 6962 test tree, from transparency-dev/merkle (commit 417fb0c3): testonly/constants.go holds the leaf
# inputs and the roots for sizes 0..8; cmd/proofgen/main.go holds inclusionProofs and consistencyProofs, whose
# leaf indexes are 1-based there (written 0-based below).
LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]
H = {  # node hashes of the 8-leaf tree named in the proofs below (testonly/constants.go NodeHashes)
    "l1": "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "l4": "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "l6": "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "l0-1": "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "l2-3": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "l4-5": "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "l6-7": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "l0-3": "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "l4-7": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    "l0": "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
}
INCLUSION = [(0, 1, []), (0, 8, ["l1", "l2-3", "l4-7"]), (5, 8, ["l4", "l6-7", "l0-3"]), (2, 3, ["l0-1"]),
             (1, 5, ["l0", "l2-3", "l4"])]
CONSISTENCY = [(1, 1, []), (1, 8, ["l1", "l2-3", "l4-7"]), (6, 8, ["l4-5", "l6-7", "l0-3"]), (2, 5, ["l2-3", "l4"]),
               (6, 7, ["l4-5", "l6", "l0-3"])]


def path(names):
    return [bytes.fromhex(H[name]) for name in names]


# A naive reference, straight from the recursive definitions of RFC 9162 §2.1.1, §2.1.3.1 and §2.1.4.1.
def naive_mth(entries):
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = 1
    while k * 2 < len(entries):
        k *= 2
    return hashlib.sha256(b"\x01" + naive_mth(entries[:k]) + naive_mth(entries[k:])).digest()


def naive_path(m, entries):
    if len(entries) <= 1:
        return []
    k = 1
    while k * 2 < len(entries):
        k *= 2
    if m < k:
        return naive_path(m, entries[:k]) + [naive_mth(entries[k:])]
    return naive_path(m - k, entries[k:]) + [naive_mth(entries[:k])]


def naive_subproof(m, entries, b):
    if m == len(entries):
        return [] if b else [naive_mth(entries)]
    k = 1
    while k * 2 < len(entries):
        k *= 2
    if m <= k:
        return naive_subproof(m, entries[:k], b) + [naive_mth(entries[k:])]
    return naive_subproof(m - k, entries[k:], False) + [naive_mth(entries[:k])]


def flipped(proof, i):
    return proof[:i] + [bytes([proof[i][0] ^ 1]) + proof[i][1:]] + proof[i + 1:]


def test_roots_of_the_reference_tree():
    hashes = [v.leaf_hash(leaf) for leaf in LEAVES]
    assert hashes[1] == bytes.fromhex(H["l1"])
    for size, root in enumerate(ROOTS):
        assert v.mth(hashes[:size]) == root == naive_mth(LEAVES[:size])


@pytest.mark.parametrize("index,size,names", INCLUSION)
def test_reference_inclusion_proofs(index, size, names):
    hashes = [v.leaf_hash(leaf) for leaf in LEAVES[:size]]
    assert v.inclusion_proof(index, hashes) == path(names)
    assert v.verify_inclusion(index, size, hashes[index], path(names), ROOTS[size])
    assert not v.verify_inclusion(index, size, hashes[index], path(names), ROOTS[size - 1])


@pytest.mark.parametrize("first,second,names", CONSISTENCY)
def test_reference_consistency_proofs(first, second, names):
    hashes = [v.leaf_hash(leaf) for leaf in LEAVES[:second]]
    assert v.consistency_proof(first, hashes) == path(names)
    assert v.verify_consistency(first, second, ROOTS[first], ROOTS[second], path(names))
    assert not v.verify_consistency(first, second, ROOTS[first], ROOTS[second - 1], path(names))


def test_proofs_of_random_trees_agree_with_the_definitions():
    rng = random.Random(9162)
    for size in [*range(1, 18), *rng.sample(range(18, 301), 8)]:
        entries = [rng.randbytes(rng.randrange(0, 40)) for _ in range(size + 1)]
        hashes = [v.leaf_hash(entry) for entry in entries]
        roots = [v.mth(hashes[:n]) for n in range(size + 2)]
        assert roots[size] == naive_mth(entries[:size])
        leaves = hashes[:size]
        for i in range(size):
            proof = v.inclusion_proof(i, leaves)
            assert proof == naive_path(i, entries[:size])
            assert v.verify_inclusion(i, size, leaves[i], proof, roots[size])
            assert not any(v.verify_inclusion(i, size, leaves[i], flipped(proof, j), roots[size])
                           for j in range(len(proof)))
            assert not v.verify_inclusion((i + 1) % size, size, leaves[i], proof, roots[size]) or size == 1
            assert not v.verify_inclusion(i, size + 1, leaves[i], proof, roots[size + 1])
            assert not v.verify_inclusion(i, size, leaves[i], proof, roots[size - 1])
        for m in range(size + 1):
            proof = v.consistency_proof(m, leaves)
            assert proof == (naive_subproof(m, entries[:size], True) if m else [])
            assert v.verify_consistency(m, size, roots[m], roots[size], proof)
            assert not any(v.verify_consistency(m, size, roots[m], roots[size], flipped(proof, j))
                           for j in range(len(proof)))
            for other in (m - 1, m + 1):
                if 0 < other <= size and v.consistency_proof(other, leaves) != proof:
                    assert not v.verify_consistency(other, size, roots[other], roots[size], proof)
            if 0 < m < size:
                assert not v.verify_consistency(m, size + 1, roots[m], roots[size + 1], proof)
                assert not v.verify_consistency(m, size, roots[m], roots[size], [])
        assert not v.verify_consistency(size, size, roots[size], roots[size - 1], [])


# --- Exports written by hand, following docs/audit-chain.md (format 2) ------------------------------------------

ORG = 7


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(key):
    return hashlib.sha256(key.public_key().public_bytes(serialization.Encoding.Raw,
                                                        serialization.PublicFormat.Raw)).hexdigest()


def public_keys(*keys):
    return [{"fingerprint": fingerprint(key), "algorithm": "Ed25519",
             "public_key_pem": key.public_key().public_bytes(
                 serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()}
            for key in keys]


def signed(key, statement):
    body = canonical(statement)
    return {"body": body, "signature": base64.b64encode(key.sign(body.encode())).decode()}


class Log:
    """An organization's log as the spec lays it out: chained events, flows, signed heads."""

    def __init__(self, key):
        self.key, self.events, self.flows, self.digests, self.leaves = key, [], [], [], []
        self.head = (0, "0" * 64)

    def event(self, kind, payload):
        seq, prev_hash = self.head[0] + 1, self.head[1]
        body = canonical({"actor": {"id": None, "kind": "system", "name": "system"}, "kind": kind,
                          "occurred_at": "2026-11-25T14:14:28.105013Z", "organization": ORG, "payload": payload,
                          "recorded_at": "2026-11-25T14:14:28.440372Z", "seq": seq, "subject_account": None})
        self.head = (seq, hashlib.sha256((prev_hash + body).encode()).hexdigest())
        self.events.append({"seq": seq, "prev_hash": prev_hash, "hash": self.head[1], "body": body,
                            "leaf_index": len(self.leaves)})
        self.leaves.append(v.leaf_hash(body.encode()))

    def batch(self, batch_id, count):
        first = len(self.leaves)
        for n in range(count):
            verdict = "violation" if n % 2 else "permitted"
            entry = "\t".join(["flow/1", str(ORG), str(batch_id), f"f-{batch_id}-{n}", "2026-11-25T14:00:00.000000Z",
                               "health", "ads", "crm.example", str(10 * n), "3,4", verdict,
                               canonical(["zoë"] if n % 2 else []), "2", canonical({"rule": n})])
            self.flows.append({"leaf_index": len(self.leaves), "entry": entry})
            self.leaves.append(v.leaf_hash(entry.encode()))
        self.event("flow.batch", {"batch": batch_id, "first_leaf": first, "leaf_count": count,
                                  "leaves_root": v.mth(self.leaves[first:]).hex(),
                                  "counts": {"permitted": count - count // 2, "violation": count // 2, "duplicate": 0}})

    def digest(self, version=2):
        last = json.loads(self.digests[-1]["body"]) if self.digests else None
        statement = {"organization": ORG, "organization_slug": "acme", "period_start": None,
                     "period_end": "2026-11-25T15:00:00.000000Z", "first_seq": None, "last_seq": self.head[0],
                     "event_count": self.head[0] - (last["last_seq"] if last else 0), "head_hash": self.head[1],
                     "algorithm": "Ed25519", "key_fingerprint": fingerprint(self.key),
                     "previous_signature": self.digests[-1]["signature"] if self.digests else ""}
        if version == 2:
            statement.update(version=2, tree_size=len(self.leaves), root_hash=v.mth(self.leaves).hex(),
                             previous_head_hash=hashlib.sha256(self.digests[-1]["body"].encode()).hexdigest()
                             if self.digests else "")
        self.digests.append(signed(self.key, statement))

    def write(self, directory, format=2):
        directory.mkdir(exist_ok=True)
        events = self.events if format == 2 else [{k: e[k] for k in ("seq", "prev_hash", "hash", "body")}
                                                  for e in self.events]
        write_lines(directory / "events.jsonl", events)
        write_lines(directory / "digests.jsonl", self.digests)
        (directory / "public_keys.json").write_text(json.dumps(public_keys(self.key)))
        if format == 2:
            write_lines(directory / "flows.jsonl", self.flows)
            (directory / "manifest.json").write_text(json.dumps({
                "format": 2, "organization": ORG, "tree_size": len(self.leaves), "event_count": len(self.events),
                "flow_count": len(self.flows)}))
        return directory


def write_lines(path, rows):
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def read_lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


KEY = Ed25519PrivateKey.generate()


def sample_log():
    """Leaves 0-2 events; digest 1 (format 1); 3-4 events, 5-7 flows of batch 9, 8 its event; digest 2;
    9 an event, 10-11 flows of batch 10, 12 its event; digest 3; 13 an event no digest covers yet."""
    log = Log(KEY)
    for n in range(3):
        log.event("policy.changed", {"n": n})
    log.digest(version=1)
    log.event("consent.granted", {"n": 3})
    log.event("account.changed", {"name": "Zoë"})
    log.batch(9, 3)
    log.digest()
    log.event("policy.changed", {"n": 5})
    log.batch(10, 2)
    log.digest()
    log.event("policy.changed", {"n": 7})
    return log


@pytest.fixture
def export(tmp_path):
    return sample_log().write(tmp_path / "export")


def problem(directory, trusted=None):
    with pytest.raises(v.Invalid) as invalid:
        v.verify_export(directory, trusted)
    return str(invalid.value)


def rewrite_chain(directory, seq, change):
    """Change event `seq`'s body and recompute every link after it, as someone rewriting the export would."""
    events = read_lines(directory / "events.jsonl")
    for event in events[seq - 1:]:
        if event["seq"] == seq:
            event["body"] = canonical(change(json.loads(event["body"])))
        event["prev_hash"] = events[event["seq"] - 2]["hash"] if event["seq"] > 1 else "0" * 64
        event["hash"] = hashlib.sha256((event["prev_hash"] + event["body"]).encode()).hexdigest()
    write_lines(directory / "events.jsonl", events)


def resign(directory, key, change=lambda statement: None, start=0):
    """Re-sign the digests from `start` on (changed by `change`), keeping them chained, as a key holder could."""
    digests = read_lines(directory / "digests.jsonl")
    for i in range(start, len(digests)):
        statement = json.loads(digests[i]["body"])
        change(statement) if i == start else None
        statement["key_fingerprint"] = fingerprint(key)
        statement["previous_signature"] = digests[i - 1]["signature"] if i else ""
        if "version" in statement:
            statement["previous_head_hash"] = hashlib.sha256(digests[i - 1]["body"].encode()).hexdigest() if i else ""
        digests[i] = signed(key, statement)
    write_lines(directory / "digests.jsonl", digests)


def test_a_valid_export_verifies(export):
    root = v.mth(sample_log().leaves).hex()
    assert v.verify_export(export) == f"valid: 14 leaves (9 events, 5 flows), 3 digests, tree root {root} at size 14"
    assert v.verify_export(export, {fingerprint(KEY)}).startswith("valid: 14 leaves")


def test_a_changed_flow_entry_is_found_at_its_batch(export):
    flows = read_lines(export / "flows.jsonl")
    flows[1]["entry"] = flows[1]["entry"].replace("violation", "permitted")
    write_lines(export / "flows.jsonl", flows)
    assert problem(export) == ("event seq 6 (leaf 8): the flow.batch payload's leaves_root differs from the tree "
                               "of batch 9's flows, leaves 5..7")


@pytest.mark.parametrize("change,expected", [
    (lambda e: e.replace("\thealth\t", "\thealth\tx\t"), "leaf 6 (flows.jsonl line 2): not a flow/1 entry of 14"),
    (lambda e: e.replace("flow/1\t7\t", "flow/1\t8\t"), "leaf 6 (flows.jsonl line 2): of organization 8, not 7"),
    (lambda e: e.replace("violation", "refused"), "leaf 6 (flows.jsonl line 2): malformed verdict"),
    (lambda e: e.replace(".000000Z", "Z"), "leaf 6 (flows.jsonl line 2): malformed occurred_at"),
])
def test_a_malformed_flow_entry_is_named(export, change, expected):
    flows = read_lines(export / "flows.jsonl")
    flows[1]["entry"] = change(flows[1]["entry"])
    write_lines(export / "flows.jsonl", flows)
    assert problem(export).startswith(expected)


def test_a_changed_event_body_is_found(export):
    events = read_lines(export / "events.jsonl")
    events[3]["body"] = events[3]["body"].replace('"n":3', '"n":4')
    write_lines(export / "events.jsonl", events)
    assert problem(export) == "event seq 4 (leaf 3): hash does not match"


def test_a_rewritten_chain_is_caught_by_the_signed_heads(export):
    rewrite_chain(export, 2, lambda body: {**body, "payload": {"n": 99}})
    assert problem(export) == "event seq 3 (leaf 2): differs from the head hash digest 1 states"


def test_a_missing_or_duplicated_leaf_is_named(export):
    flows = read_lines(export / "flows.jsonl")
    write_lines(export / "flows.jsonl", flows[:1] + flows[2:])
    assert problem(export) == "leaf 6 is missing"
    write_lines(export / "flows.jsonl", flows[:2] + flows[1:])
    assert problem(export) == "leaf 6 (flows.jsonl line 3) appears more than once or out of leaf order"
    flows[0]["leaf_index"] = 4
    write_lines(export / "flows.jsonl", flows)
    assert problem(export) == "leaf 4 appears twice: event seq 5 and flows.jsonl line 1"


def test_a_changed_leaves_root_is_named_even_with_the_chain_rewritten(export):
    rewrite_chain(export, 6, lambda body: {**body, "payload": {**body["payload"], "leaves_root": "ab" * 32}})
    assert problem(export) == ("event seq 6 (leaf 8): the flow.batch payload's leaves_root differs from the tree "
                               "of batch 9's flows, leaves 5..7")


def test_a_batch_event_must_name_the_flows_before_it(export):
    rewrite_chain(export, 6, lambda body: {**body, "payload": {**body["payload"], "first_leaf": 6, "leaf_count": 2}})
    assert problem(export) == ("event seq 6 (leaf 8): the flow.batch payload names leaves 6..7 of batch 9, "
                               "but the flows before it are leaves 5..7 of batch 9")


def test_a_changed_root_hash_is_named_even_when_re_signed(export):
    resign(export, KEY, lambda statement: statement.update(root_hash="cd" * 32), start=2)
    assert problem(export) == "digest 3: root_hash differs from the tree of the first 13 leaves"
    resign(export, KEY, lambda statement: statement.update(tree_size=12), start=2)
    assert problem(export) == "digest 3: root_hash differs from the tree of the first 12 leaves"
    resign(export, KEY, lambda statement: statement.update(root_hash="cd" * 32), start=1)  # and all after it
    assert problem(export) == "digest 2: root_hash differs from the tree of the first 9 leaves"
    resign(export, KEY, lambda statement: statement.update(tree_size=5), start=2)
    assert problem(export) == "digest 3: tree_size 5 is smaller than the previous 9"


def test_a_removed_digest_breaks_the_digest_chain(export):
    digests = read_lines(export / "digests.jsonl")
    write_lines(export / "digests.jsonl", digests[:1] + digests[2:])
    assert problem(export) == "digest 2: does not link to the previous digest's signature (one is missing or altered)"
    statement = json.loads(digests[2]["body"])  # the signature's link kept, the head's link broken
    statement["previous_signature"] = digests[0]["signature"]
    write_lines(export / "digests.jsonl", [digests[0], signed(KEY, statement)])
    assert problem(export) == ("digest 2: previous_head_hash does not name the previous digest "
                               "(one is missing or altered)")


def test_digests_signed_by_another_key_are_refused_under_a_trusted_key(export):
    other = Ed25519PrivateKey.generate()
    resign(export, other)
    (export / "public_keys.json").write_text(json.dumps(public_keys(other)))
    assert v.verify_export(export).startswith("valid:")  # the export's own keys vouch for themselves
    assert problem(export, {fingerprint(KEY)}) == (f"digest 1: signed by key {fingerprint(other)[:12]}, "
                                                   "which is not one of the accepted keys")


def test_a_mislabelled_key_and_a_wrong_manifest_are_named(export):
    manifest = json.loads((export / "manifest.json").read_text())
    (export / "manifest.json").write_text(json.dumps({**manifest, "flow_count": 4}))
    assert problem(export) == "manifest.json: flow_count is 4, the export holds 5"
    keys = public_keys(KEY)
    keys[0]["fingerprint"] = fingerprint(Ed25519PrivateKey.generate())
    (export / "public_keys.json").write_text(json.dumps(keys))
    assert "is mislabelled: its public key's fingerprint is " + fingerprint(KEY)[:12] in problem(export)


def test_a_format_1_export_still_verifies(tmp_path):
    log = Log(KEY)
    for n in range(4):
        log.event("policy.changed", {"n": n})
        log.digest(version=1)
    log.event("policy.changed", {"n": 9})
    directory = log.write(tmp_path / "v1", format=1)
    assert v.verify_export(directory, {fingerprint(KEY)}) == (
        f"valid: 5 events (format 1), 4 digests, head seq 5 {log.head[1]}")
    rewrite_chain(directory, 2, lambda body: {**body, "payload": {}})
    assert problem(directory) == "event seq 2: differs from the head hash digest 2 states"


# --- The command line ----------------------------------------------------------------------------------------

def run(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], check=False, capture_output=True, text=True,
                          timeout=60)


def test_the_command_line_exit_codes(export, tmp_path):
    valid = run("export", export)
    assert valid.returncode == 0 and valid.stdout.startswith("valid: 14 leaves (9 events, 5 flows), 3 digests")
    assert "--trusted-key" in valid.stderr and "proves nothing" in valid.stderr
    trusted = run("export", export, "--trusted-key", fingerprint(KEY).upper())
    assert trusted.returncode == 0 and trusted.stderr == ""

    events = read_lines(export / "events.jsonl")
    events[0]["body"] = events[0]["body"].replace("system", "sytsem")
    write_lines(export / "events.jsonl", events)
    invalid = run("export", export)
    assert (invalid.returncode, invalid.stdout) == (1, "INVALID: event seq 1 (leaf 0): hash does not match\n")

    (export / "digests.jsonl").write_text("{not json\n")
    for args in (("export", export), ("export", tmp_path / "nowhere"), ("inclusion", export / "manifest.json",
                                                                        "--public-key", export / "missing.pem")):
        unreadable = run(*args)
        assert unreadable.returncode == 2 and unreadable.stdout == ""
        assert "\nerror: cannot read" in "\n" + unreadable.stderr and "Traceback" not in unreadable.stderr


def test_inclusion_and_consistency_proof_files(tmp_path):
    log = sample_log()
    other = Ed25519PrivateKey.generate()
    pem = tmp_path / "key.pem"
    pem.write_text(public_keys(KEY)[0]["public_key_pem"])
    (tmp_path / "other.pem").write_text(public_keys(other)[0]["public_key_pem"])
    head2, head3 = log.digests[1], log.digests[2]
    size2, size3 = json.loads(head2["body"])["tree_size"], json.loads(head3["body"])["tree_size"]
    flow = log.flows[3]  # leaf 10
    inclusion = {"format": "inclusion/1", "organization": ORG, "leaf_index": flow["leaf_index"], "tree_size": size3,
                 "entry": flow["entry"], "tree_head": head3, "flow": {"flow_id": "f-10-0"},
                 "audit_path": [h.hex() for h in v.inclusion_proof(flow["leaf_index"], log.leaves[:size3])]}
    consistency = {"format": "consistency/1", "organization": ORG, "first": head2, "second": head3,
                   "proof": [h.hex() for h in v.consistency_proof(size2, log.leaves[:size3])]}
    for name, proof in (("inclusion", inclusion), ("consistency", consistency)):
        (tmp_path / f"{name}.json").write_text(json.dumps(proof))
        ok = run(name, tmp_path / f"{name}.json", "--public-key", tmp_path / "other.pem", "--public-key", pem)
        assert ok.returncode == 0 and ok.stdout.startswith("valid: ")
        refused = run(name, tmp_path / f"{name}.json", "--public-key", tmp_path / "other.pem")
        assert refused.returncode == 1 and "which is not one of the accepted keys" in refused.stdout

    def invalid(name, proof):
        (tmp_path / "p.json").write_text(json.dumps(proof))
        result = run(name, tmp_path / "p.json", "--public-key", pem)
        assert result.returncode == 1 and result.stdout.count("\n") == 1
        return result.stdout

    assert "audit path does not lead" in invalid("inclusion", {**inclusion, "entry": flow["entry"] + "x"})
    assert "audit path does not lead" in invalid("inclusion", {**inclusion, "leaf_index": 11})
    assert "the proof's tree_size 12 is not the tree head's 13" in invalid("inclusion", {**inclusion, "tree_size": 12})
    assert run("inclusion", tmp_path / "inclusion.json", "--public-key", tmp_path / "inclusion.json").returncode == 2
    assert "does not extend" in invalid("consistency", {**consistency, "proof": consistency["proof"][:-1]})
    assert "larger than the second" in invalid("consistency", {**consistency, "first": head3, "second": head2})
    forged = {**head3, "body": head3["body"].replace('"tree_size":13', '"tree_size":12')}
    assert "the signature does not verify" in invalid("consistency", {**consistency, "second": forged})
