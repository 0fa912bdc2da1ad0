import json
import sys

from django.core.management.base import BaseCommand
from django.utils import timezone

from audit.operations import digest_backlog, outbox_backlog, stalled_chains
from flows.operations import backlog as flow_backlog


class Command(BaseCommand):
    help = ("What the workers still owe: the audit outbox, stored flow batches, webhook deliveries and "
            "overdue signed digests. Exits 1 when an organization's audit chain is stalled on a row it cannot "
            "chain, and, with --max-age, when any of it waits longer (for a monitor).")

    def add_arguments(self, parser):
        parser.add_argument("--max-age", type=int, metavar="SECONDS",
                            help="exit 1 if the oldest pending item of any kind is older than this")
        parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")

    def handle(self, *args, max_age=None, json=False, **options):
        now = timezone.now()
        rows = [outbox_backlog(), *flow_backlog(), digest_backlog()]
        stalled = stalled_chains()
        late = [row.name for row in rows
                if max_age is not None and row.pending and row.age(now).total_seconds() > max_age]
        if json:
            self.stdout.write(_json({"at": now.isoformat(), "late": late, "backlog": [
                {"name": row.name, "pending": row.pending, "oldest": row.oldest.isoformat() if row.oldest else None,
                 "age_seconds": round(row.age(now).total_seconds()) if row.oldest else None, "detail": row.detail}
                for row in rows], "stalled_chains": [chain.as_dict() for chain in stalled]}))
        else:
            for row in rows:
                age = f"oldest {_duration(row.age(now).total_seconds())} ago" if row.pending and row.oldest else "-"
                self.stdout.write(f"{row.name:<20} {row.pending:>8}  {age:<22} {row.detail}")
        for chain in stalled:
            since = f" since {chain.since.isoformat()}" if chain.since else ""
            self.stderr.write(f"STALLED: audit chain of organization {chain.organization_slug} stops at seq "
                              f"{chain.next_seq}: outbox row {chain.outbox_id} cannot be chained{since} "
                              f"({chain.pending} change(s) waiting): {chain.error}")
        if stalled:
            self.stderr.write("repair: manage.py repair_outbox_entry --org SLUG --entry OUTBOX_ID --reason TEXT "
                              "(docs/operations.md)")
        if late:
            self.stderr.write(f"late: {', '.join(late)} (waiting longer than {max_age} s)")
        if late or stalled:
            sys.exit(1)


def _json(value) -> str:
    return json.dumps(value, indent=2)


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"
