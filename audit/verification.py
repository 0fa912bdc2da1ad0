"""Checks an auditor runs: digests against their keys, and an exported chain without the database."""
import hashlib
import json
from collections.abc import Collection, Iterable, Iterator, Mapping
from pathlib import Path

from . import merkle, signing
from .chain import Verification, verify_links

EVENTS_FILE, DIGESTS_FILE, KEYS_FILE = "events.jsonl", "digests.jsonl", "public_keys.json"
MANIFEST_FILE, FLOWS_FILE = "manifest.json", "flows.jsonl"  # format 2


def verify_digests(digests: Iterable[tuple[str, str]], keys: Mapping[str, str], *,
                   trusted: Collection[str] | None = None) -> tuple[str, dict[int, str]]:
    """Check the keys, then each digest's signature and its link to the previous one.

    `digests` are (signed body, signature) in order; `keys` maps fingerprints to public PEMs, and
    each fingerprint must be that of its own key. `trusted`, when given, holds the fingerprints
    the caller obtained on its own: a digest signed by any other key is refused, and so is a
    chain without any digest, since nothing in it would then be vouched for.
    Returns ("", anchors) when all hold, anchors mapping each digest's last_seq to its head hash;
    otherwise a description of the first problem.
    """
    anchors, previous_signature, index = {}, "", 0
    problem = mislabelled_key(keys)
    if problem:
        return problem, anchors
    for index, (body, signature) in enumerate(digests, start=1):
        statement = json.loads(body)
        fingerprint = statement["key_fingerprint"]
        if trusted is not None and fingerprint not in trusted:
            return f"digest {index}: signed by key {fingerprint[:12]}, which is not one of the trusted keys", anchors
        pem = keys.get(fingerprint)
        if pem is None:
            return f"digest {index}: signed by an unknown key {fingerprint[:12]}", anchors
        if not signing.verify_signature(pem, body, signature):
            return f"digest {index}: the signature does not verify", anchors
        if statement["previous_signature"] != previous_signature:
            return f"digest {index}: does not link to the previous digest (one is missing or altered)", anchors
        if statement["last_seq"] > 0:
            anchors[statement["last_seq"]] = statement["head_hash"]
        previous_signature = signature
    if trusted is not None and index == 0:
        return "no digest: nothing is signed by a trusted key", anchors
    return "", anchors


def mislabelled_key(keys: Mapping[str, str]) -> str:
    """The first key whose fingerprint is not that of its own public key, described; "" if there is none."""
    for label, pem in keys.items():
        try:
            actual = signing.fingerprint(pem)
        except (ValueError, TypeError, AttributeError):
            return f"key {label[:12]}: not an Ed25519 public key in PEM form"
        if actual != label:
            return f"key {label[:12]} is mislabelled: its public key's fingerprint is {actual[:12]}"
    return ""


def _read_jsonl(path: Path):
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def verify_export(directory: Path, *, trusted_keys: Collection[str] | None = None) -> Verification:
    """Verify an export written by `export_audit`: the chain, the digests and their signatures, and in
    format 2 (a manifest.json) the tree: every leaf once, in order, each signed tree head's root, each
    flow.batch event's leaves_root. Events and flows are read one line at a time.

    The export's own public_keys.json proves nothing by itself (whoever could rewrite the export
    could re-sign it with a key of theirs): give `trusted_keys`, fingerprints obtained separately,
    to refuse digests signed by any other key.
    """
    directory = Path(directory)
    try:
        keys = {key["fingerprint"]: key["public_key_pem"]
                for key in json.loads((directory / KEYS_FILE).read_text(encoding="utf-8"))}
        digests = [(d["body"], d["signature"]) for d in _read_jsonl(directory / DIGESTS_FILE)]
        problem, anchors = verify_digests(digests, keys, trusted=trusted_keys)
        if problem:
            return Verification().fail(None, problem)
        statements = [json.loads(body) for body, _ in digests]
        organization_id = statements[0]["organization"] if statements else None
        events = _read_jsonl(directory / EVENTS_FILE)
        if not (directory / MANIFEST_FILE).exists():
            if any("version" in statement for statement in statements):
                return Verification().fail(None, "a format-2 digest in an export without manifest.json")
            rows = ((e["seq"], e["prev_hash"], e["hash"], e["body"]) for e in events)
            return verify_links(rows, organization_id=organization_id, anchors=anchors)
        manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
        if manifest.get("format") != 2 or organization_id not in (None, manifest.get("organization")):
            return Verification().fail(None, "manifest.json is not a format-2 manifest of the digests' organization")
        tree = None
        try:
            tree = _TreeWalk(digests, statements, _read_jsonl(directory / FLOWS_FILE))
            result = verify_links(tree.events(events), organization_id=manifest["organization"], anchors=anchors)
            if result.valid:
                tree.finish(manifest)
        except _TreeInvalid as invalid:
            checked = tree.event_count - (invalid.seq == tree.seq + 1) if tree else 0
            return Verification(events_checked=max(checked, 0)).fail(invalid.seq, str(invalid))
        return result
    except (OSError, ValueError, KeyError, TypeError) as error:
        return Verification().fail(None, f"unreadable export: {error}")


class _TreeInvalid(Exception):
    def __init__(self, message: str, seq: int | None = None):
        super().__init__(message)
        self.seq = seq


class _TreeWalk:
    """Format 2's tree, rebuilt as the events stream past (docs/audit-chain.md): flows and events merged by
    leaf index, in O(log n) memory; each signed tree head checked when the tree reaches its size."""

    def __init__(self, digests: list[tuple[str, str]], statements: list[dict], flows: Iterator[dict]):
        self.frontier, self.flows = merkle.Frontier(), flows
        self.flow = next(flows, None)
        self.event_count = self.flow_count = 0
        self.batch: list | None = None  # [batch id, first leaf, leaf hashes]
        self.heads, previous_body, size, version = [], "", 0, 1
        for number, ((body, _), statement) in enumerate(zip(digests, statements), start=1):
            if "version" in statement:
                if statement["previous_head_hash"] != (hashlib.sha256(previous_body.encode()).hexdigest()
                                                       if previous_body else ""):
                    raise _TreeInvalid(f"digest {number}: previous_head_hash does not name the previous digest")
                if statement["tree_size"] < size:
                    raise _TreeInvalid(f"digest {number}: its tree_size is smaller than the previous one's")
                size, version = statement["tree_size"], 2
                self.heads.append((number, statement))
            elif version == 2:
                raise _TreeInvalid(f"digest {number}: a format-1 digest after format-2 ones")
            previous_body = body
        self.heads.reverse()  # popped smallest first
        self.seq = 0
        self._check_heads()

    def _append(self, leaf: bytes) -> None:
        self.frontier.append([leaf])  # full tiles are not kept: the root needs only the edge
        self._check_heads()

    def _check_heads(self) -> None:
        """Every signed tree head of the tree's size now: its root, and the event its tree ends at."""
        while self.heads and self.heads[-1][1]["tree_size"] == self.frontier.size:
            number, statement = self.heads.pop()
            if self.frontier.root().hex() != statement["root_hash"]:
                raise _TreeInvalid(f"digest {number}: root_hash differs from the tree of the first "
                                   f"{self.frontier.size} leaves", self.seq or None)
            if statement["last_seq"] != self.seq:
                raise _TreeInvalid(f"digest {number}: its tree of {self.frontier.size} leaves ends at seq "
                                   f"{self.seq}, not at its last_seq {statement['last_seq']}", self.seq or None)

    def _flows_before(self, leaf_index: float) -> None:
        while self.flow is not None and self.flow["leaf_index"] < leaf_index:
            index, entry = self.flow["leaf_index"], self.flow["entry"]
            if index != self.frontier.size:
                raise _TreeInvalid(f"leaf {self.frontier.size} is missing or out of order (flows.jsonl has "
                                   f"leaf {index} next)", self.seq + 1)
            fields = entry.split("\t")
            if len(fields) != 14 or fields[0] != "flow/1":
                raise _TreeInvalid(f"leaf {index}: not a flow/1 entry", self.seq + 1)
            if self.batch is not None and self.batch[0] != fields[2]:
                raise _TreeInvalid(f"leaf {index}: the flows of batch {self.batch[0]} before it are not followed "
                                   "by their flow.batch event", self.seq + 1)
            self.batch = self.batch or [fields[2], index, []]
            leaf = merkle.leaf_hash(entry.encode())
            self.batch[2].append(leaf)
            self._append(leaf)
            self.flow_count += 1
            self.flow = next(self.flows, None)

    def events(self, records: Iterable[dict]):
        """The chain rows verify_links reads, the tree checked leaf by leaf as they go past."""
        for record in records:
            seq, index, body = record["seq"], record["leaf_index"], record["body"]
            self._flows_before(index)
            if index != self.frontier.size:
                raise _TreeInvalid(f"leaf {self.frontier.size} is missing or out of order (event seq {seq} "
                                   f"is leaf {index})", seq)
            self._check_batch(json.loads(body), index, seq)
            self.seq = seq
            self._append(merkle.leaf_hash(body.encode()))
            self.event_count += 1
            yield seq, record["prev_hash"], record["hash"], body

    def _check_batch(self, event: dict, index: int, seq: int) -> None:
        batch, self.batch = self.batch, None
        if event.get("kind") != "flow.batch":
            if batch is not None:
                raise _TreeInvalid(f"the flows of batch {batch[0]} are not followed by their flow.batch event", seq)
            return
        payload = event["payload"]
        first, hashes = (batch[1], batch[2]) if batch else (index, [])
        if (payload["first_leaf"], payload["leaf_count"]) != (first, len(hashes)) or (
                batch and str(payload["batch"]) != batch[0]):
            raise _TreeInvalid(f"the flow.batch event names leaves {payload['first_leaf']}.."
                               f"{payload['first_leaf'] + payload['leaf_count'] - 1}, not the flows before it", seq)
        if payload["leaves_root"] != merkle.root_of(hashes).hex():
            raise _TreeInvalid("the flow.batch event's leaves_root differs from the tree of its flows", seq)

    def finish(self, manifest: dict) -> None:
        self._flows_before(float("inf"))
        if self.batch is not None:
            raise _TreeInvalid(f"the flows of batch {self.batch[0]} are not followed by their flow.batch event")
        if self.heads:
            number, statement = self.heads[-1]
            raise _TreeInvalid(f"digest {number}: signs a tree of {statement['tree_size']} leaves, but the export "
                               f"has {self.frontier.size}")
        counted = {"tree_size": self.frontier.size, "event_count": self.event_count, "flow_count": self.flow_count}
        for name, count in counted.items():
            if manifest.get(name) != count:
                raise _TreeInvalid(f"manifest.json: {name} is {manifest.get(name)}, the export holds {count}")
