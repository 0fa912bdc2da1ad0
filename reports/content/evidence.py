"""The audit evidence of a period: its events by kind, the signed digest covering its end, its chain verified."""
from datetime import datetime

from django.db.models import Count

from accounts.models import Organization
from audit.chain import GENESIS_HASH, iso, verify_links
from audit.models import AuditDigest, ChainHead, SigningKey
from audit.selectors import event_rows, events_of, public_keys
from audit.signing import verify_signature
from audit.verification import verify_digests

from ..selectors import covering_digest


def audit_evidence(organization: Organization, start_at: datetime, end_at: datetime, now: datetime) -> dict:
    """The audit events recorded in the period by kind, the signed digest covering the period's end, and
    the chain between the digests around the period, verified."""
    kinds = (events_of(organization).filter(occurred_at__gte=start_at, occurred_at__lt=end_at)
             .values("kind").annotate(n=Count("id")).order_by("kind"))
    digest = covering_digest(organization, end_at) if end_at <= now else None
    chain = verify_period_chain(organization, start_at, digest)
    described = None
    if digest is not None:
        pem = SigningKey.objects.filter(fingerprint=digest.key_fingerprint).values_list("public_key_pem",
                                                                                        flat=True).first()
        described = {
            "period_start": iso(digest.period_start) if digest.period_start else None,
            "period_end": iso(digest.period_end), "first_seq": digest.first_seq, "last_seq": digest.last_seq,
            "event_count": digest.event_count, "head_hash": digest.head_hash, "algorithm": digest.algorithm,
            "key_fingerprint": digest.key_fingerprint, "signature": digest.signature, "body": digest.body,
            "signature_valid": bool(pem) and verify_signature(pem, digest.body, digest.signature),
        }
    return {"events_in_period": {row["kind"]: row["n"] for row in kinds}, "digest": described, "chain": chain}


def verify_period_chain(organization: Organization, start_at: datetime, covering: AuditDigest | None) -> dict:
    """The chain from the last digest signed before the period (or the first event) to the digest
    covering its end (or the head, while none does), recomputed link by link.

    Every digest's signature and link to the previous one are checked first (they are few); the
    segment must then start from the head hash the earlier digest signed and end on the one the
    covering digest signed. The whole chain, from its first event, is what `verify_audit_chain`
    and `/api/v1/audit-events/verify/` check; a report checks the part that vouches for its period,
    so its cost follows the period and not the organization's whole history.
    """
    digests = AuditDigest.objects.filter(organization=organization).order_by("period_end", "id")
    if covering is not None:  # later digests are not the period's business: the result stays the same
        digests = digests.filter(period_end__lte=covering.period_end)
    problem, anchors = verify_digests(digests.values_list("body", "signature"), public_keys())
    before = digests.filter(period_end__lte=start_at).values_list("last_seq", flat=True).last()
    first_seq = (before or 0) + 1
    if covering is not None:
        last_seq = covering.last_seq
    else:
        last_seq = ChainHead.objects.filter(organization=organization).values_list("seq", flat=True).first() or 0
    result = {"valid": not problem, "problem": problem, "first_invalid_seq": None, "first_seq": first_seq,
              "last_seq": last_seq, "events_checked": 0, "digests_checked": digests.count(),
              "from": "the signed digest before the period" if before is not None else "the first event",
              "to": "the signed digest covering the period's end" if covering is not None else "the chain's head"}
    if problem:
        return result

    rows = event_rows(organization, last_seq, first_seq)
    try:
        checked = verify_links(rows, organization_id=organization.pk, anchors=anchors, first_seq=first_seq,
                               prev_hash=anchors.get(before, GENESIS_HASH) if before else GENESIS_HASH)
    finally:
        rows.close()  # a walk that stopped early ends its query here
    if checked.valid and checked.head_seq != last_seq:
        checked.fail(checked.head_seq + 1, f"the events up to seq {last_seq} are missing")
    result.update(valid=checked.valid, first_invalid_seq=checked.first_invalid_seq, problem=checked.problem,
                  events_checked=checked.events_checked)
    return result
