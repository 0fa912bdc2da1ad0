"""Reads of the audit trail: events, verification, digests, export."""
import json
from pathlib import Path

from .chain import Verification, verify_links
from .models import AuditDigest, AuditEvent, ChainHead, SigningKey
from .verification import DIGESTS_FILE, EVENTS_FILE, KEYS_FILE, verify_digests

STREAM_CHUNK = 10_000


def events_of(organization):
    return AuditEvent.objects.filter(organization=organization)


def latest_digest(organization) -> AuditDigest | None:
    return AuditDigest.objects.filter(organization=organization).order_by("-period_end", "-id").first()


def public_keys() -> dict[str, str]:
    return dict(SigningKey.objects.values_list("fingerprint", "public_key_pem"))


def verify_chain(organization) -> Verification:
    """Recompute the organization's chain from its first event, against its signed digests and its head."""
    digests = AuditDigest.objects.filter(organization=organization).order_by("period_end", "id")
    problem, anchors = verify_digests(digests.values_list("body", "signature"), public_keys())
    if problem:
        return Verification().fail(None, problem)
    rows = (events_of(organization).order_by("seq")
            .values_list("seq", "prev_hash", "hash", "body", "kind", "occurred_at", "subject_account_id")
            .iterator(chunk_size=STREAM_CHUNK))
    result = verify_links(rows, organization_id=organization.pk, anchors=anchors)
    head = ChainHead.objects.filter(organization=organization).values_list("seq", "hash").first()
    if result.valid and head is not None and head != (result.head_seq, result.head_hash):
        result.fail(result.head_seq + 1, "the chain head names events that are missing")
    return result


def export_chain(organization, directory: Path) -> dict:
    """Write the events (JSON Lines), the digests and the public keys for offline verification."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    with (directory / EVENTS_FILE).open("w", encoding="utf-8") as out:
        rows = (events_of(organization).order_by("seq").values_list("seq", "prev_hash", "hash", "body")
                .iterator(chunk_size=STREAM_CHUNK))
        for seq, prev_hash, digest, body in rows:
            out.write(json.dumps({"seq": seq, "prev_hash": prev_hash, "hash": digest, "body": body},
                                 ensure_ascii=False) + "\n")
            count += 1
    digests = AuditDigest.objects.filter(organization=organization).order_by("period_end", "id")
    with (directory / DIGESTS_FILE).open("w", encoding="utf-8") as out:
        for body, signature in digests.values_list("body", "signature"):
            out.write(json.dumps({"body": body, "signature": signature}, ensure_ascii=False) + "\n")
    keys = [{"fingerprint": fp, "algorithm": algorithm, "public_key_pem": pem}
            for fp, algorithm, pem in SigningKey.objects.values_list("fingerprint", "algorithm", "public_key_pem")]
    (directory / KEYS_FILE).write_text(json.dumps(keys, indent=2), encoding="utf-8")
    return {"events": count, "digests": digests.count(), "keys": len(keys)}
