"""Seed a demo organization modelled on the story in DESIGN §1, print the logins, and serve."""
import io
import logging
import random
import secrets
from contextlib import contextmanager, nullcontext
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts import services as accounts
from accounts.models import ApiToken, Organization, Role, TokenScope
from audit import services as audit
from audit.actors import SYSTEM, Actor
from config.celery import app as celery_app
from console.demo_data import ACTIVITY_DAYS, backdated, seed_activity
from governance import services as governance
from governance.models import AIFeature, DataCategory, Purpose

SLUG = "acme"
GROUPS = ["Engineering", "Sales", "Marketing", "Support", "Legal", "Finance", "People", "Product", "Design",
          "Operations", "Executives", "Contractors"]
GROUP_WEIGHTS = [420, 320, 160, 300, 40, 80, 50, 150, 70, 200, 20, 190]  # about 2,000 people
FIRST = ["ada", "alan", "grace", "linus", "margaret", "ken", "barbara", "dennis", "frances", "john", "radia",
         "tim", "katherine", "edsger", "hedy", "guido", "sophie", "donald", "shafi", "leslie"]
LAST = ["lovelace", "turing", "hopper", "torvalds", "hamilton", "thompson", "liskov", "ritchie", "allen",
        "mccarthy", "perlman", "berners", "johnson", "dijkstra", "lamarr", "rossum", "wilson", "knuth",
        "goldwasser", "lamport"]

ORG_RULES = [
    # (feature or (category, purpose), effect, locked, reason)
    ("meeting_summary", "allow", False, "Pilot approved by the works council in March."),
    ("chat_compose", "deny", False, "Not reviewed yet."),
    (("content.transcript", "ai.training.first_party"), "deny", True,
     "Our conversations do not train the vendor's models: legal hold."),
    (("content.audio", "ai.training.first_party"), "deny", True, "Voice recordings never leave for training."),
    (("content.chat", "ai.training.third_party"), "deny", True, "No third-party training on chat."),
    (("telemetry.usage", "service.improvement"), "allow", False, "Product analytics are fine."),
    (("telemetry.engagement", "service.improvement"), "deny", False, "Attention tracking is off."),
    (("telemetry.diagnostics", "service.improvement"), "allow", False, "Crash reports help support."),
]
GROUP_RULES = [
    ("Sales", "chat_compose", "allow", False, "Sales asked for compose; 90-day pilot."),
    ("Sales", "transcription", "allow", False, "Call notes."),
    ("Legal", "meeting_summary", "deny", True, "Privileged conversations are never summarised."),
    ("Contractors", "meeting_summary", "deny", False, "Contract does not cover AI processing."),
    ("Engineering", ("telemetry.diagnostics", "ai.training.first_party"), "allow", False,
     "Engineering agreed to share crash data for model training."),
    ("Support", "transcription", "allow", False, "Support calls are transcribed for quality."),
]


class Command(BaseCommand):
    help = "Seed a demo organization (about 2,000 accounts), print a console login and an API token, and serve."

    def add_arguments(self, parser):
        parser.add_argument("--no-serve", action="store_true", help="Do everything but serve.")
        parser.add_argument("--addrport", default="127.0.0.1:8000")

    def handle(self, *args, no_serve, addrport, **options):
        with quiet_eager_tasks() if celery_app.conf.task_always_eager else nullcontext():
            self.seed_and_serve(no_serve=no_serve, addrport=addrport)

    def seed_and_serve(self, *, no_serve, addrport):
        call_command("migrate", interactive=False, verbosity=0)
        organization = Organization.objects.filter(slug=SLUG).first()
        if organization is None:
            # The switches are set "a month ago", so the month of activity below is judged by them.
            with backdated(timezone.now() - timedelta(days=ACTIVITY_DAYS + 1)):
                organization = seed_demo_organization()
            self.stdout.write(f"Seeded the demo organization '{SLUG}': {organization.accounts.count():,} accounts "
                              f"in {len(GROUPS)} groups, {organization.policy_rules.count()} policy rules.")
        else:
            self.stdout.write(f"The demo organization '{SLUG}' exists already; keeping its data.")
        activity = seed_activity(organization)
        if not activity["skipped"]:
            self.stdout.write(f"Seeded {ACTIVITY_DAYS} days of activity: {activity['flows']:,} flows, "
                              f"{activity['consents']:,} consent events.")
            audit.drain_outbox(organization.pk)
            head = audit.write_digest(organization)  # a signed tree head: the log's proofs can be downloaded
            self.stdout.write(f"Signed the audit log's tree head: {head.tree_size:,} leaves.")
        logins = {role: reset_login(organization, role) for role in (Role.ADMIN, Role.AUDITOR)}
        token = fresh_demo_token(organization)
        self.stdout.write(f"Console:           http://{addrport}/")
        self.stdout.write(f"Console (admin):   {logins[Role.ADMIN][0]} / {logins[Role.ADMIN][1]}")
        self.stdout.write(f"Console (auditor): {logins[Role.AUDITOR][0]} / {logins[Role.AUDITOR][1]}")
        self.stdout.write(f"API token:         {token}")
        if no_serve:
            self.stdout.write(f"Not serving (--no-serve): manage.py runserver {addrport} serves it.")
            return
        self.stdout.write(f"Serving on http://{addrport}/ with Django's development server (Ctrl-C to stop)")
        # Its banner repeats the line above; its errors (a port in use) still reach stderr, its request log too.
        call_command("runserver", addrport, use_reloader=False, stdout=io.StringIO())


class _EagerTaskChatter(logging.Filter):
    """Without a broker every task runs in-process, and Celery logs a line for each one that went well,
    while kombu warns about the host of a broker it never connects to. Errors pass."""

    def filter(self, record):
        return record.levelno > (logging.WARNING if record.name == "kombu.connection" else logging.INFO)


@contextmanager
def quiet_eager_tasks():
    """Keep eager tasks' success lines and kombu's broker warnings off the demo's terminal."""
    loggers = [logging.getLogger("celery.app.trace"), logging.getLogger("kombu.connection")]
    chatter = _EagerTaskChatter()
    for logger in loggers:
        logger.addFilter(chatter)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(chatter)


@transaction.atomic
def seed_demo_organization() -> Organization:
    rng = random.Random(1)
    organization = accounts.create_organization(slug=SLUG, name="Acme Corp", actor=SYSTEM)
    accounts.set_email_domains(organization=organization, actor=SYSTEM, domains=["acme.example"])  # reports' mail
    groups = {name: accounts.create_group(organization=organization, actor=SYSTEM, display_name=name,
                                          external_id=f"okta-{name.lower()}") for name in GROUPS}
    people, n = [], 0
    for name, weight in zip(GROUPS, GROUP_WEIGHTS):
        for _ in range(weight):
            n += 1
            first, last = rng.choice(FIRST), rng.choice(LAST)
            member_of = [groups[name]]
            if rng.random() < 0.08:  # some people sit in a second group
                member_of.append(groups[rng.choice(GROUPS)])
            people.append({"user_name": f"{first}.{last}.{n}@acme.example", "email": f"{first}.{last}.{n}@acme.example",
                           "display_name": f"{first.title()} {last.title()}", "external_id": f"00u{n:06d}",
                           "active": rng.random() > 0.02, "groups": list(dict.fromkeys(member_of))})
    created = accounts.create_accounts(organization=organization, actor=SYSTEM, accounts=people)
    admin = Actor("system", None, "demo seed")

    def target(spec):
        if isinstance(spec, tuple):
            return {"data_category": DataCategory.objects.get(key=spec[0], organization=None),
                    "purpose": Purpose.objects.get(key=spec[1], organization=None)}
        return {"feature": AIFeature.objects.get(key=spec, organization=None)}

    for spec, effect, locked, reason in ORG_RULES:
        governance.set_rule(organization=organization, actor=admin, scope="organization", effect=effect,
                               locked=locked, reason=reason, **target(spec))
    for group, spec, effect, locked, reason in GROUP_RULES:
        governance.set_rule(organization=organization, actor=admin, scope="group", group=groups[group],
                               effect=effect, locked=locked, reason=reason, **target(spec))
    by_group = {name: [a for a, p in zip(created, people) if p["groups"][0] is groups[name]] for name in GROUPS}
    overrides = [
        (by_group["Legal"][0], "meeting_summary", "allow", "Asked for summaries (stays off: Legal is locked)."),
        (by_group["Sales"][0], "chat_compose", "deny", "Opted out of compose."),
        (by_group["Engineering"][0], "transcription", "allow", "Accessibility: needs captions."),
        (by_group["Marketing"][0], ("telemetry.usage", "marketing"), "allow", "Joined the beta programme."),
    ]
    for account, spec, effect, reason in overrides:
        governance.set_rule(organization=organization, actor=admin, scope="account", account=account,
                               effect=effect, reason=reason, **target(spec))
    return organization


def reset_login(organization: Organization, role: str) -> tuple[str, str]:
    """The demo's console login for a role, with a fresh password each run."""
    username = f"{role}@{organization.slug}.example"
    password = secrets.token_urlsafe(9)
    user, _ = get_user_model().objects.get_or_create(username=username, defaults={"email": username})
    user.set_password(password)
    user.is_staff = role == Role.ADMIN
    user.save()
    accounts.add_org_role(organization=organization, user=user, role=role, actor=SYSTEM)
    return username, password


def fresh_demo_token(organization: Organization) -> str:
    for token in ApiToken.objects.filter(organization=organization, name="demo", revoked_at__isnull=True):
        accounts.revoke_api_token(token=token, actor=SYSTEM)
    return accounts.create_api_token(organization=organization, name="demo", scope=TokenScope.API, actor=SYSTEM)[1]
