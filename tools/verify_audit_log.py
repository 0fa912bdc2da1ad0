#!/usr/bin/env python3
"""Verify an organization's audit log offline, without the console's code (docs/audit-chain.md, format 2 spec).

An independent implementation: Python's standard library and `cryptography` only.

    verify_audit_log.py export DIR [--trusted-key FINGERPRINT ...]
    verify_audit_log.py inclusion PROOF.json --public-key KEY.pem [--public-key KEY.pem ...]
    verify_audit_log.py consistency PROOF.json --public-key KEY.pem [--public-key KEY.pem ...]

Exit status: 0 valid, 1 invalid (one line naming the first problem), 2 unreadable input.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64
HEX64 = re.compile(r"[0-9a-f]{64}")
DECIMAL = re.compile(r"-?[0-9]+")
INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Invalid(Exception):
    """The log is not what it claims: the message names the first problem."""


class Unreadable(Exception):
    """The input cannot be read or parsed at all."""


# --- RFC 9162 §2.1.1: the Merkle Tree Hash -----------------------------------------------------------------

def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry): the hash of one leaf."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class CompactRange:
    """The perfect subtrees covering leaves 0..n-1, largest first: O(log n) hashes for any n."""

    def __init__(self):
        self.size, self.peaks = 0, []  # peaks: (leaf count, hash), counts decreasing powers of two

    def append(self, leaf: bytes) -> None:
        """Add a leaf hash, merging equal-sized subtrees as a binary counter carries."""
        count, value = 1, leaf
        while self.peaks and self.peaks[-1][0] == count:
            left_count, left = self.peaks.pop()
            count, value = count + left_count, node_hash(left, value)
        self.peaks.append((count, value))
        self.size += 1

    def root(self) -> bytes:
        """MTH of the leaves so far: folding the peaks from the right is the split at the largest power of two."""
        if not self.peaks:
            return hashlib.sha256(b"").digest()
        value = self.peaks[-1][1]
        for _, left in reversed(self.peaks[:-1]):
            value = node_hash(left, value)
        return value


def mth(leaf_hashes) -> bytes:
    """MTH(D[n]) (§2.1.1) of a sequence of leaf hashes (not entries); SHA-256("") when empty."""
    tree = CompactRange()
    for leaf in leaf_hashes:
        tree.append(leaf)
    return tree.root()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof(index: int, leaf_hashes: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of §2.1.3.1: the audit path of leaf `index` (for tests; recursive, not for big trees)."""
    n = len(leaf_hashes)
    if n <= 1:
        return []
    k = _split(n)
    if index < k:
        return inclusion_proof(index, leaf_hashes[:k]) + [mth(leaf_hashes[k:])]
    return inclusion_proof(index - k, leaf_hashes[k:]) + [mth(leaf_hashes[:k])]


def consistency_proof(first: int, leaf_hashes: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of §2.1.4.1 for m = `first` (for tests); empty when m is 0 or n."""
    def subproof(m, leaves, complete):
        n = len(leaves)
        if m == n:
            return [] if complete else [mth(leaves)]
        k = _split(n)
        if m <= k:
            return subproof(m, leaves[:k], complete) + [mth(leaves[k:])]
        return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]
    return subproof(first, leaf_hashes, True) if 0 < first < len(leaf_hashes) else []


def verify_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    """§2.1.3.2: does the audit path lead from leaf `index`'s hash to the root of a tree of `size` leaves?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: list[bytes]) -> bool:
    """§2.1.4.2: is the tree of `second` leaves an append-only extension of the tree of `first` leaves?"""
    if not 0 <= first <= second:
        return False
    if first == 0:  # the empty tree is a prefix of every tree
        return not proof
    if first == second:
        return not proof and first_root == second_root
    if not proof:
        return False
    path = ([first_root] if first & (first - 1) == 0 else []) + list(proof)  # first a power of two: prepend
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == second_root and sn == 0


# --- Keys and signed heads ---------------------------------------------------------------------------------

def fingerprint(key: Ed25519PublicKey) -> str:
    """Hex SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).hexdigest()


def load_key(pem: str, where: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError, AttributeError):
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise Invalid(f"{where}: not an Ed25519 public key in PEM form")
    return key


def signed_statement(head, keys: dict, where: str) -> dict:
    """The parsed body of a {"body", "signature"} head whose signature verifies under one of `keys`."""
    if not (isinstance(head, dict) and isinstance(head.get("body"), str) and isinstance(head.get("signature"), str)):
        raise Invalid(f"{where}: not a {{body, signature}} object")
    try:
        statement = json.loads(head["body"])
    except ValueError:
        statement = None
    if not isinstance(statement, dict):
        raise Invalid(f"{where}: the body is not a JSON object")
    fp = statement.get("key_fingerprint")
    if fp not in keys:
        raise Invalid(f"{where}: signed by key {str(fp)[:12]}, which is not one of the accepted keys")
    try:
        keys[fp].verify(base64.b64decode(head["signature"], validate=True), head["body"].encode())
    except (InvalidSignature, binascii.Error, ValueError):
        raise Invalid(f"{where}: the signature does not verify") from None
    return statement


def member(obj: dict, name: str, kind, where: str):
    """obj[name], which must be of type `kind` (an int is never a bool)."""
    value = obj.get(name) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Invalid(f"{where}: missing or malformed {name!r}")
    return value


def hex_hash(value, where: str) -> bytes:
    if not isinstance(value, str) or not HEX64.fullmatch(value):
        raise Invalid(f"{where}: not a lowercase hex SHA-256")
    return bytes.fromhex(value)


def tree_head(statement: dict, where: str) -> tuple[int, bytes]:
    """(tree_size, root_hash) of a format-2 statement."""
    if statement.get("version") != 2:
        raise Invalid(f"{where}: not a format-2 tree head")
    size = member(statement, "tree_size", int, where)
    if size < 0:
        raise Invalid(f"{where}: negative tree_size")
    return size, hex_hash(statement.get("root_hash"), f"{where}: root_hash")


# --- The export ---------------------------------------------------------------------------------------------

def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise Unreadable(f"cannot read {path}: {error}") from None


def json_lines(path: Path):
    """(line number, object) for each non-blank line, read one at a time."""
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    try:
                        yield number, json.loads(line)
                    except ValueError as error:
                        raise Unreadable(f"cannot read {path} line {number}: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise Unreadable(f"cannot read {path}: {error}") from None


def export_keys(directory: Path, trusted: set[str] | None) -> dict:
    """The export's public keys by fingerprint, each checked against its own key, limited to `trusted` if given."""
    entries = read_json(directory / "public_keys.json")
    if not isinstance(entries, list):
        raise Invalid("public_keys.json: not a list of keys")
    keys = {}
    for entry in entries:
        label = str(entry.get("fingerprint") if isinstance(entry, dict) else entry)
        key = load_key(entry.get("public_key_pem") if isinstance(entry, dict) else None, f"key {label[:12]}")
        if fingerprint(key) != label:
            raise Invalid(f"key {label[:12]} is mislabelled: its public key's fingerprint is {fingerprint(key)[:12]}")
        if trusted is None or label in trusted:
            keys[label] = key
    return keys


def check_digests(directory: Path, keys: dict, trusted: set[str] | None) -> list[dict]:
    """Digests in order: signed, chained to the previous one, one organization, tree sizes never decreasing."""
    digests, previous, tree_size, version = [], None, 0, 1
    for _, line in json_lines(directory / "digests.jsonl"):
        where = f"digest {len(digests) + 1}"
        statement = signed_statement(line, keys, where)
        expected = previous["signature"] if previous else ""
        if statement.get("previous_signature") != expected:
            raise Invalid(f"{where}: does not link to the previous digest's signature (one is missing or altered)")
        head_hash = hex_hash(statement.get("head_hash"), f"{where}: head_hash").hex()
        digest = {"number": len(digests) + 1, "organization": member(statement, "organization", int, where),
                  "last_seq": member(statement, "last_seq", int, where), "head_hash": head_hash, "tree_size": None}
        if digests and digest["organization"] != digests[0]["organization"]:
            raise Invalid(f"{where}: of organization {digest['organization']}, not {digests[0]['organization']}")
        if "version" in statement:  # format 2 (§ signed tree heads); format 1 digests may only come first
            digest["tree_size"], digest["root_hash"] = tree_head(statement, where)
            expected = hashlib.sha256(previous["body"].encode()).hexdigest() if previous else ""
            if statement.get("previous_head_hash") != expected:
                raise Invalid(f"{where}: previous_head_hash does not name the previous digest "
                              "(one is missing or altered)")
            if digest["tree_size"] < tree_size:
                raise Invalid(f"{where}: tree_size {digest['tree_size']} is smaller than the previous {tree_size}")
            tree_size, version = digest["tree_size"], 2
        elif version == 2:
            raise Invalid(f"{where}: a format-1 digest after format-2 ones")
        digests.append(digest)
        previous = line
    if trusted is not None and not digests:
        raise Invalid("no digest: nothing is signed by a trusted key")
    return digests


def parse_flow(entry: str, organization: int, where: str) -> tuple[str, str]:
    """(batch id, flow_id) of a well-formed flow entry: 14 TAB-separated fields of `flow/1`."""
    fields = entry.split("\t")
    if len(fields) != 14 or fields[0] != "flow/1":
        raise Invalid(f"{where}: not a flow/1 entry of 14 TAB-separated fields")
    _, org, batch, flow_id, occurred_at, category, purpose, destination, volume, accounts, verdict, \
        blocking, policy_version, reasons = fields
    if org != str(organization):
        raise Invalid(f"{where}: of organization {org}, not {organization}")
    checks = [(DECIMAL.fullmatch(batch), "batch id"), (INSTANT.fullmatch(occurred_at), "occurred_at"),
              (DECIMAL.fullmatch(volume), "volume"), (DECIMAL.fullmatch(policy_version), "policy_version"),
              (not accounts or all(DECIMAL.fullmatch(a) for a in accounts.split(",")), "account ids"),
              (verdict in ("permitted", "violation"), "verdict"),
              (flow_id and not CONTROL.search(flow_id + category + purpose + destination), "text fields")]
    for ok, name in checks:
        if not ok:
            raise Invalid(f"{where}: malformed {name}")
    for text, name in ((blocking, "blocking accounts"), (reasons, "reasons")):
        try:
            value = json.loads(text)
        except ValueError:
            raise Invalid(f"{where}: {name} is not JSON") from None
        if name == "blocking accounts" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise Invalid(f"{where}: blocking accounts is not a list of names")
    return batch, flow_id


def verify_export(directory: Path, trusted: set[str] | None = None) -> str:
    """Verify an export directory; the summary line when valid, Invalid or Unreadable otherwise."""
    directory = Path(directory)
    if not directory.is_dir():
        raise Unreadable(f"cannot read {directory}: not a directory")
    keys = export_keys(directory, trusted)
    digests = check_digests(directory, keys, trusted)
    manifest = read_json(directory / "manifest.json") if (directory / "manifest.json").exists() else None
    tree = manifest is not None
    organization = digests[0]["organization"] if digests else None
    if tree:
        if not isinstance(manifest, dict) or manifest.get("format") != 2:
            raise Invalid("manifest.json: not a format-2 manifest")
        if organization not in (None, member(manifest, "organization", int, "manifest.json")):
            raise Invalid(f"manifest.json: organization {manifest['organization']}, the digests' is {organization}")
        organization = member(manifest, "organization", int, "manifest.json")
    elif any(d["tree_size"] is not None for d in digests):
        raise Invalid("a format-2 digest in an export without manifest.json")
    anchors = {}  # last_seq -> the first digest stating a head hash for it (format 1 "What a digest anchors")
    for digest in digests:
        anchor = anchors.setdefault(digest["last_seq"], digest) if digest["last_seq"] > 0 else digest
        if anchor["head_hash"] != digest["head_hash"]:
            raise Invalid(f"digest {digest['number']}: states another head hash for seq {digest['last_seq']} "
                          f"than digest {anchor['number']}")
    heads = iter([d for d in digests if d["tree_size"] is not None])  # in tree order (checked non-decreasing)
    head = next(heads, None)

    events = json_lines(directory / "events.jsonl")
    flows = json_lines(directory / "flows.jsonl") if tree and (directory / "flows.jsonl").exists() else iter(())
    event, flow = next(events, None), next(flows, None)
    tree_range, batch = CompactRange(), None  # batch: the run of flows awaiting its flow.batch event
    seq, prev_hash, event_count, flow_count = 0, GENESIS, 0, 0

    def leaf_of(item, name):
        return member(item[1], "leaf_index", int, f"{name} line {item[0]}") if item else float("inf")

    while True:
        # The tree's first `size` leaves are complete: check every signed head of that size (§2.1.1).
        while head is not None and head["tree_size"] == tree_range.size:
            if tree_range.root() != head["root_hash"]:
                raise Invalid(f"digest {head['number']}: root_hash differs from the tree of the first "
                              f"{tree_range.size} leaves")
            if head["last_seq"] != seq:
                raise Invalid(f"digest {head['number']}: its tree of {tree_range.size} leaves ends at event seq "
                              f"{seq}, but it states last_seq {head['last_seq']}")
            head = next(heads, None)
        if event is None and flow is None:
            break
        index = tree_range.size
        if tree:  # merge events and flows by leaf_index: each of 0, 1, 2, ... exactly once
            e_leaf, f_leaf = leaf_of(event, "events.jsonl"), leaf_of(flow, "flows.jsonl")
            if e_leaf == f_leaf:
                raise Invalid(f"leaf {e_leaf} appears twice: event seq {seq + 1} and flows.jsonl line {flow[0]}")
            if min(e_leaf, f_leaf) > index:
                raise Invalid(f"leaf {index} is missing")
            if min(e_leaf, f_leaf) < index:
                where = f"event seq {seq + 1}" if e_leaf < f_leaf else f"flows.jsonl line {flow[0]}"
                raise Invalid(f"leaf {min(e_leaf, f_leaf)} ({where}) appears more than once or out of leaf order")

        if flow is not None and f_leaf == index:
            where = f"leaf {index} (flows.jsonl line {flow[0]})"
            entry = member(flow[1], "entry", str, where)
            batch_id, flow_id = parse_flow(entry, organization, where)
            where = f"leaf {index} (flow {flow_id} of batch {batch_id})"
            if batch is not None and batch["id"] != batch_id:
                raise Invalid(f"{where}: the flows of batch {batch['id']} before it are not followed by their "
                              "flow.batch event")
            batch = batch or {"id": batch_id, "first": index, "range": CompactRange()}
            leaf = leaf_hash(entry.encode())
            batch["range"].append(leaf)
            tree_range.append(leaf)
            flow_count += 1
            flow = next(flows, None)
            continue

        # An event: its link in the chain (format 1), then its leaf.
        seq += 1
        where = f"event seq {seq}"
        record = event[1]
        if not isinstance(record, dict) or record.get("seq") != seq:
            raise Invalid(f"{where}: missing (found {record.get('seq') if isinstance(record, dict) else record})")
        if tree:
            where = f"{where} (leaf {index})"
        body = member(record, "body", str, where)
        if record.get("prev_hash") != prev_hash:
            raise Invalid(f"{where}: prev_hash does not name the previous event's hash")
        if hashlib.sha256((prev_hash + body).encode()).hexdigest() != record.get("hash"):
            raise Invalid(f"{where}: hash does not match")
        try:
            content = json.loads(body)
        except ValueError:
            content = None
        if not isinstance(content, dict) or content.get("seq") != seq or \
                (organization is not None and content.get("organization") != organization):
            raise Invalid(f"{where}: the body's seq or organization differs from its position")
        if tree:
            check_batch(content, batch, index, where)
            batch = None
            tree_range.append(leaf_hash(body.encode()))
        if seq in anchors and anchors[seq]["head_hash"] != record["hash"]:
            raise Invalid(f"{where}: differs from the head hash digest {anchors[seq]['number']} states")
        prev_hash = record["hash"]
        event_count += 1
        event = next(events, None)

    beyond = [s for s in anchors if s > seq]
    if beyond:
        raise Invalid(f"digest {anchors[max(beyond)]['number']} covers up to seq {max(beyond)}, "
                      f"but the export ends at seq {seq}")
    if head is not None:
        raise Invalid(f"digest {head['number']}: signs a tree of {head['tree_size']} leaves, "
                      f"but the export has {tree_range.size}")
    if not tree:
        return f"valid: {event_count} events (format 1), {len(digests)} digests, head seq {seq} {prev_hash}"
    if batch is not None:
        raise Invalid(f"leaf {tree_range.size - 1}: the flows of batch {batch['id']} are not followed by their "
                      "flow.batch event")
    for name, counted in (("tree_size", tree_range.size), ("event_count", event_count), ("flow_count", flow_count)):
        if manifest.get(name) != counted:
            raise Invalid(f"manifest.json: {name} is {manifest.get(name)}, the export holds {counted}")
    return (f"valid: {tree_range.size} leaves ({event_count} events, {flow_count} flows), {len(digests)} digests, "
            f"tree root {tree_range.root().hex()} at size {tree_range.size}")


def check_batch(content: dict, batch: dict | None, index: int, where: str) -> None:
    """The event at leaf `index` closes the run of flows before it (`batch`) if, and only if, it is their flow.batch."""
    if content.get("kind") != "flow.batch":
        if batch is not None:
            raise Invalid(f"{where}: the flows of batch {batch['id']} before it are not followed by their "
                          "flow.batch event")
        return
    payload, where = content.get("payload"), f"{where}: the flow.batch payload"
    first, count = member(payload, "first_leaf", int, where), member(payload, "leaf_count", int, where)
    batch_id = str(member(payload, "batch", int, where))
    run_first, run_count = (batch["first"], batch["range"].size) if batch else (index, 0)
    if (first, count) != (run_first, run_count) or batch and batch["id"] != batch_id:
        raise Invalid(f"{where} names leaves {first}..{first + count - 1} of batch {batch_id}, but the flows "
                      f"before it are leaves {run_first}..{index - 1}" + (f" of batch {batch['id']}" if batch else ""))
    leaves_root = batch["range"].root() if batch else hashlib.sha256(b"").digest()  # MTH({}) for no flow
    if hex_hash(payload.get("leaves_root"), f"{where}'s leaves_root") != leaves_root:
        raise Invalid(f"{where}'s leaves_root differs from the tree of batch {batch_id}'s flows, "
                      f"leaves {first}..{first + count - 1}")


# --- Proof files --------------------------------------------------------------------------------------------

def given_keys(paths: list[str]) -> dict:
    keys = {}
    for path in paths:
        try:
            pem = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise Unreadable(f"cannot read {path}: {error}") from None
        try:
            key = load_key(pem, path)
        except Invalid as problem:  # the auditor's own key, not the log, is at fault
            raise Unreadable(f"cannot read {problem}") from None
        keys[fingerprint(key)] = key
    return keys


def hashes(values, where: str) -> list[bytes]:
    if not isinstance(values, list):
        raise Invalid(f"{where}: not a list of hashes")
    return [hex_hash(value, f"{where}[{i}]") for i, value in enumerate(values)]


def verify_inclusion_file(path: Path, keys: dict) -> str:
    proof = read_json(Path(path))
    if not isinstance(proof, dict) or proof.get("format") != "inclusion/1":
        raise Invalid(f"{path}: not an inclusion/1 proof")
    statement = signed_statement(proof.get("tree_head"), keys, "tree_head")
    size, root = tree_head(statement, "tree_head")
    index, entry = member(proof, "leaf_index", int, "proof"), member(proof, "entry", str, "proof")
    if statement.get("organization") != proof.get("organization"):
        raise Invalid("the tree head is of another organization than the proof")
    if member(proof, "tree_size", int, "proof") != size:
        raise Invalid(f"the proof's tree_size {proof['tree_size']} is not the tree head's {size}")
    audit_path = hashes(proof.get("audit_path"), "audit_path")
    if not verify_inclusion(index, size, leaf_hash(entry.encode()), audit_path, root):
        raise Invalid(f"leaf {index}: the audit path does not lead to the signed root of the tree of {size} leaves")
    return f"valid: leaf {index} is in the tree of {size} leaves, root {root.hex()}"


def verify_consistency_file(path: Path, keys: dict) -> str:
    proof = read_json(Path(path))
    if not isinstance(proof, dict) or proof.get("format") != "consistency/1":
        raise Invalid(f"{path}: not a consistency/1 proof")
    first, second = (signed_statement(proof.get(name), keys, name) for name in ("first", "second"))
    (size1, root1), (size2, root2) = tree_head(first, "first"), tree_head(second, "second")
    if not first.get("organization") == second.get("organization") == proof.get("organization"):
        raise Invalid("the tree heads are not both of the proof's organization")
    if size1 > size2:
        raise Invalid(f"the first tree ({size1} leaves) is larger than the second ({size2})")
    if not verify_consistency(size1, size2, root1, root2, hashes(proof.get("proof"), "proof")):
        raise Invalid(f"the tree of {size2} leaves does not extend the tree of {size1} leaves")
    return f"valid: the tree of {size2} leaves (root {root2.hex()}) extends the tree of {size1} leaves"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Verify an audit log export or proof, offline.")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="verify an export directory")
    export.add_argument("directory", type=Path)
    export.add_argument("--trusted-key", action="append", metavar="FINGERPRINT",
                        help="a signing key's fingerprint obtained apart from the export (repeatable)")
    for name in ("inclusion", "consistency"):
        command = commands.add_parser(name, help=f"verify a {name}/1 proof file")
        command.add_argument("proof", type=Path)
        command.add_argument("--public-key", action="append", required=True, metavar="KEY.pem")
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            trusted = {k.lower().replace(":", "") for k in args.trusted_key} if args.trusted_key else None
            if trusted is None:
                print("warning: no --trusted-key given: the digests are checked against the export's own "
                      "public_keys.json, which proves nothing about who signed them", file=sys.stderr)
            print(verify_export(args.directory, trusted))
        else:
            check = verify_inclusion_file if args.command == "inclusion" else verify_consistency_file
            print(check(args.proof, given_keys(args.public_key)))
    except Invalid as problem:
        print(f"INVALID: {problem}")
        return 1
    except Unreadable as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - an odd input must still end with a message, not a traceback
        print(f"error: cannot process the input: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
