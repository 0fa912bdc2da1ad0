from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import services
from accounts.models import Role
from audit.actors import SYSTEM
from identity import invitations


class Command(BaseCommand):
    help = "Create an organization (a tenant) and, with --owner-email, invite its first owner."

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--email-domain", dest="email_domains", action="append", default=[], metavar="DOMAIN",
                            help="A domain its compliance reports may be e-mailed to (repeatable; exactly this "
                                 "domain, not its subdomains). Owners change them in the console's Settings.")
        parser.add_argument("--owner-email", metavar="ADDRESS",
                            help="Invite this address as the organization's first owner: the link is mailed "
                                 "and printed (good once, for seven days).")

    def handle(self, *args, slug, name, email_domains, owner_email, **options):
        try:
            with transaction.atomic():  # a bad domain or address leaves no organization behind
                organization = services.create_organization(slug=slug, name=name, actor=SYSTEM)
                if email_domains:
                    organization = services.set_email_domains(organization=organization, actor=SYSTEM,
                                                              domains=email_domains)
                if owner_email:
                    invitation, raw = invitations.invite(organization=organization, email=owner_email,
                                                         role=Role.OWNER, actor=SYSTEM)
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        self.stdout.write(f"Created organization {organization.slug} (id {organization.pk}).")
        if organization.email_domains:
            self.stdout.write(f"Reports may be e-mailed to: {', '.join(organization.email_domains)}.")
        if owner_email:
            self.stdout.write(f"Invited {invitation.email} as owner (mailed; good once, until "
                              f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC):")
            self.stdout.write(invitations.link_for(raw))
