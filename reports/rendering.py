"""A report's content rendered to its formats: JSON, CSV tables in a zip, a self-contained HTML file
(and, in `reports.pdf`, a PDF). Pure functions of the content: no queries in here."""
import io
import zipfile
from datetime import date
from typing import NamedTuple

import orjson
import plotly.io as pio
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from config import spreadsheets

from .charts import report_charts
from .models import Format

# Tables longer than this are cut in HTML and PDF (with a note); CSV and JSON always hold every row.
DISPLAY_ROWS = 500


class Rendered(NamedTuple):
    format: str
    filename: str
    content_type: str
    content: bytes


def base_name(document: dict) -> str:
    period = document["period"]
    return f"report-{document['organization']['slug']}-{period['start']}-to-{period['last_day']}"


def render_json(document: dict) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def _cell(value):
    """A value as one CSV cell: numbers stay numbers (the writer neutralizes text, not them)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return ";".join(str(_cell(v)) for v in value)
    if isinstance(value, dict):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return str(value)


def _rows(items: list[dict], columns: list[str] | None = None) -> tuple[list[str], list[list]]:
    columns = columns or (list(items[0]) if items else [])
    return columns, [[_cell(item.get(column)) for column in columns] for item in items]


def tables(document: dict) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Every table of the report, by file name: (header, rows)."""
    switches, consent, flows = document["switches"], document["consent"], document["violations"]
    digest = document["audit"]["digest"] or {}
    chain = document["audit"]["chain"]
    group_switches = [{"group": g["group"], "group_name": g["name"], **d} for g in switches["groups"]
                      for d in g["differences"]]
    audit_rows = ([{"item": f"digest.{k}", "value": v} for k, v in digest.items()]
                  + [{"item": f"events_in_period.{k}", "value": v}
                     for k, v in document["audit"]["events_in_period"].items()]
                  + [{"item": f"chain.{k}", "value": v} for k, v in chain.items()])
    return {
        "summary.csv": _rows([{"figure": k, "value": v} for k, v in document["summary"].items()]),
        "features.csv": _rows(switches["features"]),
        "data_sharing.csv": _rows(switches["data_sharing"]),
        "group_switches.csv": _rows(group_switches, ["group", "group_name", "target", "feature", "data_category",
                                                     "purpose", "effect", "organization_effect", "decided_by",
                                                     "locked", "rules", "reason"]),
        "rules_in_force.csv": _rows(switches["rules"], ["id", "scope", "group", "group_name", "account", "feature",
                                                        "data_category", "purpose", "effect", "locked", "reason"]),
        "policy_changes.csv": _rows(document["policy_changes"], [
            "seq", "occurred_at", "actor", "actor_kind", "action", "rule", "scope", "group_name", "account", "target",
            "effect_before", "effect_after", "locked_before", "locked_after", "expires_at", "reason"]),
        "terms_versions.csv": _rows(document["terms"], ["version", "effective_at", "requires_reconsent", "in_period",
                                                        "covers"]),
        "consent_by_use.csv": _rows(consent["by_use"]),
        "consent_by_group.csv": _rows(consent["by_group"]),
        "consent_by_group_use.csv": _rows(consent["by_group_use"]),
        "consent_activity.csv": _rows(consent["activity"]["by_mechanism"], ["mechanism", "grant", "revoke"]),
        "flows_daily.csv": _rows(flows["daily"], ["day", "flows", "violations"]),
        "violations_by_category.csv": _rows(flows["by_category"]),
        "violations_by_purpose.csv": _rows(flows["by_purpose"]),
        "violations_by_destination.csv": _rows(flows["by_destination"]),
        "violations_by_group.csv": _rows(flows["by_group"]),
        "flows_by_use.csv": _rows(flows["cells"]),
        "exposure.csv": _rows(flows["exposure"]),
        "worst_accounts.csv": _rows(flows["worst_accounts"], ["account", "display_name", "groups", "violations",
                                                              "volume"]),
        "processing_record.csv": _rows(document["processing_record"]),
        "audit.csv": _rows(audit_rows, ["item", "value"]),
    }


def render_csv_zip(document: dict) -> bytes:
    """The tables as CSV files (UTF-8, RFC 4180, a header line each) in one zip, the same bytes for the same
    content. Every cell goes through `config.spreadsheets`: a name like `=HYPERLINK(…)` opens as text."""
    stamp = date.fromisoformat(document["period"]["end"]).timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, (header, rows) in tables(document).items():
            text = io.StringIO()
            writer = spreadsheets.Writer(text)
            writer.writerow(header)
            writer.writerows(rows)
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.getvalue().encode())
    return buffer.getvalue()


def render_html(document: dict) -> bytes:
    """One HTML file holding everything: styles, data, and plotly.js inlined once for interactive charts."""
    charts = []
    for position, chart in enumerate(report_charts(document)):
        html = pio.to_html(chart.figure, include_plotlyjs=position == 0, full_html=False,
                           div_id=f"chart-{chart.key}", config={"displaylogo": False, "responsive": True})
        charts.append({"key": chart.key, "title": chart.title, "caption": chart.caption, "html": mark_safe(html)})
    context = {"doc": document, "charts": {c["key"]: c for c in charts}, "limit": DISPLAY_ROWS}
    return render_to_string("reports/report.html", context).encode()


def render(document: dict, formats: list[str]) -> list[Rendered]:
    from .pdf import render_pdf  # reportlab is imported only where a PDF is made

    name = base_name(document)
    makers = {
        Format.JSON: (f"{name}.json", "application/json", render_json),
        Format.CSV: (f"{name}-tables.zip", "application/zip", render_csv_zip),
        Format.HTML: (f"{name}.html", "text/html; charset=utf-8", render_html),
        Format.PDF: (f"{name}.pdf", "application/pdf", render_pdf),
    }
    return [Rendered(fmt, filename, content_type, make(document))
            for fmt, (filename, content_type, make) in makers.items() if fmt in formats]
