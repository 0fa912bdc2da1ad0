"""Names people type reach the charts as text: Plotly reads a subset of HTML in every label, title, tick,
legend and hover text (<a href>, <b>, <br>, <span style>, &entities;), so each builder escapes them,
and what Plotly then shows is the name exactly as typed, with no link and no styling."""
import inspect
import re
from datetime import date, datetime, timezone

import orjson
import plotly.graph_objects as go
import pytest

from flows import charts as flow_charts
from reports import charts as report_charts

PAYLOADS = [
    '<a href="https://evil.example">x</a>',
    "<b>Sales</b> & <i>Marketing</i>",
    "Legal<br>Compliance",
    '<span style="font-size:60px;color:red">Huge</span>',
    "Tom &lt;3 Jerry &amp; &#60;b&#62;",  # already-escaped text stays as typed too
    "R&D <sup>2</sup><sub>x</sub>",
]
AT = datetime(2026, 3, 1, tzinfo=timezone.utc)
OUR_OWN_TAGS = {"<br>", "<extra>", "</extra>"}  # in our hover templates and wrapped ticks


def builders(name: str) -> dict:
    """Every figure builder, with `name` wherever it takes something someone typed."""
    return {
        flow_charts.exposure_sankey: lambda: flow_charts.exposure_sankey(
            [{"data_category": "c", "purpose": "p", "destination": name, "flows": 3, "volume": 30, "violations": 1,
              "violation_volume": 10}],
            category_names={"c": name}, category_kinds={"c": "customer_content"}, purpose_names={"p": name}),
        flow_charts.exposure_heatmap: lambda: flow_charts.exposure_heatmap([name], [name], [[0.5]], [["1 of 2"]]),
        flow_charts.activity_timeline: lambda: flow_charts.activity_timeline(
            [date(2026, 3, 1)], [2], [1], [1], [{"version": name, "effective_at": AT, "requires_reconsent": True}]),
        flow_charts.exposure_treemap: lambda: flow_charts.exposure_treemap(
            name, [{"name": name, "members": 4, "training": 1, "ai_only": 1}]),
        flow_charts.terms_timeline: lambda: flow_charts.terms_timeline(
            [{"version": name, "effective_at": AT, "requires_reconsent": False, "covers": 1, "consents": 2}], now=AT),
        flow_charts.reconsent_coverage: lambda: flow_charts.reconsent_coverage(
            [{"group": name, "renewed": 1, "revoked": 1, "pending": 1}]),
        report_charts.consent_by_use: lambda: report_charts.consent_by_use(
            [{"use": name, "accounts": 3, "freely_given": 1, "not_freely_given": 0, "stale": 0, "revoked": 1,
              "missing": 1}]),
        report_charts.coverage_by_group: lambda: report_charts.coverage_by_group(
            [{"group_name": name, "data_category": name, "purpose": name, "accounts": 2, "missing": 0,
              "coverage": 0.5, "freely_given": 1, "not_freely_given": 0}], [{"name": name, "members": 2}]),
        report_charts.violations_by_group: lambda: report_charts.violations_by_group(
            [{"name": name, "flows": 3, "violations": 1}]),
    }


# What Plotly does with a string (plotly.js svg_text_utils): tags split off, entities decoded once.
TAG = re.compile(r"(<[^<>]*>)")
ENTITY = re.compile(r"&(#\d+|#x[\da-fA-F]+|[a-z]+);")
NAMED = {"amp": "&", "lt": "<", "gt": ">", "nbsp": "\xa0", "quot": '"'}


def _entity(match) -> str:
    code = match.group(1)
    if code.startswith("#x"):
        return chr(int(code[2:], 16))
    if code.startswith("#"):
        return chr(int(code[1:]))
    return NAMED.get(code, match.group(0))


def shown(text: str) -> str:
    """The text Plotly displays for `text`, whitespace made single spaces (a <br> breaks a line)."""
    parts = [" " if TAG.fullmatch(part) and part.lower().startswith("<br") else
             "" if TAG.fullmatch(part) else ENTITY.sub(_entity, part) for part in TAG.split(text)]
    return " ".join("".join(parts).split())


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def figure_builders(module) -> set:
    return {function for name, function in inspect.getmembers(module, inspect.isfunction)
            if function.__module__ == module.__name__ and not name.startswith("_")
            and inspect.signature(function).return_annotation in (go.Figure, "go.Figure")
            and name != "empty"}


def test_every_figure_builder_is_checked_here():
    assert figure_builders(flow_charts) | figure_builders(report_charts) == set(builders("x"))


@pytest.mark.parametrize("name", PAYLOADS)
@pytest.mark.parametrize("builder", list(builders("x")), ids=lambda builder: builder.__name__)
def test_a_typed_name_is_shown_as_typed_and_never_read_as_markup(builder, name):
    figure = orjson.loads(builders(name)[builder]().to_json())
    texts = list(strings(figure))
    assert not [text for text in texts if name in text]  # never raw
    assert any(" ".join(name.split()) in shown(text) for text in texts)  # displayed exactly as typed
    tags = {tag for text in texts for tag in TAG.findall(text)}
    assert tags <= OUR_OWN_TAGS, tags - OUR_OWN_TAGS


def test_plain_text_is_left_alone():
    assert flow_charts.plain("Sales · EMEA (42)") == "Sales · EMEA (42)"
    assert shown(flow_charts.plain("a < b > c & d")) == "a < b > c & d"
