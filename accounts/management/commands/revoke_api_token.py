from django.core.management.base import BaseCommand, CommandError

from accounts import services
from accounts.models import ApiToken, Organization
from audit.actors import SYSTEM


class Command(BaseCommand):
    help = "Revoke an organization's live token by name; the next request with it is refused."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organization's slug.")
        parser.add_argument("--name", required=True)

    def handle(self, *args, org, name, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization '{org}'.")
        token = ApiToken.objects.filter(organization=organization, name=name, revoked_at__isnull=True).first()
        if token is None:
            raise CommandError(f"No live token named '{name}' in {organization.slug}.")
        services.revoke_api_token(token=token, actor=SYSTEM)
        self.stdout.write(f"Revoked '{token.name}' ({token.scope}, {token.hint}…) of {organization.slug}.")
