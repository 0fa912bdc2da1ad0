"""The report's Plotly figures: from a report's content (plain data) to figures. No queries in here.

The flow and activity charts are the console's own builders (`flows.charts`); the consent and
group charts below exist only in the report.
"""
from datetime import date, datetime
from typing import NamedTuple

import plotly.graph_objects as go

from flows import charts as flow_charts
from flows.charts import FONT, GRANT, GRID, MUTED, PERMITTED, REVOKE, VIOLATION, empty, plain

NOT_FREE = "#e3a04f"
MISSING = "#c9ced6"
COVERAGE_SCALE = [[0, "#f4f6f8"], [0.5, "#9cc9b2"], [1, GRANT]]
STATES = (("freely_given", "Freely given", GRANT), ("not_freely_given", "Not freely given", NOT_FREE),
          ("stale", "Stale after a terms change", VIOLATION), ("revoked", "Revoked", REVOKE),
          ("missing", "None", MISSING))
MAX_GROUPS = 25


class Chart(NamedTuple):
    key: str
    title: str
    caption: str
    figure: go.Figure


def _layout(fig: go.Figure, *, height: int) -> go.Figure:
    fig.update_layout(template="none", font=FONT, height=height, paper_bgcolor="#fff", plot_bgcolor="#fff",
                      margin=dict(l=10, r=20, t=10, b=50), hoverlabel=dict(font=FONT, bgcolor="#fff"),
                      legend=dict(orientation="h", y=-0.12, x=0))
    return fig


def consent_by_use(rows: list[dict]) -> go.Figure:
    """Per use that needs individual consent and that some account consented to (or revoked): the governed
    accounts by the basis they hold.

    `rows` items: use, and a count per basis state (freely_given, not_freely_given, stale, revoked, missing).
    """
    rows = [row for row in rows if row["missing"] < row["accounts"]]
    if not rows:
        return empty("No account holds a consent, given or revoked, for any use that needs one.")
    names = [plain(row["use"]) for row in rows]
    fig = go.Figure()
    for key, name, colour in STATES:
        fig.add_bar(y=names, x=[row[key] for row in rows], name=name, orientation="h", marker_color=colour,
                    hovertemplate="%{y}: %{x:,} accounts " + name.lower() + "<extra></extra>")
    fig.update_layout(barmode="stack")
    fig.update_yaxes(autorange="reversed", automargin=True, ticksuffix="  ")
    fig.update_xaxes(gridcolor=GRID, title=dict(text="accounts", font=dict(color=MUTED)))
    return _layout(fig, height=140 + 26 * len(rows))


def coverage_by_group(rows: list[dict], groups: list[dict]) -> go.Figure:
    """Groups (rows, the largest first) x uses some account consented to (or revoked): the share of the
    group's accounts holding a valid consent.

    `rows` are the report's consent by group x use; `groups` its consent by group (for the sizes).
    """
    largest = [g for g in sorted(groups, key=lambda g: (-g["members"], g["name"])) if g["members"]][:MAX_GROUPS]
    uses = sorted({(r["data_category"], r["purpose"]) for r in rows if r["missing"] < r["accounts"]})
    if not largest or not uses:
        return empty("No account holds a consent, given or revoked, for any use that needs one.")
    cells = {(r["group_name"], r["data_category"], r["purpose"]): r for r in rows}
    z, text = [], []
    for group in largest:
        line, counts = [], []
        for use in uses:
            cell = cells.get((group["name"], *use))
            line.append(cell["coverage"] if cell else None)
            counts.append(f"{cell['freely_given'] + cell['not_freely_given']} of {cell['accounts']}" if cell else "")
        z.append(line), text.append(counts)
    fig = go.Figure(go.Heatmap(
        z=z, x=[plain(f"{c} → {p}") for c, p in uses], y=[plain(f"{g['name']} ({g['members']})") for g in largest],
        zmin=0, zmax=1, colorscale=COVERAGE_SCALE, xgap=2, ygap=2, customdata=text, texttemplate="%{z:.0%}",
        textfont=dict(size=10), colorbar=dict(tickformat=".0%", thickness=10, len=0.8, outlinewidth=0),
        hovertemplate="%{y} · %{x}<br>%{z:.0%} hold a valid consent (%{customdata})<extra></extra>"))
    fig.update_yaxes(autorange="reversed", automargin=True, ticksuffix="  ")
    fig.update_xaxes(side="top", tickangle=-35, automargin=True)
    return _layout(fig, height=160 + 26 * len(largest))


def violations_by_group(rows: list[dict]) -> go.Figure:
    """The groups with the most violations: flows touching their accounts, permitted and violating."""
    rows = [r for r in rows if r["flows"]][:MAX_GROUPS]
    if not rows:
        return empty("No flows were reported in this period.")
    names = [plain(r["name"]) for r in rows]
    fig = go.Figure()
    fig.add_bar(y=names, x=[r["violations"] for r in rows], name="Violations", orientation="h",
                marker_color=VIOLATION, hovertemplate="%{y}: %{x:,} violations<extra></extra>")
    fig.add_bar(y=names, x=[r["flows"] - r["violations"] for r in rows], name="Permitted", orientation="h",
                marker_color=PERMITTED, hovertemplate="%{y}: %{x:,} permitted<extra></extra>")
    fig.update_layout(barmode="stack")
    fig.update_yaxes(autorange="reversed", automargin=True, ticksuffix="  ")
    fig.update_xaxes(gridcolor=GRID, title=dict(text="flows", font=dict(color=MUTED)))
    return _layout(fig, height=140 + 26 * len(rows))


def report_charts(content: dict) -> list[Chart]:
    """Every chart of a report, in the order the HTML shows them (the first one carries plotly.js)."""
    names = content["catalog"]
    flows = content["violations"]
    consent = content["consent"]
    daily_consent = {d["day"]: d for d in consent["activity"]["daily"]}
    days = [d["day"] for d in flows["daily"]]
    terms = [{"version": t["version"], "effective_at": datetime.fromisoformat(t["effective_at"]),
              "requires_reconsent": t["requires_reconsent"]} for t in content["terms"] if t["in_period"]]
    return [
        Chart("consent_by_use", "Consent basis per use", "Governed accounts by the basis they hold at the period's end.",
              consent_by_use(consent["by_use"])),
        Chart("coverage_by_group", "Consent coverage by group",
              "Share of each group's accounts holding a valid consent, per use (largest groups).",
              coverage_by_group(consent["by_group_use"], consent["by_group"])),
        Chart("activity", "Consent and violations per day",
              "Consents granted (up) and revoked (down), flow violations (line); terms versions as dotted lines.",
              flow_charts.activity_timeline(
                  [date.fromisoformat(d) for d in days],
                  [daily_consent.get(d, {}).get("grant", 0) for d in days],
                  [daily_consent.get(d, {}).get("revoke", 0) for d in days],
                  [d["violations"] for d in flows["daily"]], terms)),
        Chart("flows", "Where the data went",
              "Data categories → purposes → destinations, weighted by volume; violations in red.",
              flow_charts.exposure_sankey(
                  flows["cells"], category_names={k: v["name"] for k, v in names["data_categories"].items()},
                  category_kinds={k: v["kind"] for k, v in names["data_categories"].items()},
                  purpose_names={k: v["name"] for k, v in names["purposes"].items()})),
        Chart("violations_by_group", "Violations by group",
              "Flows touching each group's accounts (a flow counts in every group it touches).",
              violations_by_group(flows["by_group"])),
    ]
