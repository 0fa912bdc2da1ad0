"""The audit evidence of a period: its events by kind, the signed digest covering its end, its chain verified."""
from datetime import datetime

from accounts.models import Organization
from audit.chain import iso
from audit.models import AuditDigest
from audit.selectors import covering_digest, digest_signature_valid, event_counts_by_kind, verify_segment


def audit_evidence(organization: Organization, start_at: datetime, end_at: datetime, now: datetime) -> dict:
    """The audit events recorded in the period by kind, the signed digest covering the period's end, and
    the chain between the digests around the period, verified."""
    digest = covering_digest(organization, end_at) if end_at <= now else None
    chain = verify_period_chain(organization, start_at, digest)
    described = None
    if digest is not None:
        described = {
            "period_start": iso(digest.period_start) if digest.period_start else None,
            "period_end": iso(digest.period_end), "first_seq": digest.first_seq, "last_seq": digest.last_seq,
            "event_count": digest.event_count, "head_hash": digest.head_hash, "algorithm": digest.algorithm,
            "key_fingerprint": digest.key_fingerprint, "signature": digest.signature, "body": digest.body,
            "signature_valid": digest_signature_valid(digest),
        }
    return {"events_in_period": event_counts_by_kind(organization, since=start_at, until=end_at),
            "digest": described, "chain": chain}


def verify_period_chain(organization: Organization, start_at: datetime, covering: AuditDigest | None) -> dict:
    """The chain from the last digest signed before the period (or the first event) to the digest
    covering its end (or the head, while none does), recomputed link by link with every digest up to it.

    The whole chain, from its first event, is what `verify_audit_chain` and
    `/api/v1/audit-events/verify/` check; a report checks the part that vouches for its period,
    so its cost follows the period and not the organization's whole history.
    """
    segment = verify_segment(organization, since=start_at, until=covering)
    checked = segment.verification
    return {"valid": checked.valid, "problem": checked.problem, "first_invalid_seq": checked.first_invalid_seq,
            "first_seq": segment.first_seq, "last_seq": segment.last_seq, "events_checked": checked.events_checked,
            "digests_checked": segment.digests_checked,
            "from": "the signed digest before the period" if segment.from_digest else "the first event",
            "to": "the signed digest covering the period's end" if covering is not None else "the chain's head"}
