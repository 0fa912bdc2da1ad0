from django.core.management.base import BaseCommand, CommandError

from audit import selectors, services


class Command(BaseCommand):
    help = "Chain pending changes and sign a digest of the chain head now (beat does this every period)."

    def add_arguments(self, parser):
        parser.add_argument("--org", help="An organization's slug (default: every organization).")

    def handle(self, *args, org=None, **options):
        organizations = selectors.organizations().order_by("slug")
        if org:
            organizations = organizations.filter(slug=org)
            if not organizations.exists():
                raise CommandError(f"No organization '{org}'.")
        for organization in organizations:
            services.drain_outbox(organization.pk)
            digest = services.write_digest(organization)
            self.stdout.write(f"{organization.slug}: digest up to seq {digest.last_seq} ({digest.event_count} new "
                              f"events), signed by {digest.key_fingerprint[:16]}")
