"""The report as a PDF (reportlab), from the same content as the other formats. No queries in here.

Charts are drawn with reportlab's own vector graphics: Plotly's static export needs a browser
(kaleido drives Chrome), which a worker should not need.
"""
import io
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab import rl_config
from reportlab.graphics.charts.barcharts import HorizontalBarChart, VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (CondPageBreak, KeepTogether, Paragraph, SimpleDocTemplate, Spacer,
                                Table, TableStyle)

from .rendering import DISPLAY_ROWS

INK = colors.HexColor("#1d2330")
MUTED = colors.HexColor("#5a6275")
LINE = colors.HexColor("#e4e7ec")
SHADE = colors.HexColor("#f4f6f8")
GOOD = colors.HexColor("#2e7d5b")
BAD = colors.HexColor("#c0392b")
WARN = colors.HexColor("#b9770e")
NOT_FREE = colors.HexColor("#e3a04f")
NONE = colors.HexColor("#c9ced6")
PERMITTED = colors.HexColor("#4c72b0")
WIDTH = A4[0] - 30 * mm

# A TrueType font with wide Unicode coverage: names and reasons are free text in any script.
FONT_CANDIDATES = [
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    (str(Path(rl_config.__file__).parent / "fonts" / "Vera.ttf"),
     str(Path(rl_config.__file__).parent / "fonts" / "VeraBd.ttf")),
]


def _fonts() -> tuple[str, str]:
    if "Report" not in pdfmetrics.getRegisteredFontNames():
        regular, bold = next((r, b) for r, b in FONT_CANDIDATES if Path(r).exists() and Path(b).exists())
        pdfmetrics.registerFont(TTFont("Report", regular))
        pdfmetrics.registerFont(TTFont("Report-Bold", bold))
        pdfmetrics.registerFontFamily("Report", normal="Report", bold="Report-Bold", italic="Report",
                                      boldItalic="Report-Bold")
    return "Report", "Report-Bold"


def _styles(font: str, bold: str) -> dict[str, ParagraphStyle]:
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12, textColor=INK, spaceAfter=4)
    return {
        "title": ParagraphStyle("title", parent=body, fontName=bold, fontSize=20, leading=24, spaceAfter=2),
        "subtitle": ParagraphStyle("subtitle", parent=body, textColor=MUTED, fontSize=10, spaceAfter=10),
        "h2": ParagraphStyle("h2", parent=body, fontName=bold, fontSize=13, leading=16, spaceBefore=12, spaceAfter=4),
        "h3": ParagraphStyle("h3", parent=body, fontName=bold, fontSize=10, leading=13, spaceBefore=8, spaceAfter=3),
        "body": body,
        "note": ParagraphStyle("note", parent=body, textColor=MUTED, fontSize=8, leading=10),
        "cell": ParagraphStyle("cell", parent=body, fontSize=7.5, leading=9, spaceAfter=0),
        "num": ParagraphStyle("num", parent=body, fontSize=7.5, leading=9, spaceAfter=0, alignment=TA_RIGHT),
        "head": ParagraphStyle("head", parent=body, fontName=bold, fontSize=7.5, leading=9, spaceAfter=0),
    }


def as_of_phrase(period: dict) -> str:
    if period["closed"]:
        return f"switches and consent as they stood at the end of {period['last_day']}"
    return f"still open: switches and consent as of {period['as_of'][:16].replace('T', ' ')} UTC"


def _n(value) -> str:
    return "" if value is None else f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _pct(value) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


class _Builder:
    def __init__(self, document: dict):
        self.doc = document
        self.font, self.bold = _fonts()
        self.s = _styles(self.font, self.bold)
        self.story = []

    # -- building blocks --
    def p(self, text: str, style: str = "body"):
        self.story.append(Paragraph(text, self.s[style]))

    def h2(self, text: str):
        self.story.append(CondPageBreak(40 * mm))
        self.p(escape(text), "h2")

    def h3(self, text: str):
        self.story.append(CondPageBreak(25 * mm))
        self.p(escape(text), "h3")

    def table(self, header: list[str], rows: list[list], widths: list[float], numeric: set[int] = frozenset(),
              limit: int = DISPLAY_ROWS, what: str = "rows"):
        """A table of text cells (escaped here) that wraps and repeats its header on every page."""
        shown = rows[:limit]
        data = [[Paragraph(escape(h), self.s["head"]) for h in header]]
        for row in shown:
            data.append([Paragraph(escape(_n(value)), self.s["num" if i in numeric else "cell"])
                         for i, value in enumerate(row)])
        if not shown:
            data.append([Paragraph("none", self.s["note"])] + [""] * (len(header) - 1))
        total = sum(widths)
        table = Table(data, colWidths=[WIDTH * w / total for w in widths], repeatRows=1)
        table.setStyle(TableStyle([
            ("BACKGROUND", (0, 0), (-1, 0), SHADE), ("LINEBELOW", (0, 0), (-1, -1), 0.25, LINE),
            ("VALIGN", (0, 0), (-1, -1), "TOP"), ("TOPPADDING", (0, 0), (-1, -1), 2),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2), ("LEFTPADDING", (0, 0), (-1, -1), 3),
            ("RIGHTPADDING", (0, 0), (-1, -1), 3)]))
        self.story.append(table)
        if len(rows) > limit:
            self.p(f"The first {limit:,} of {len(rows):,} {what}; all are in the CSV and JSON files.", "note")
        self.story.append(Spacer(1, 4))

    def chart(self, drawing: Drawing):
        self.story.append(KeepTogether([drawing, Spacer(1, 6)]))

    # -- charts --
    def _title(self, drawing: Drawing, text: str):
        drawing.add(String(0, drawing.height - 10, text, fontName=self.bold, fontSize=9, fillColor=INK))

    def _legend(self, drawing: Drawing, items: list[tuple], x: float, y: float):
        legend = Legend()
        legend.x, legend.y = x, y
        legend.fontName, legend.fontSize = self.font, 7
        legend.alignment = "right"
        legend.columnMaximum = 1
        legend.dx = legend.dy = 6
        legend.deltax = 60
        legend.dxTextSpace = 4
        legend.colorNamePairs = items
        drawing.add(legend)

    def daily_chart(self) -> Drawing:
        daily = self.doc["violations"]["daily"]
        grants = {d["day"]: d["grant"] for d in self.doc["consent"]["activity"]["daily"]}
        drawing = Drawing(WIDTH, 150)
        self._title(drawing, "Violations and consents granted per day")
        chart = VerticalBarChart()
        chart.x, chart.y, chart.width, chart.height = 30, 30, WIDTH - 40, 90
        chart.data = [[d["violations"] for d in daily] or [0], [grants.get(d["day"], 0) for d in daily] or [0]]
        chart.bars[0].fillColor, chart.bars[1].fillColor = BAD, GOOD
        chart.bars.strokeWidth = 0
        chart.groupSpacing, chart.barSpacing = 1, 0
        chart.categoryAxis.categoryNames = [d["day"][5:] if i % 7 == 0 else "" for i, d in enumerate(daily)] or [""]
        chart.categoryAxis.labels.fontName = chart.valueAxis.labels.fontName = self.font
        chart.categoryAxis.labels.fontSize = chart.valueAxis.labels.fontSize = 6.5
        chart.categoryAxis.labels.boxAnchor = "n"
        chart.valueAxis.valueMin = 0
        chart.valueAxis.gridStrokeColor, chart.valueAxis.visibleGrid = LINE, True
        drawing.add(chart)
        self._legend(drawing, [(BAD, "flow violations"), (GOOD, "consents granted")], 30, 8)
        return drawing

    def stacked_bars(self, title: str, names: list[str], series: list[tuple[str, colors.Color, list[int]]]) -> Drawing:
        label_width = 150
        height = 50 + 14 * max(len(names), 1)
        drawing = Drawing(WIDTH, height)
        self._title(drawing, title)
        chart = HorizontalBarChart()
        chart.x, chart.y = label_width, 28
        chart.width, chart.height = WIDTH - label_width - 10, height - 48
        chart.data = [values or [0] for _, _, values in series]
        for i, (_, colour, _) in enumerate(series):
            chart.bars[i].fillColor = colour
        chart.bars.strokeWidth = 0
        chart.categoryAxis.style = "stacked"
        chart.categoryAxis.reverseDirection = True
        chart.categoryAxis.categoryNames = [name if len(name) <= 40 else name[:39] + "…" for name in names] or [""]
        chart.categoryAxis.labels.fontName = chart.valueAxis.labels.fontName = self.font
        chart.categoryAxis.labels.fontSize = chart.valueAxis.labels.fontSize = 6.5
        chart.categoryAxis.labels.boxAnchor = "e"
        chart.categoryAxis.labels.dx = -3
        chart.valueAxis.valueMin = 0
        chart.valueAxis.gridStrokeColor, chart.valueAxis.visibleGrid = LINE, True
        drawing.add(chart)
        self._legend(drawing, [(colour, name) for name, colour, _ in series], label_width, 8)
        return drawing

    # -- sections --
    def build(self) -> list:
        doc, s = self.doc, self.s
        period, summary, chain = doc["period"], doc["summary"], doc["audit"]["chain"]
        self.p(f"Compliance report — {escape(doc['organization']['name'])}", "title")
        self.p(f"Period {escape(period['label'])} (UTC) · {escape(as_of_phrase(period))} · generated "
               f"{doc['generated']['at'][:19].replace('T', ' ')} UTC", "subtitle")
        figures = [
            ("Governed accounts", summary["accounts"]), ("Groups", summary["groups"]),
            ("AI features on (organization)", summary["features_on"]), ("Rules in force", summary["rules_in_force"]),
            ("Policy changes in the period", summary["policy_changes"]), ("Flows observed", summary["flows"]),
            ("Violations", summary["violations"]), ("Accounts blocking flows", summary["violating_accounts"]),
            ("Consents freely given", summary["consents_freely_given"]),
            ("Consents not freely given", summary["consents_not_freely_given"]),
            ("Consents stale after a terms change", summary["consents_stale"]),
            ("Audit chain", "valid" if chain["valid"] else f"BROKEN at seq {chain['first_invalid_seq']}"),
        ]
        half = (len(figures) + 1) // 2
        rows = [[a[0], _n(a[1]), *(b if b else ("", ""))] for a, b in
                zip(figures[:half], figures[half:] + [None] * (2 * half - len(figures)))]
        self.table(["Figure", "", "Figure", ""], [[r[0], r[1], r[2], _n(r[3])] for r in rows], [3, 1.2, 3, 1.2],
                   numeric={1, 3})

        self.h2("1. AI features and data sharing at the end of the period")
        self.p("The effective value for the organization as a whole (an account in no group, without rules of its "
               "own) and the level that decided it.", "note")
        sw = doc["switches"]
        self.h3("AI features")
        self.table(["Feature", "Effective", "Decided by", "Rules", "Reason", "Groups on", "Groups off"],
                   [[f["name"], f["effect"] + (" (locked)" if f["locked"] else ""), f["decided_by"],
                     " ".join(f"#{r}" for r in f["rules"]), f["reason"], f["groups_allowing"], f["groups_denying"]]
                    for f in sw["features"]], [3, 1.6, 1.6, 1.2, 4, 1, 1], numeric={5, 6})
        shown = [r for r in sw["data_sharing"] if r["effect"] == "allow" or r["rules"] or r["groups_allowing"]]
        self.h3("Data sharing allowed, or set by a rule")
        self.table(["Use", "Effective", "Decided by", "Rules", "Reason", "Consent", "Groups on"],
                   [[r["target"], r["effect"] + (" (locked)" if r["locked"] else ""),
                     r["decided_by"] + (f" ({', '.join(r['enabled_by'])})" if r["enabled_by"] else ""),
                     " ".join(f"#{x}" for x in r["rules"]), r["reason"], "required" if r["needs_consent"] else "",
                     r["groups_allowing"]] for r in shown], [4, 1.5, 2, 1.1, 3.4, 1.2, 1.2], numeric={6})
        self.p(f"{len(sw['data_sharing']) - len(shown)} other uses are denied by the catalog default.", "note")
        differences = [[g["name"], d["target"], d["effect"] + (" (locked)" if d["locked"] else ""),
                        d["organization_effect"], " ".join(f"#{r}" for r in d["rules"]), d["reason"]]
                       for g in sw["groups"] for d in g["differences"]]
        self.h3("Groups that differ from the organization")
        self.table(["Group", "Switch", "Group value", "Organization", "Rules", "Reason"], differences,
                   [2, 4, 1.6, 1.4, 1.2, 3.5], what="group switches")

        self.h2(f"2. Policy changes in the period ({len(doc['policy_changes']):,})")
        self.table(["Seq", "When (UTC)", "Who", "What", "Switch", "Subject", "Effect", "Why"],
                   [[str(c["seq"]), c["occurred_at"][:16].replace("T", " "), c["actor"], f"{c['action']} #{c['rule']}",
                     c["target"], f"{c['scope']} {c['group_name']}{c['account']}".strip(),
                     f"{c['effect_before'] or '—'} → {c['effect_after'] or 'deleted'}", c["reason"]]
                    for c in doc["policy_changes"]], [1.0, 1.7, 2.2, 1.4, 3, 1.8, 1.5, 2.9], numeric={0},
                   what="changes")
        if doc["terms"]:
            self.h3("Vendor terms versions in force")
            self.table(["Version", "Effective", "Re-consent", "Newly covers"],
                       [[t["version"], t["effective_at"][:10], "required" if t["requires_reconsent"] else "",
                         ", ".join(t["covers"])] for t in doc["terms"]], [1.5, 1.5, 1.2, 6])

        consent = doc["consent"]
        self.h2("3. Consent coverage at the end of the period")
        activity = consent["activity"]
        self.p("Consents given by an admin on someone's behalf or through a join-or-leave prompt are a basis but not "
               "freely given; consents predating a terms version that requires re-consent are stale and no basis. "
               f"In the period: {activity['grants']:,} grants ({activity['grants_not_freely_given']:,} not freely "
               f"given), {activity['revocations']:,} revocations.", "note")
        by_use = consent["by_use"]
        held = [u for u in by_use if u["missing"] < u["accounts"]] or by_use
        self.chart(self.stacked_bars("Accounts by consent basis, per use held by anyone", [u["use"] for u in held], [
            ("freely given", GOOD, [u["freely_given"] for u in held]),
            ("not freely given", NOT_FREE, [u["not_freely_given"] for u in held]),
            ("stale", BAD, [u["stale"] for u in held]), ("revoked", WARN, [u["revoked"] for u in held]),
            ("none", NONE, [u["missing"] for u in held])]))
        self.table(["Use", "Freely given", "Not freely given", "Stale", "Revoked", "None", "Coverage"],
                   [[u["use"], u["freely_given"], u["not_freely_given"], u["stale"], u["revoked"], u["missing"],
                     _pct(u["coverage"])] for u in by_use], [5, 1.2, 1.2, 1, 1, 1, 1.1], numeric={1, 2, 3, 4, 5, 6})
        self.h3("By group (account × use)")
        self.table(["Group", "Members", "Freely given", "Not freely given", "Stale", "Revoked", "None", "Coverage"],
                   [[g["name"], g["members"], g["freely_given"], g["not_freely_given"], g["stale"], g["revoked"],
                     g["missing"], _pct(g["coverage"])] for g in consent["by_group"]],
                   [3.5, 1, 1.2, 1.2, 1, 1, 1, 1.1], numeric={1, 2, 3, 4, 5, 6, 7}, what="groups")

        flows = doc["violations"]
        self.h2("4. Flows and violations in the period")
        self.p(f"{flows['flows']:,} flows observed, {flows['violations']:,} without a valid basis, blocked by "
               f"{flows['violating_accounts']:,} accounts.", "body")
        self.chart(self.daily_chart())
        for title, rows, key in (("By data category", flows["by_category"], "name"),
                                 ("By purpose", flows["by_purpose"], "name"),
                                 ("By destination", flows["by_destination"], "destination")):
            self.h3(title)
            self.table(["", "Flows", "Violations", "Volume", "Violating volume"],
                       [[r[key], r["flows"], r["violations"], r["volume"], r["violation_volume"]] for r in rows],
                       [5, 1.3, 1.3, 1.6, 1.6], numeric={1, 2, 3, 4})
        groups = [g for g in flows["by_group"] if g["flows"]][:15]
        self.h3("By group")
        if groups:
            self.chart(self.stacked_bars("Flows touching each group's accounts (top 15)", [g["name"] for g in groups],
                                         [("violations", BAD, [g["violations"] for g in groups]),
                                          ("permitted", PERMITTED, [g["flows"] - g["violations"] for g in groups])]))
        self.table(["Group", "Flows", "Violations", "Volume", "Violating volume"],
                   [[g["name"], g["flows"], g["violations"], g["volume"], g["violation_volume"]]
                    for g in flows["by_group"]], [5, 1.3, 1.3, 1.6, 1.6], numeric={1, 2, 3, 4}, what="groups")
        self.p("A flow carrying the data of accounts in several groups counts once in each.", "note")
        self.h3("Accounts blocking the most flows")
        self.table(["Account", "Name", "Groups", "Violations", "Volume"],
                   [[a["account"], a["display_name"], ", ".join(a["groups"]), a["violations"], a["volume"]]
                    for a in flows["worst_accounts"]], [3.5, 2.5, 3, 1.2, 1.2], numeric={3, 4})

        self.h2("5. Record of processing (GDPR Art. 30)")
        self.p("Each use allowed for the organization or a group at the end of the period, and each use observed in "
               "the period, with its destinations and its basis.", "note")
        self.table(["Data category", "Purpose", "Destination", "Org.", "Basis", "Flows", "Violations"],
                   [[r["category_name"], r["purpose_name"], r["destination"] or "none observed",
                     r["organization_effect"], f"{r['basis']}: {r['basis_detail']}", r["flows"], r["violations"]]
                    for r in doc["processing_record"]], [2.1, 2.1, 2.1, 0.9, 4.8, 1.3, 1.3], numeric={5, 6})

        self.h2("6. Audit trail")
        verdict = (f"valid, {chain['events_checked']:,} events" if chain["valid"] else
                   f"INVALID{' at seq ' + str(chain['first_invalid_seq']) if chain['first_invalid_seq'] else ''}: "
                   f"{escape(chain['problem'])}")
        self.p(f"Hash chain from {chain['from']} to {chain['to']} (seq {chain['first_seq']:,} to "
               f"{chain['last_seq']:,}), recomputed link by link, and {chain['digests_checked']:,} signed digests "
               f"checked: {verdict}.")
        digest = doc["audit"]["digest"]
        if digest:
            self.table(["Signed digest covering the end of the period", ""], [
                ["Signature", ("verified" if digest["signature_valid"] else "NOT verified") + f" ({digest['algorithm']})"],
                ["Period", f"{digest['period_start'] or 'the start of the chain'} → {digest['period_end']}"],
                ["Events", f"seq {digest['first_seq'] or '—'} to {digest['last_seq']} ({digest['event_count']:,})"],
                ["Head hash", digest["head_hash"]], ["Key fingerprint", digest["key_fingerprint"]],
                ["Signature value", digest["signature"]]], [2, 6])
        else:
            self.p("No signed digest covers the end of the period yet.", "note")
        self.h3("Audit events recorded in the period")
        self.table(["Kind", "Events"], [[k, n] for k, n in doc["audit"]["events_in_period"].items()], [4, 1],
                   numeric={1})
        return self.story


def render_pdf(document: dict) -> bytes:
    buffer = io.BytesIO()
    builder = _Builder(document)
    title = f"Compliance report — {document['organization']['name']} — {document['period']['label']}"

    def page(canvas, template):
        canvas.saveState()
        canvas.setFont(builder.font, 7)
        canvas.setFillColor(MUTED)
        canvas.drawString(15 * mm, 10 * mm, title)
        canvas.drawRightString(A4[0] - 15 * mm, 10 * mm, f"page {template.page}")
        canvas.restoreState()

    pdf = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=14 * mm,
                            bottomMargin=16 * mm, title=title, author=document["organization"]["name"],
                            subject="Compliance report", creator="Consent & AI-data governance console",
                            invariant=True)
    pdf.build(builder.build(), onFirstPage=page, onLaterPages=page)
    return buffer.getvalue()
