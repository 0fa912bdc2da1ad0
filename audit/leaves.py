"""Leaves of the log that other apps keep: a judged flow's row is its own leaf (docs/audit-chain.md).

audit is the bottom layer and imports no other app, so an app whose rows are leaves registers a
reader here when it is ready; verification and export read every leaf through these.
"""
from collections.abc import Callable, Iterator

# reader(organization_id, start, stop) -> (leaf_index, entry bytes, label) for its leaves in [start, stop),
# in leaf order; the label names the leaf in a verification's answer ("flow f-17 of batch 9").
Reader = Callable[[int, int, int], Iterator[tuple[int, bytes, str]]]
READERS: dict[str, Reader] = {}


def register(name: str, reader: Reader) -> None:
    READERS[name] = reader
