"""Names, reasons and destinations that look like spreadsheet formulas reach the report's CSV files as
text: opened in Excel, LibreOffice Calc or Google Sheets, none of them runs, and the numbers stay numbers."""
import csv
import io
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import services as accounts
from governance import services as governance
from reports import services
from reports.models import Report

from .conftest import ADMIN, TRAINING, catalog, send_flows

pytestmark = pytest.mark.django_db

PAYLOADS = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-2+3", "@SUM(1+1)", "\t=1+1", "\r=1+1",
            "\uff1dHYPERLINK(\"http://evil.example\")"]  # the last: a full-width equals sign
# What a spreadsheet takes for the start of a formula (OWASP's list, and the full-width forms)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def as_a_spreadsheet_reads(cell: str) -> tuple[str, object]:
    """A CSV cell as a spreadsheet takes it: a number, a formula, or text (a leading apostrophe marks text
    and is not part of it)."""
    if cell.startswith("'"):
        return "text", cell[1:]
    try:
        return "number", float(cell)  # "-2" is the number -2, not a formula
    except ValueError:
        pass
    if cell.startswith(FORMULA_STARTS):
        return "formula", cell
    return "text", cell


def destination(payload: str) -> str:
    """A destination holds no control character (the API refuses it): "\t=1+1" arrives as "=1+1"."""
    return payload.lstrip("\t\r")


@pytest.fixture
def sheets(org) -> dict[str, list[dict]]:
    """A report of today in an organization where every name, reason and destination is a formula."""
    for n, payload in enumerate(PAYLOADS):
        group = accounts.create_group(organization=org, actor=ADMIN, display_name=payload)
        accounts.create_account(organization=org, actor=ADMIN, user_name=f"p{n}@acme.example", display_name=payload,
                                groups=[group])
        governance.set_rule(organization=org, actor=ADMIN, scope="group", group=group, effect="deny", reason=payload,
                            **catalog("meeting_summary"))
    occurred = timezone.now()  # after each account joined its group
    send_flows(org, *[{"flow_id": f"f{n}", "accounts": [f"p{n}@acme.example"],
                       "destination": destination(payload),
                       "data_category": TRAINING[0], "purpose": TRAINING[1], "occurred_at": occurred.isoformat(),
                       "volume": n + 1}
                      for n, payload in enumerate(PAYLOADS)])
    report = services.request_report(organization=org, actor=ADMIN, period_start=occurred.date(),
                                     period_end=timezone.now().date() + timedelta(days=1), formats=["csv"],
                                     enqueue=False)
    report = services.generate_report(report.pk)
    assert report.status == Report.Status.DONE, report.error
    with zipfile.ZipFile(io.BytesIO(bytes(report.files.get().content))) as archive:
        return {name: list(csv.reader(io.StringIO(archive.read(name).decode(), newline="")))
                for name in archive.namelist()}


def column(sheet: list[list[str]], name: str) -> list[tuple[str, object]]:
    header, *rows = sheet
    return [as_a_spreadsheet_reads(row[header.index(name)]) for row in rows]


def test_no_cell_of_any_table_is_read_as_a_formula(sheets):
    formulas = [(name, cell) for name, sheet in sheets.items() for row in sheet for cell in row
                if as_a_spreadsheet_reads(cell)[0] == "formula"]
    assert formulas == []


@pytest.mark.parametrize("table, field", [
    ("exposure.csv", "group_name"), ("violations_by_group.csv", "name"), ("consent_by_group.csv", "name"),
    ("rules_in_force.csv", "group_name"), ("rules_in_force.csv", "reason"), ("group_switches.csv", "reason"),
    ("policy_changes.csv", "reason"), ("violations_by_destination.csv", "destination"),
    ("worst_accounts.csv", "display_name"), ("worst_accounts.csv", "groups"),
])
def test_each_name_reads_back_as_the_text_it_was_given(sheets, table, field):
    given = {destination(p) for p in PAYLOADS} if field == "destination" else set(PAYLOADS)
    assert given <= {value for kind, value in column(sheets[table], field) if kind == "text"}


def test_numbers_stay_numbers(sheets):
    assert sorted(value for _, value in column(sheets["worst_accounts.csv"], "volume")) == \
        [float(n + 1) for n in range(len(PAYLOADS))]
    assert all(kind == "number" for kind, _ in column(sheets["worst_accounts.csv"], "violations"))
    assert all(cell == str(int(float(cell))) for row in sheets["flows_daily.csv"][1:] for cell in row[1:])
