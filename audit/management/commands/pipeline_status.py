import json
import sys

from django.core.management.base import BaseCommand
from django.utils import timezone

from audit.operations import backlog


class Command(BaseCommand):
    help = ("What the workers still owe: the audit outbox, stored flow batches, webhook deliveries and "
            "overdue signed digests. With --max-age, exits 1 when any of it waits longer (for a monitor).")

    def add_arguments(self, parser):
        parser.add_argument("--max-age", type=int, metavar="SECONDS",
                            help="exit 1 if the oldest pending item of any kind is older than this")
        parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")

    def handle(self, *args, max_age=None, json=False, **options):
        now = timezone.now()
        rows = backlog()
        late = [row.name for row in rows
                if max_age is not None and row.pending and row.age(now).total_seconds() > max_age]
        if json:
            self.stdout.write(_json({"at": now.isoformat(), "late": late, "backlog": [
                {"name": row.name, "pending": row.pending, "oldest": row.oldest.isoformat() if row.oldest else None,
                 "age_seconds": round(row.age(now).total_seconds()) if row.oldest else None, "detail": row.detail}
                for row in rows]}))
        else:
            for row in rows:
                age = f"oldest {_duration(row.age(now).total_seconds())} ago" if row.pending and row.oldest else "-"
                self.stdout.write(f"{row.name:<20} {row.pending:>8}  {age:<22} {row.detail}")
        if late:
            self.stderr.write(f"late: {', '.join(late)} (waiting longer than {max_age} s)")
            sys.exit(1)


def _json(value) -> str:
    return json.dumps(value, indent=2)


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"
