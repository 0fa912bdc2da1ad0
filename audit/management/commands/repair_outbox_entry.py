import getpass

from django.core.management.base import BaseCommand, CommandError

from audit import selectors, services


class Command(BaseCommand):
    help = ("Let an organization's stalled audit chain go on past the change it cannot chain, without editing "
            "the chain: the original is kept in an append-only repair record and the chained event carries a "
            "stand-in naming it, its SHA-256, the reason and who repaired it (docs/operations.md).")

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organization's slug.")
        parser.add_argument("--entry", required=True, type=int, help="The outbox row pipeline_status names.")
        parser.add_argument("--reason", required=True, help="Why, for the auditors (a ticket number, say).")
        parser.add_argument("--by", default=None, help="Who repairs it (default: the operating system user).")

    def handle(self, *args, org, entry, reason, by=None, **options):
        organization = selectors.organizations().filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization '{org}'.")
        try:
            repair = services.repair_outbox_entry(organization_id=organization.pk, outbox_id=entry, reason=reason,
                                                  repaired_by=by or getpass.getuser())
        except ValueError as exc:  # NothingToRepair included
            raise CommandError(str(exc)) from None
        chained = services.drain_outbox(organization.pk)
        self.stdout.write(f"outbox row {entry} repaired (repair record {repair.pk}, original SHA-256 "
                          f"{repair.original_sha256}); {chained} change(s) chained.")
        stall = selectors.chain_stall(organization)
        if stall is not None:
            raise CommandError(f"the chain is stalled again, at outbox row {stall['outbox_id']}: {stall['error']}")
