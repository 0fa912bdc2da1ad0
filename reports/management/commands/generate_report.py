"""Generate an organization's compliance report now, in this process, and say where its files are."""
from datetime import date
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Organization
from audit.actors import Actor
from reports import periods, services
from reports.models import ALL_FORMATS, Report


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"Not a date (YYYY-MM-DD): {value!r}") from None


class Command(BaseCommand):
    help = ("Generate a compliance report of an organization (default: the last full month) and print its id and "
            "its files' ids; with --out, also write the files there.")

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="The organization's slug.")
        parser.add_argument("--from", dest="start", help="The first day of the period, YYYY-MM-DD (UTC).")
        parser.add_argument("--to", dest="end", help="The first day AFTER the period, YYYY-MM-DD: the period is "
                                                     "[--from, --to).")
        parser.add_argument("--format", dest="formats", action="append", choices=ALL_FORMATS,
                            help="A format to make (repeatable; default: all).")
        parser.add_argument("--out", type=Path, help="A directory to write the files to.")

    def handle(self, *args, org, start, end, formats, out, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization '{org}'.")
        if bool(start) != bool(end):
            raise CommandError("Give both --from and --to, or neither (the last full month).")
        if start:
            period_start, period_end = _day(start), _day(end)
        else:
            period_start, period_end = periods.last_full(periods.MONTH, timezone.now().date())
        try:
            report = services.request_report(organization=organization, actor=Actor("system", None, "generate_report"),
                                             period_start=period_start, period_end=period_end, formats=formats,
                                             enqueue=False)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        self.stdout.write(f"Report {report.pk}: {organization.slug}, {report.period_label} (UTC)")
        report = services.generate_report(report.pk)
        if report.status != Report.Status.DONE:
            raise CommandError(f"Report {report.pk} ended {report.status}: {report.error}")
        for file in report.files.order_by("id"):
            line = f"  {file.format:5} file {file.pk}  {file.size:>10,} bytes  sha256 {file.sha256}"
            if out:
                out.mkdir(parents=True, exist_ok=True)
                path = out / file.filename
                path.write_bytes(bytes(file.content))
                line += f"  -> {path}"
            self.stdout.write(line)
        self.stdout.write(f"Download: /api/v1/reports/{report.pk}/download/?format=pdf|html|csv|json")
