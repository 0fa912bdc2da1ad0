"""Plotly figure builders: plain data from the selectors in, a `plotly.graph_objects.Figure` out.

No queries in here: the console embeds `fig.to_json()`, and a report can call the same functions.
Every name that comes from outside (groups, organizations, catalog entries, destinations, terms
versions) goes into a figure through `plain`, so Plotly shows it as typed instead of reading it as markup.
"""
from datetime import date, datetime, timedelta

import plotly.graph_objects as go

INK = "#1d2330"
MUTED = "#5a6275"
GRID = "#e4e7ec"
PERMITTED = "#4c72b0"
VIOLATION = "#c0392b"
GRANT = "#2e7d5b"
REVOKE = "#b9770e"
CONTENT = "#3d5a80"
GENERATED = "#7d8597"
PURPOSE = "#6c5b7b"
DESTINATION = "#495057"
EXPOSURE_SCALE = [[0, "#f4f6f8"], [0.25, "#f6d5b8"], [0.6, "#e3894f"], [1, "#a33b20"]]
FONT = dict(family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size=12, color=INK)
_PSEUDO_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def plain(text) -> str:
    """`text` for a Plotly label, title, tick, legend or hover text, shown exactly as typed.

    Plotly reads a subset of HTML in all of them (<a href>, <b>, <br>, <span style>, &entities;), so
    a group named `<a href="https://evil.example">x</a>` would be a live link; escaped, it is text.
    """
    return str(text).translate(_PSEUDO_HTML)


def _layout(fig: go.Figure, *, height: int, **extra) -> go.Figure:
    fig.update_layout(template="none", font=FONT, height=height, paper_bgcolor="#fff", plot_bgcolor="#fff",
                      margin=dict(l=10, r=10, t=10, b=10), hoverlabel=dict(font=FONT, bgcolor="#fff"), **extra)
    return fig


def _rgba(hex_colour: str, alpha: float) -> str:
    red, green, blue = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def empty(message: str, *, height: int = 220) -> go.Figure:
    """A blank figure saying why there is nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font=dict(size=14, color=MUTED), x=0.5, y=0.5,
                       xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, height=height)


def exposure_sankey(cells: list[dict], *, category_names: dict[str, str], category_kinds: dict[str, str],
                    purpose_names: dict[str, str]) -> go.Figure:
    """Data categories -> purposes -> destinations, weighted by flow volume; violations drawn in red.

    `cells` are the rows of `flows.selectors.exposure`: data_category, purpose, destination,
    flows, volume, violations, violation_volume.
    """
    if not cells:
        return empty("No flows were reported in this period.", height=420)
    # weight by volume; a reporter that sends no volume still counts its flows
    use_volume = any(cell["volume"] for cell in cells)
    links: dict[tuple[str, str, bool], list[float]] = {}

    def add(source: str, target: str, violation: bool, weight: float, flows: int) -> None:
        if weight <= 0 and flows <= 0:
            return
        entry = links.setdefault((source, target, violation), [0, 0])
        entry[0] += weight
        entry[1] += flows

    for cell in cells:
        category, purpose = f"c:{cell['data_category']}", f"p:{cell['purpose']}"
        destination = f"d:{cell['destination']}"
        bad_flows, all_flows = cell["violations"], cell["flows"]
        bad = cell["violation_volume"] if use_volume else bad_flows
        total = cell["volume"] if use_volume else all_flows
        for source, target in ((category, purpose), (purpose, destination)):
            add(source, target, False, total - bad, all_flows - bad_flows)
            add(source, target, True, bad, bad_flows)

    keys = sorted({k for source, target, _ in links for k in (source, target)},
                  key=lambda k: ("cpd".index(k[0]), k))
    index = {key: i for i, key in enumerate(keys)}

    def label(key: str) -> str:
        kind, name = key[0], key[2:]
        return plain({"c": category_names, "p": purpose_names}.get(kind, {}).get(name, name))

    def colour(key: str) -> str:
        if key[0] == "c":
            return CONTENT if category_kinds.get(key[2:]) == "customer_content" else GENERATED
        return PURPOSE if key[0] == "p" else DESTINATION

    ordered = sorted(links.items(), key=lambda item: item[0][2])  # violations drawn last, on top
    unit = "volume" if use_volume else "flows"
    fig = go.Figure(go.Sankey(
        arrangement="snap",
        valueformat=",.0f",
        valuesuffix=f" ({unit})",
        node=dict(label=[label(k) for k in keys], color=[colour(k) for k in keys], pad=18, thickness=14,
                  line=dict(width=0),
                  hovertemplate="%{label}<br>%{value}<extra></extra>"),
        link=dict(source=[index[s] for (s, _, _), _ in ordered], target=[index[t] for (_, t, _), _ in ordered],
                  value=[weight for _, (weight, _) in ordered],
                  customdata=[[flows, "violations" if bad else "permitted"] for (_, _, bad), (_, flows) in ordered],
                  color=[_rgba(VIOLATION, 0.7) if bad else _rgba(PERMITTED, 0.25) for (_, _, bad), _ in ordered],
                  hovertemplate="%{source.label} → %{target.label}<br>%{customdata[1]}: %{value}, "
                                "%{customdata[0]:,} flows<extra></extra>"),
    ))
    _layout(fig, height=max(460, 32 * len(keys)))
    fig.update_layout(margin=dict(l=10, r=10, t=10, b=20))
    return fig


def _wrap(text: str, width: int = 13) -> str:
    """Break a label into lines of about `width` characters, for axis ticks that stay horizontal (escaped)."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "<br>".join(plain(text) for text in lines + [line])


def exposure_heatmap(groups: list[str], targets: list[str], shares: list[list[float | None]],
                     counts: list[list[str]]) -> go.Figure:
    """Groups (rows) x targets (columns): the share of each group's accounts exposed (0..1)."""
    if not groups or not targets:
        return empty("No groups to show yet.")
    fig = go.Figure(go.Heatmap(
        z=shares, x=[_wrap(t) for t in targets], y=[plain(g) for g in groups], zmin=0, zmax=1,
        colorscale=EXPOSURE_SCALE, xgap=2, ygap=2,
        customdata=counts, texttemplate="%{z:.0%}", textfont=dict(size=11),
        colorbar=dict(tickformat=".0%", thickness=10, len=0.8, outlinewidth=0),
        hovertemplate="%{y}<br>%{x}<br>%{z:.0%} of accounts (%{customdata})<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed", automargin=True, ticksuffix="  ")
    fig.update_xaxes(side="top", tickangle=0, automargin=True, tickfont=dict(size=11))
    return _layout(fig, height=150 + 28 * len(groups))


def activity_timeline(days: list[date], grants: list[int], revocations: list[int], violations: list[int],
                      terms: list[dict]) -> go.Figure:
    """Consent grants, revocations and flow violations per day; terms versions as vertical lines.

    `terms` items: version, effective_at (datetime), requires_reconsent.
    """
    fig = go.Figure()
    fig.add_bar(x=days, y=grants, name="Consents granted", marker_color=GRANT,
                hovertemplate="%{x|%d %b}: %{y} granted<extra></extra>")
    fig.add_bar(x=days, y=[-n for n in revocations], name="Consents revoked", marker_color=REVOKE,
                customdata=revocations, hovertemplate="%{x|%d %b}: %{customdata} revoked<extra></extra>")
    fig.add_scatter(x=days, y=violations, name="Flow violations", mode="lines+markers", yaxis="y2",
                    line=dict(color=VIOLATION, width=2), marker=dict(size=5),
                    hovertemplate="%{x|%d %b}: %{y} violations<extra></extra>")
    for item in terms:
        at = item["effective_at"]
        fig.add_shape(type="line", x0=at, x1=at, y0=0, y1=1, yref="paper",
                      line=dict(color=VIOLATION if item["requires_reconsent"] else MUTED, width=1.5, dash="dot"))
        reconsent = " · re-consent" if item["requires_reconsent"] else ""
        fig.add_annotation(x=at, y=1, yref="paper", yanchor="bottom", showarrow=False,
                           text=f"terms {plain(item['version'])}{reconsent}",
                           font=dict(size=11, color=MUTED), bgcolor="rgba(255,255,255,0.85)")
    start = days[0] if days else None
    end = days[-1] if days else None
    if start and end:
        fig.update_xaxes(range=[datetime.combine(start, datetime.min.time()) - timedelta(hours=12),
                                datetime.combine(end, datetime.min.time()) + timedelta(hours=12)])
    fig.update_xaxes(type="date", gridcolor=GRID, tickformat="%d %b")
    fig.update_layout(
        barmode="relative", bargap=0.25,
        yaxis=dict(title=dict(text="consent events", font=dict(color=MUTED)), gridcolor=GRID, zeroline=True,
                   zerolinecolor="#c4c9d2"),
        yaxis2=dict(title=dict(text="violations", font=dict(color=VIOLATION)), overlaying="y", side="right",
                    rangemode="tozero", showgrid=False, tickmode="auto", nticks=5, tickformat=",d"),
        legend=dict(orientation="h", y=-0.18, x=0),
    )
    _layout(fig, height=340)
    fig.update_layout(margin=dict(l=50, r=50, t=30, b=40))
    return fig


def exposure_treemap(organization: str, groups: list[dict]) -> go.Figure:
    """Organization -> group -> its active accounts split by what reached AI purposes in the period.

    `groups` items: name, members, training (accounts whose data reached AI training), ai_only
    (reached other AI purposes only).
    """
    if not any(g["members"] for g in groups):
        return empty("No accounts in groups yet.", height=360)
    ids, labels, parents, values, colours = ["org"], [plain(organization)], [""], [0], ["#eef0f3"]
    parts = (("training", "AI training", VIOLATION), ("ai_only", "AI features only", "#e3a04f"),
             ("none", "Not exposed", "#c9ced6"))
    for position, group in enumerate(groups):
        gid = f"g{position}"
        members = group["members"]
        if not members:
            continue
        rest = max(members - group["training"] - group["ai_only"], 0)
        amounts = {"training": group["training"], "ai_only": group["ai_only"], "none": rest}
        ids.append(gid), labels.append(plain(group["name"])), parents.append("org"), values.append(members)
        colours.append("#dfe3e8")
        for key, name, colour in parts:
            if amounts[key]:
                ids.append(f"{gid}-{key}"), labels.append(name), parents.append(gid)
                values.append(amounts[key]), colours.append(colour)
    values[0] = sum(v for v, p in zip(values, parents) if p == "org")
    fig = go.Figure(go.Treemap(
        ids=ids, labels=labels, parents=parents, values=values, branchvalues="total",
        marker=dict(colors=colours, line=dict(width=1, color="#fff")), textinfo="label+value",
        hovertemplate="%{label}: %{value} accounts (%{percentParent:.0%} of %{parent})<extra></extra>",
        tiling=dict(pad=2), pathbar=dict(visible=False),
    ))
    return _layout(fig, height=380)


def terms_timeline(terms: list[dict], *, now: datetime) -> go.Figure:
    """The vendor's terms versions on a time axis; those that require re-consent stand out.

    `terms` items: version, effective_at, requires_reconsent, covers (int), consents (int).
    """
    if not terms:
        return empty("No terms version has been published.", height=200)
    fig = go.Figure()
    for reconsent, name, colour in ((False, "Terms version", MUTED), (True, "Requires re-consent", VIOLATION)):
        chosen = [t for t in terms if t["requires_reconsent"] == reconsent]
        if not chosen:
            continue
        fig.add_scatter(
            x=[t["effective_at"] for t in chosen], y=[0] * len(chosen), mode="markers+text", name=name,
            text=[plain(t["version"]) for t in chosen], textposition="top center", textfont=dict(size=12),
            marker=dict(size=14, color=colour, symbol="diamond" if reconsent else "circle", line=dict(width=0)),
            customdata=[[t["covers"], t["consents"]] for t in chosen],
            hovertemplate="%{text}, effective %{x|%d %b %Y}<br>newly covers %{customdata[0]} uses · "
                          "%{customdata[1]} consents given under it<extra></extra>")
    fig.add_shape(type="line", x0=now, x1=now, y0=0, y1=1, yref="paper", line=dict(color=INK, width=1, dash="dot"))
    fig.add_annotation(x=now, y=1, yref="paper", yanchor="top", xanchor="left", text=" today", showarrow=False,
                       font=dict(size=11, color=MUTED))
    fig.update_yaxes(visible=False, range=[-1, 1.6])
    fig.update_xaxes(type="date", gridcolor=GRID, showline=True, linecolor="#c4c9d2")
    fig.update_layout(legend=dict(orientation="h", y=-0.35, x=0))
    _layout(fig, height=200)
    fig.update_layout(margin=dict(l=30, r=30, t=10, b=30))
    return fig


def reconsent_coverage(rows: list[dict]) -> go.Figure:
    """Per group, of the accounts a re-consent terms version made stale: renewed, revoked, still pending.

    `rows` items: group, renewed, revoked, pending.
    """
    rows = [r for r in rows if r["renewed"] + r["revoked"] + r["pending"]]
    if not rows:
        return empty("No account held a consent this version made stale.", height=220)
    names = [plain(r["group"]) for r in rows]
    fig = go.Figure()
    for key, name, colour in (("renewed", "Re-consented", GRANT), ("revoked", "Revoked", REVOKE),
                              ("pending", "Still stale", VIOLATION)):
        fig.add_bar(y=names, x=[r[key] for r in rows], name=name, orientation="h", marker_color=colour,
                    hovertemplate="%{y}: %{x} " + name.lower() + "<extra></extra>")
    fig.update_layout(barmode="stack", legend=dict(orientation="h", y=-0.12, x=0, traceorder="normal"))
    fig.update_yaxes(autorange="reversed", automargin=True, ticksuffix="  ")
    fig.update_xaxes(gridcolor=GRID, title=dict(text="accounts", font=dict(color=MUTED)))
    _layout(fig, height=120 + 30 * len(rows))
    fig.update_layout(margin=dict(l=10, r=20, t=10, b=50))
    return fig
