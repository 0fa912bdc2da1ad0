"""How the catalog's entries and a switch's target are written for people: by name, or by key for an
entry the names do not hold (one deleted since, say). No ORM here.

A target reads "Feature name" or "Data category → Purpose", the same on every page and report.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .engine import Target


@dataclass(frozen=True)
class CatalogLabels:
    """Names by key of the organization's AI features, data categories and purposes."""

    features: Mapping[str, str] = field(default_factory=dict)
    data_categories: Mapping[str, str] = field(default_factory=dict)
    purposes: Mapping[str, str] = field(default_factory=dict)

    def feature(self, key: str) -> str:
        return self.features.get(key, key)

    def data_category(self, key: str) -> str:
        return self.data_categories.get(key, key)

    def purpose(self, key: str) -> str:
        return self.purposes.get(key, key)

    def pair(self, data_category: str, purpose: str) -> str:
        return f"{self.data_category(data_category)} → {self.purpose(purpose)}"

    def target(self, target: Target) -> str:
        if target.is_feature:
            return self.feature(target.feature)
        return self.pair(target.data_category, target.purpose)
