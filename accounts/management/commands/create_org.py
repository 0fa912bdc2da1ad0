from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import services
from audit.actors import SYSTEM


class Command(BaseCommand):
    help = "Create an organization (a tenant)."

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--email-domain", dest="email_domains", action="append", default=[], metavar="DOMAIN",
                            help="A domain its compliance reports may be e-mailed to (repeatable; exactly this "
                                 "domain, not its subdomains). Owners change them in the console's Settings.")

    def handle(self, *args, slug, name, email_domains, **options):
        try:
            with transaction.atomic():  # a bad domain leaves no organization behind
                organization = services.create_organization(slug=slug, name=name, actor=SYSTEM)
                if email_domains:
                    organization = services.set_email_domains(organization=organization, actor=SYSTEM,
                                                              domains=email_domains)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        self.stdout.write(f"Created organization {organization.slug} (id {organization.pk}).")
        if organization.email_domains:
            self.stdout.write(f"Reports may be e-mailed to: {', '.join(organization.email_domains)}.")
