"""`manage.py generate_report`: a report made now, in this process; its files written where asked."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from pypdf import PdfReader

from reports import periods
from reports.models import Report

pytestmark = pytest.mark.django_db


def generate(*args) -> str:
    out = StringIO()
    call_command("generate_report", *args, stdout=out)
    return out.getvalue()


def test_it_writes_every_format_and_says_where(org, month, tmp_path):
    output = generate("--org", "acme", "--from", month.start.isoformat(), "--to", month.end.isoformat(),
                      "--out", str(tmp_path))
    report = Report.objects.get()
    assert output.startswith(f"Report {report.pk}: acme, {report.period_label} (UTC)")
    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == sorted(f.filename for f in report.files.all()) and len(written) == 4
    for file in report.files.all():
        assert f"file {file.pk}" in output and str(tmp_path / file.filename) in output
    assert len(PdfReader(tmp_path / report.files.get(format="pdf").filename).pages) >= 3


def test_by_default_it_reports_on_the_last_full_month(org):
    output = generate("--org", "acme", "--format", "json")
    report = Report.objects.get()
    assert (report.period_start, report.period_end) == periods.last_full("month", report.created_at.date())
    assert report.formats == ["json"] and "json  file" in output


@pytest.mark.parametrize("args, message", [
    (["--org", "nobody"], "No organization 'nobody'"),
    (["--org", "acme", "--from", "2026-01-01"], "Give both --from and --to"),
    (["--org", "acme", "--from", "2026-02-01", "--to", "2026-01-01"], "period_end"),
    (["--org", "acme", "--from", "yesterday", "--to", "2026-01-01"], "Not a date"),
])
def test_it_refuses_what_makes_no_report(org, args, message):
    with pytest.raises(CommandError, match=message):
        generate(*args)
