"""Checks an auditor runs: digests against their keys, and an exported chain without the database."""
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from . import signing
from .chain import Verification, verify_links

EVENTS_FILE, DIGESTS_FILE, KEYS_FILE = "events.jsonl", "digests.jsonl", "public_keys.json"


def verify_digests(digests: Iterable[tuple[str, str]], keys: Mapping[str, str]) -> tuple[str, dict[int, str]]:
    """Check each digest's signature and its link to the previous one.

    `digests` are (signed body, signature) in order; `keys` maps fingerprints to public PEMs.
    Returns ("", anchors) when all hold, anchors mapping each digest's last_seq to its head hash;
    otherwise a description of the first problem.
    """
    anchors, previous_signature = {}, ""
    for index, (body, signature) in enumerate(digests, start=1):
        statement = json.loads(body)
        pem = keys.get(statement["key_fingerprint"])
        if pem is None:
            return f"digest {index}: signed by an unknown key {statement['key_fingerprint'][:12]}", anchors
        if not signing.verify_signature(pem, body, signature):
            return f"digest {index}: the signature does not verify", anchors
        if statement["previous_signature"] != previous_signature:
            return f"digest {index}: does not link to the previous digest (one is missing or altered)", anchors
        if statement["last_seq"] > 0:
            anchors[statement["last_seq"]] = statement["head_hash"]
        previous_signature = signature
    return "", anchors


def _read_jsonl(path: Path):
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def verify_export(directory: Path) -> Verification:
    """Verify an export written by `export_audit`: the chain, the digests and their signatures."""
    directory = Path(directory)
    try:
        keys = {key["fingerprint"]: key["public_key_pem"]
                for key in json.loads((directory / KEYS_FILE).read_text(encoding="utf-8"))}
        digests = [(d["body"], d["signature"]) for d in _read_jsonl(directory / DIGESTS_FILE)]
        problem, anchors = verify_digests(digests, keys)
        if problem:
            return Verification().fail(None, problem)
        organization_id = json.loads(digests[0][0])["organization"] if digests else None
        rows = ((e["seq"], e["prev_hash"], e["hash"], e["body"]) for e in _read_jsonl(directory / EVENTS_FILE))
        return verify_links(rows, organization_id=organization_id, anchors=anchors)
    except (OSError, ValueError, KeyError, TypeError) as error:
        return Verification().fail(None, f"unreadable export: {error}")
