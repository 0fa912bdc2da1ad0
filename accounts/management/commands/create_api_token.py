from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts import services
from accounts.models import Organization, TokenScope
from audit.actors import SYSTEM


class Command(BaseCommand):
    help = "Create an API or SCIM token. The token is printed once, alone on the last line, and never stored."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organization's slug.")
        parser.add_argument("--name", required=True)
        parser.add_argument("--scope", required=True, choices=TokenScope.values)

    def handle(self, *args, org, name, scope, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization '{org}'.")
        try:
            token, raw = services.create_api_token(organization=organization, name=name, scope=scope, actor=SYSTEM)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        self.stderr.write(f"Token '{token.name}' ({token.scope}) for {organization.slug}; it is shown only now:")
        self.stdout.write(raw)
