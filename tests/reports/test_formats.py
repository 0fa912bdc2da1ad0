"""Each format opens: the PDF parses back and renders to pictures, the HTML carries everything it needs,
the CSV tables say what the JSON says."""
import csv
import io
import json
import os
import shutil
import subprocess
import zipfile
from html.parser import HTMLParser

import pytest
from pypdf import PdfReader

from reports import services
from reports.models import Report

from ..factories import OrganizationFactory
from .conftest import ADMIN

pytestmark = pytest.mark.django_db


def generate_all(organization, start, end) -> dict[str, bytes]:
    report = services.request_report(organization=organization, actor=ADMIN, period_start=start, period_end=end,
                                     enqueue=False)
    report = services.generate_report(report.pk)
    assert report.status == Report.Status.DONE, report.error
    return {f.format: bytes(f.content) for f in report.files.all()}


@pytest.fixture
def files(org, month, after_the_month) -> dict[str, bytes]:
    return generate_all(org, month.start, month.end)


def pdftoppm():
    path = shutil.which("pdftoppm")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pdftoppm is missing: install Debian's poppler-utils")
        pytest.skip("pdftoppm is not installed (Debian package poppler-utils)")
    return path


def test_the_pdf_parses_back_and_renders_page_by_page(files, tmp_path):
    reader = PdfReader(io.BytesIO(files["pdf"]))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert reader.metadata.title.startswith("Compliance report — Acme")
    for heading in ("AI features and data sharing at the end of the period", "Policy changes in the period",
                    "Consent coverage at the end of the period", "Flows and violations in the period",
                    "Record of processing (GDPR Art. 30)", "Audit trail"):
        assert heading in text
    assert "eve@acme.example" in text and "Works council agreed" in text and "Sales pilot" in text
    assert "hal@acme.example" not in text  # came after the month

    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(files["pdf"])
    subprocess.run([pdftoppm(), "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == len(reader.pages) >= 3
    assert all(page.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for page in pages)


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.external = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if (tag == "script" and attrs.get("src")) or (tag == "link" and attrs.get("href")) or \
                (tag == "img" and not (attrs.get("src") or "").startswith("data:")):
            self.external.append((tag, attrs))


def test_the_html_is_one_self_contained_file_with_interactive_charts(files):
    html = files["html"].decode()
    parser = _Tags()
    parser.feed(html)
    assert parser.external == []  # nothing fetched: plotly.js and the styles are inside
    assert html.count("plotly.js v") == 1 and html.count("Plotly.newPlot(") == 5  # the library once, five charts
    assert html.index("plotly.js v") < html.index("Plotly.newPlot(")  # defined before the first chart draws
    assert parser.tags.count("table") >= 12
    assert "Works council agreed" in html and "eve@acme.example" in html
    assert "<script>alert" not in html


def test_the_csv_tables_say_what_the_json_says(files):
    doc = json.loads(files["json"])
    with zipfile.ZipFile(io.BytesIO(files["csv"])) as archive:
        assert archive.testzip() is None
        names = set(archive.namelist())
        assert {"processing_record.csv", "policy_changes.csv", "consent_by_group.csv", "violations_by_group.csv",
                "worst_accounts.csv", "exposure.csv", "audit.csv"} <= names

        def rows(name):
            return list(csv.DictReader(io.StringIO(archive.read(name).decode())))

        assert [(r["group_name"] or None, int(r["violations"])) for r in rows("exposure.csv")] == \
            [(c["group_name"], c["violations"]) for c in doc["violations"]["exposure"]]
        assert [r["account"] for r in rows("worst_accounts.csv")] == \
            [a["account"] for a in doc["violations"]["worst_accounts"]]
        assert len(rows("processing_record.csv")) == len(doc["processing_record"])
        assert {r["figure"]: r["value"] for r in rows("summary.csv")}["violations"] == "4"


def test_the_csv_zip_is_the_same_bytes_for_the_same_month(org, month, after_the_month):
    first = generate_all(org, month.start, month.end)
    second = generate_all(org, month.start, month.end)
    assert first["csv"] != b"" and _without_generation(first) == _without_generation(second)


def _without_generation(files):
    with zipfile.ZipFile(io.BytesIO(files["csv"])) as archive:
        return {name: archive.read(name) for name in archive.namelist() if name != "audit.csv"}


def test_an_organization_with_nothing_yet_still_gets_every_format(db):
    from datetime import date
    quiet = OrganizationFactory(slug="quiet", name="Quiet <Org> & Co")
    files = generate_all(quiet, date(2026, 1, 1), date(2026, 2, 1))
    assert files["pdf"].startswith(b"%PDF") and len(PdfReader(io.BytesIO(files["pdf"])).pages) >= 1
    assert "Quiet &lt;Org&gt; &amp; Co" in files["html"].decode()
    assert json.loads(files["json"])["summary"]["flows"] == 0
