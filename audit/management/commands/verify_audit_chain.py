from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from audit.selectors import verify_chain
from audit.verification import verify_export


class Command(BaseCommand):
    help = ("Recompute the audit chain of one or every organization (or of an export, without the database). "
            "Exits non-zero when a chain is invalid, naming the first invalid seq.")

    def add_arguments(self, parser):
        parser.add_argument("--org", help="An organization's slug (default: every organization).")
        parser.add_argument("--export", type=Path, help="Verify an export directory written by export_audit.")

    def handle(self, *args, org=None, export=None, **options):
        if export is not None:
            results = [(str(export), verify_export(export))]
        else:
            organizations = Organization.objects.order_by("slug")
            if org:
                organizations = organizations.filter(slug=org)
                if not organizations.exists():
                    raise CommandError(f"No organization '{org}'.")
            results = [(o.slug, verify_chain(o)) for o in organizations]
        invalid = []
        for name, result in results:
            if result.valid:
                self.stdout.write(f"{name}: valid, {result.events_checked} events checked, head seq "
                                  f"{result.head_seq} {result.head_hash}")
            else:
                invalid.append(name)
                self.stdout.write(f"{name}: INVALID at seq {result.first_invalid_seq}: {result.problem} "
                                  f"({result.events_checked} events checked before it)")
        if invalid:
            raise CommandError(f"invalid chain: {', '.join(invalid)}")
