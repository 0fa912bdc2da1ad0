from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.selectors import export_chain, organizations


class Command(BaseCommand):
    help = "Export an organization's audit events (JSON Lines), signed digests and public keys."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True)
        parser.add_argument("--out", required=True, type=Path)

    def handle(self, *args, org, out, **options):
        organization = organizations().filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization '{org}'.")
        counts = export_chain(organization, out)
        self.stdout.write(f"Wrote {counts['events']} events, {counts['flows']} flows, {counts['digests']} digests "
                          f"and {counts['keys']} public keys to {out}. "
                          f"Verify with: manage.py verify_audit_chain --export {out}")
