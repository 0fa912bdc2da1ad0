"""Chart builders are pure: selector-shaped data in, a Plotly figure out, violations drawn apart."""
from datetime import date, datetime, timezone

from flows import charts

CELL = {"data_category": "content.chat", "purpose": "ai.training.first_party", "destination": "vendor.model_training",
        "flows": 10, "volume": 100, "violations": 4, "violation_volume": 40}
NAMES = {"category_names": {"content.chat": "Chat messages"}, "category_kinds": {"content.chat": "customer_content"},
         "purpose_names": {"ai.training.first_party": "Train the vendor's AI models"}}


def test_the_sankey_splits_each_band_into_permitted_and_violation_volume():
    fig = charts.exposure_sankey([CELL], **NAMES)
    sankey = fig.data[0]
    assert list(sankey.node.label) == ["Chat messages", "Train the vendor's AI models", "vendor.model_training"]
    by_colour = {}
    for value, colour in zip(sankey.link.value, sankey.link.color):
        by_colour.setdefault(colour, []).append(value)
    assert sorted(by_colour.values()) == [[40, 40], [60, 60]]  # red for violations, per stage


def test_without_volumes_the_sankey_weighs_flows():
    fig = charts.exposure_sankey([{**CELL, "volume": 0, "violation_volume": 0}], **NAMES)
    assert sorted(fig.data[0].link.value) == [4, 4, 6, 6]


def test_empty_data_says_so_instead_of_drawing_nothing():
    fig = charts.exposure_sankey([], **NAMES)
    assert not fig.data and "No flows" in fig.layout.annotations[0].text
    assert "No account" in charts.reconsent_coverage([]).layout.annotations[0].text


def test_the_timeline_marks_terms_versions_and_the_heatmap_keeps_its_shares():
    at = datetime(2026, 3, 2, tzinfo=timezone.utc)
    fig = charts.activity_timeline([date(2026, 3, 1), date(2026, 3, 2)], [3, 1], [0, 2], [1, 0],
                                   [{"version": "v2", "effective_at": at, "requires_reconsent": True}])
    assert [trace.name for trace in fig.data] == ["Consents granted", "Consents revoked", "Flow violations"]
    assert list(fig.data[1].y) == [0, -2] and len(fig.layout.shapes) == 1
    assert "v2" in fig.layout.annotations[0].text
    heatmap = charts.exposure_heatmap(["All (2)"], ["Chat compose"], [[0.5]], [["1 of 2"]])
    assert [list(row) for row in heatmap.data[0].z] == [[0.5]] and heatmap.to_json()
