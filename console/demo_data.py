"""A month of activity for a demo organization: terms versions, consent history and a few thousand flows.

Deterministic (seeded random, times relative to now) and idempotent (an organization that has
flows already is left alone). Everything goes through the services the API uses, so the audit
trail, the verdicts and the rollups are the ones real traffic would produce.

Flows are judged against the switches in force *when they happened*. A demo organization's
switches are usually created at seeding time, i.e. after the month being simulated; seed them
under `backdated(...)` so they were in force for the whole month, e.g.

    with backdated(timezone.now() - timedelta(days=ACTIVITY_DAYS + 1)):
        organization = seed_demo_organization()
    seed_activity(organization)
"""
import hashlib
import random
from collections import defaultdict
from contextlib import contextmanager
from datetime import datetime, timedelta
from unittest import mock

from django.db import transaction
from django.utils import timezone

from accounts.models import Account, AccountGroup, Group
from accounts.selectors import account_ids_by_user_name
from audit.actors import Actor
from flows.batches import receive_batch
from flows.models import FlowBatch
from flows.validation import validate_flows
from governance import services as governance
from governance.models import AIFeature, DataCategory, Purpose, TermsVersion
from governance.selectors import catalog_entries, load_catalog

ACTIVITY_DAYS = 30
ACTOR = Actor("system", None, "demo activity")
RECONSENT_AT = 0.57  # how far into the period the re-consent terms take effect

# (data category, purpose, destination, flows per day, groups whose people it carries (None: anyone),
#  accounts per flow (min, max), volume per account (min, max))
DAILY_FLOWS = [
    ("telemetry.usage", "service.provision", "vendor.service", 26, None, (1, 4), (20, 60)),
    ("telemetry.device", "service.provision", "vendor.service", 10, None, (1, 3), (5, 20)),
    # meetings run on their audio and video: the service itself, allowed by the catalog default
    ("content.audio", "service.provision", "vendor.service", 20, None, (2, 6), (40, 120)),
    ("content.video", "service.provision", "vendor.service", 12, None, (2, 6), (60, 200)),
    ("telemetry.diagnostics", "service.improvement", "vendor.analytics", 8, None, (1, 2), (10, 40)),
    ("telemetry.usage", "service.improvement", "vendor.analytics", 10, None, (1, 4), (10, 30)),
    ("telemetry.engagement", "service.improvement", "vendor.analytics", 3, None, (2, 6), (5, 15)),
    ("content.transcript", "ai.inference", "vendor.ai_features", 16, None, (2, 6), (20, 80)),
    ("content.audio", "ai.inference", "vendor.ai_features", 9, None, (2, 6), (40, 120)),
    ("telemetry.meeting_metadata", "ai.inference", "vendor.ai_features", 8, None, (2, 6), (2, 6)),
    ("content.chat", "ai.inference", "vendor.ai_features", 6, ("Sales",), (1, 1), (5, 20)),
    ("telemetry.diagnostics", "ai.training.first_party", "vendor.model_training", 6, ("Engineering",), (1, 3),
     (20, 60)),
    ("content.chat", "ai.training.first_party", "vendor.model_training", 10, ("Support",), (1, 1), (15, 50)),
    ("content.chat", "ai.training.first_party", "vendor.model_training", 1, ("Sales",), (1, 1), (15, 50)),
    ("telemetry.usage", "ai.training.third_party", "thirdparty.llm_provider", 1, None, (1, 2), (10, 30)),
    ("telemetry.usage", "marketing", "thirdparty.ad_network", 1, ("Marketing",), (1, 1), (5, 10)),
]
# An incident: for a tenth of the period (three days of a month) the vendor sent transcripts to model training.
INCIDENT = ("content.transcript", "ai.training.first_party", "vendor.model_training", (0.7, 0.8), 14, (2, 5), (30, 90))
TRAINING_CONSENT = [("content.chat", "ai.training.first_party")]
CONSENT_GROUPS = ("Support", "Sales")


@contextmanager
def backdated(instant: datetime):
    """Run seeding code as if the clock read `instant` (and ran on from there).

    The services stamp their writes with `django.utils.timezone.now()`; a demo uses this to set
    its switches "a month ago", which the services themselves never allow. Not for real data.
    """
    real_now = timezone.now
    offset = real_now() - instant
    with mock.patch("django.utils.timezone.now", lambda: real_now() - offset):
        yield


def seed_activity(organization, *, days: int = ACTIVITY_DAYS, seed: int = 7) -> dict:
    """Seed `days` days of terms, consents and flows; returns what was created (or that it was skipped)."""
    if FlowBatch.objects.filter(organization=organization).exists():
        return {"skipped": True}
    rng = random.Random(seed)
    now = timezone.now()
    start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    accounts = list(Account.objects.filter(organization=organization, active=True).order_by("pk")
                    .values_list("pk", "user_name"))
    if not accounts:
        return {"skipped": True}
    members = defaultdict(list)
    for account_id, group in (AccountGroup.objects.filter(account__organization=organization, account__active=True)
                              .order_by("account_id").values_list("account_id", "group__display_name")):
        members[group].append(account_id)
    by_id = dict(accounts)
    categories = {c.key: c for c in catalog_entries(DataCategory, organization)}
    purposes = {p.key: p for p in catalog_entries(Purpose, organization)}

    _allow_consented_training(organization, members, categories, purposes, start)
    reconsent_at = start + (now - start) * RECONSENT_AT
    old_terms, new_terms = _terms(organization, categories, purposes, start, reconsent_at)
    consents = _consents(organization, rng, members, by_id, categories, purposes, start, now, old_terms, new_terms)
    flows = _flows(organization, rng, members, [pk for pk, _ in accounts], by_id, start, days, now)
    return {"skipped": False, "consents": consents, "flows": flows}


def _allow_consented_training(organization, members, categories, purposes, start) -> None:
    """Support agreed to the vendor's model-improvement programme, for agents who consent themselves."""
    support = Group.objects.filter(organization=organization, display_name="Support").first()
    if support is None or not members.get("Support"):
        return
    with backdated(start - timedelta(days=1)), transaction.atomic():
        for category, purpose in TRAINING_CONSENT:
            governance.set_rule(organization=organization, actor=ACTOR, scope="group", group=support,
                                data_category=categories[category], purpose=purposes[purpose], effect="allow",
                                reason="Model-improvement programme: chat of agents who consent themselves.")


def _terms(organization, categories, purposes, start, reconsent_at):
    covers = [(categories[c], purposes[p]) for c, p in (("content.chat", "ai.training.first_party"),
                                                        ("content.transcript", "ai.training.first_party"))]
    versions = []
    for version, effective_at, reconsent, covered in (
            ("2025-03", start - timedelta(days=120), False, covers[:1]),
            ("2025-09", reconsent_at, True, covers)):
        existing = TermsVersion.objects.filter(organization=organization, version=version).first()
        versions.append(existing or governance.publish_terms(
            organization=organization, actor=ACTOR, version=version, effective_at=effective_at,
            text_sha256=hashlib.sha256(f"vendor terms {version}".encode()).hexdigest(), covers=covered,
            requires_reconsent=reconsent))
    return versions


def _consents(organization, rng, members, by_id, categories, purposes, start, now, old_terms, new_terms) -> int:
    """Consent to chat training in Support and Sales (renewed or not after the re-consent terms), and
    join-or-leave consents to meeting summaries across the organization."""
    items = []
    reconsent_at = new_terms.effective_at
    latest = now - timedelta(minutes=5)

    def between(first, last):
        return min(first + (last - first) * rng.random(), latest)
    mechanisms = ["self_service"] * 6 + ["join_or_leave_prompt"] * 2 + ["admin_on_behalf"] * 2
    accounts = Account.objects.in_bulk(list(by_id))
    for group in CONSENT_GROUPS:
        for account_id in members.get(group, ()):
            if rng.random() > (0.75 if group == "Support" else 0.3):
                continue
            for category, purpose in TRAINING_CONSENT:
                target = {"data_category": categories[category], "purpose": purposes[purpose]}
                granted = start - timedelta(days=rng.uniform(1, 40)) if rng.random() < 0.8 else \
                    between(start, reconsent_at)
                mechanism = rng.choice(mechanisms)
                items.append({"account": accounts[account_id], "action": "grant", "mechanism": mechanism,
                              "terms_version": old_terms, "occurred_at": granted, **target,
                              "evidence": {"source": "vendor consent dialog"}})
                roll = rng.random()
                if roll < 0.55:  # consented again under the new terms
                    items.append({"account": accounts[account_id], "action": "grant", "mechanism": "self_service",
                                  "terms_version": new_terms, "occurred_at": between(reconsent_at, now),
                                  **target, "evidence": {"source": "re-consent campaign"}})
                elif roll < 0.65:
                    items.append({"account": accounts[account_id], "action": "revoke", "mechanism": "self_service",
                                  "terms_version": new_terms, "occurred_at": between(reconsent_at, now),
                                  **target, "evidence": {"source": "privacy settings"}})
    summary = AIFeature.objects.filter(key="meeting_summary", organization__isnull=True).first()
    if summary is not None:
        for account_id in sorted(by_id):
            if rng.random() < 0.3:
                when = between(start, now)
                terms = new_terms if when >= reconsent_at else old_terms
                items.append({"account": accounts[account_id], "action": "grant", "mechanism": "join_or_leave_prompt",
                              "feature": summary, "terms_version": terms, "occurred_at": when,
                              "evidence": {"prompt": "This meeting is summarised by AI. Join or leave."}})
    items.sort(key=lambda item: item["occurred_at"])
    return governance.import_consents(organization=organization, actor=ACTOR, consents=items) if items else 0


def _flows(organization, rng, members, everyone, by_id, start, days, now) -> int:
    catalog = load_catalog(organization)

    def pick(groups, low, high):
        pool = [a for g in groups for a in members.get(g, ())] if groups else []
        if groups and not pool:
            return []
        if not groups:  # a meeting: people of one group, sometimes with a guest from another
            names = sorted(members)
            group = rng.choices(names, weights=[len(members[n]) for n in names])[0] if names else None
            pool = members.get(group) or everyone
        chosen = rng.sample(pool, min(len(pool), rng.randint(low, high)))
        if not groups and rng.random() < 0.1:
            chosen.append(rng.choice(everyone))
        return list(dict.fromkeys(chosen))

    total = 0
    for day in range(days):
        day_start = start + timedelta(days=day)
        batch = []
        specs = list(DAILY_FLOWS)
        category, purpose, destination, (first, last), per_day, size, volume = INCIDENT
        if int(days * first) <= day < max(int(days * last), int(days * first) + 1):
            specs.append((category, purpose, destination, per_day, None, size, volume))
        for category, purpose, destination, per_day, groups, (low, high), (vmin, vmax) in specs:
            for _ in range(max(0, round(per_day * rng.uniform(0.6, 1.3)))):
                people = pick(groups, low, high)
                when = day_start + timedelta(seconds=rng.randint(7 * 3600, 19 * 3600))
                if not people or when > now:
                    continue
                batch.append({"flow_id": f"demo-{day_start:%Y%m%d}-{len(batch):05d}",
                              "accounts": [by_id[a] for a in people], "data_category": category, "purpose": purpose,
                              "destination": destination, "occurred_at": when.isoformat(),
                              "volume": sum(rng.randint(vmin, vmax) for _ in people)})
        if not batch:
            continue
        validated = validate_flows({"flows": batch}, catalog=catalog,
                                   resolve_accounts=lambda names: account_ids_by_user_name(organization, names))
        receive_batch(organization=organization, actor=ACTOR, flows=validated)
        total += len(batch)
    return total
