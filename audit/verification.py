"""Checks an auditor runs: digests against their keys, and an exported chain without the database."""
import json
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from . import signing
from .chain import Verification, verify_links

EVENTS_FILE, DIGESTS_FILE, KEYS_FILE = "events.jsonl", "digests.jsonl", "public_keys.json"


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
    """Verify an export written by `export_audit`: the chain, the digests and their signatures.

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
        organization_id = json.loads(digests[0][0])["organization"] if digests else None
        rows = ((e["seq"], e["prev_hash"], e["hash"], e["body"]) for e in _read_jsonl(directory / EVENTS_FILE))
        return verify_links(rows, organization_id=organization_id, anchors=anchors)
    except (OSError, ValueError, KeyError, TypeError) as error:
        return Verification().fail(None, f"unreadable export: {error}")
