"""Recompute an organization's Merkle log from its leaves, in parallel segments (docs/audit-chain.md).

Each segment is a run of whole 256-leaf tiles: a worker process reads its leaves (events' bodies,
flows' rows rebuilt into their entries), hashes them, checks every full tile of leaf hashes the log
stored, every `flow.batch` event's subtree root, and hands back the root of each of its tiles and the
leaves of any partial tile a signed tree head ends in. The parent then rebuilds the upper levels
from those roots alone (1/256 of the work), checks the stored upper tiles and the head's frontier,
and the root at every signed tree head's size. Every leaf and every node is recomputed once.
"""
from __future__ import annotations

import heapq
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import orjson
from django.db import connection, connections

from . import merkle
from .leaves import READERS
from .models import AuditDigest, AuditEvent, ChainHead, EventKind, MerkleTile

TILE = merkle.TILE_WIDTH
SEGMENT_MIN = 64 * TILE  # leaves: below this a segment costs more to hand out than to check
CHUNK = 256 * TILE  # leaves read at once
SEGMENT_MAX = 4096 * TILE  # and above this its stored tiles (8 KiB each, held while it runs) weigh too much


@dataclass
class Segment:
    """What checking leaves [start, stop) found."""

    start: int
    stop: int
    tile_roots: list[bytes] = field(default_factory=list)  # one per full tile of the segment, in order
    parts: dict[int, list[bytes]] = field(default_factory=dict)  # checkpoint size -> its partial tile's leaves
    problem: tuple[int, str] | None = None  # (leaf index, what is wrong), the first one


@dataclass
class LeafVerification:
    valid: bool = True
    leaves_checked: int = 0
    first_invalid_leaf: int | None = None
    problem: str = ""
    tree_size: int = 0
    root_hash: str = merkle.EMPTY_ROOT.hex()

    def fail(self, leaf: int | None, problem: str) -> LeafVerification:
        if self.valid:
            self.valid, self.first_invalid_leaf, self.problem = False, leaf, problem
        return self


def _event_leaves(organization_id: int, start: int, stop: int) -> dict[int, tuple[bytes, str, str]]:
    rows = (AuditEvent.objects.filter(organization_id=organization_id, leaf_index__gte=start, leaf_index__lt=stop)
            .values_list("leaf_index", "seq", "kind", "body"))
    return {leaf: (body.encode(), f"event seq {seq}", kind) for leaf, seq, kind, body in rows}


def _leaves(organization_id: int, start: int, stop: int):
    """Every leaf in [start, stop) in leaf order, (index, entry, label, event kind or None), read a chunk
    of leaves at a time; a leaf missing or held twice comes out as such, for the caller to name."""
    for chunk in range(start, stop, CHUNK):
        end = min(stop, chunk + CHUNK)
        events = _event_leaves(organization_id, chunk, end)
        order, at = sorted(events), 0
        readers = [read(organization_id, chunk, end) for read in READERS.values()]
        others = heapq.merge(*readers, key=lambda leaf: leaf[0]) if len(readers) > 1 else readers[0]
        for index, entry, label in others:
            while at < len(order) and order[at] <= index:
                yield (order[at], *events[order[at]])
                at += 1
            yield index, entry, label, None
        for first in order[at:]:
            yield (first, *events[first])


def _stored_tiles(organization_id: int, level: int, first: int, stop: int):
    rows = (MerkleTile.objects.filter(organization_id=organization_id, level=level, index__gte=first,
                                      index__lt=stop).order_by("index").values_list("index", "hashes")
            .iterator(chunk_size=500))
    return {index: bytes(blob) for index, blob in rows}


def check_segment(organization_id: int, start: int, stop: int, checkpoints: tuple[int, ...],
                  tail: bytes = b"") -> Segment:
    """Recompute leaves [start, stop) (start a multiple of 256): see the module's docstring. `tail` holds
    the stored leaf hashes of the log's last, partial tile when the segment ends the log."""
    segment = Segment(start, stop)
    stored = _stored_tiles(organization_id, 0, start // TILE, stop // TILE)

    def stored_leaf(index: int) -> bytes | None:
        tile, offset = divmod(index, TILE)
        blob = stored.get(tile, tail if tile == stop // TILE else b"")
        return blob[offset * 32:(offset + 1) * 32] or None
    want = set(c for c in checkpoints if start < c <= stop and c % TILE)
    hashes: list[bytes] = []  # the current tile's leaf hashes
    labels: list[str] = []
    batch: list[bytes] = []  # the flows since the last event: a batch, whose event comes next
    batch_labels: list[str] = []
    batch_first = None
    expected = start
    for index, entry, label, kind in _leaves(organization_id, start, stop):
        if index != expected:
            return _fail(segment, expected, f"leaf {expected} is missing" if index > expected
                         else f"leaf {index} ({label}) appears twice")
        digest = merkle.leaf_hash(entry)
        if kind is None:
            if batch_first is None:
                batch_first = index
            batch.append(digest)
            batch_labels.append(label)
        else:
            if kind == EventKind.FLOW_BATCH:
                problem = _batch_problem(organization_id, entry, index, batch, batch_first, start)
                if problem:
                    for leaf, (computed, name) in enumerate(zip(batch, batch_labels), start=batch_first or 0):
                        if stored_leaf(leaf) not in (None, computed):  # name the flow whose row changed
                            return _fail(segment, leaf, f"leaf {leaf} ({name}) differs from the leaf hash the "
                                                        "log stored")
                    return _fail(segment, index, f"{label}: {problem}")
            elif batch:
                return _fail(segment, batch_first, f"leaf {batch_first}: flows not followed by their batch's event")
            batch, batch_labels, batch_first = [], [], None
        hashes.append(digest)
        labels.append(label)
        expected += 1
        if expected in want:
            segment.parts[expected] = list(hashes)
        if len(hashes) == TILE:
            tile = b"".join(hashes)
            position = expected // TILE - 1
            if stored.get(position) != tile:
                return _fail(segment, *_tile_problem(organization_id, position, stored.get(position), hashes, labels))
            segment.tile_roots.append(merkle.perfect_root(hashes))
            hashes, labels = [], []
    if expected != stop:
        return _fail(segment, expected, f"leaf {expected} is missing")
    if batch and stop == max(checkpoints):
        return _fail(segment, batch_first, f"leaf {batch_first}: flows not followed by their batch's event")
    if hashes:
        segment.parts[stop] = hashes  # the log's last, partial tile: the head's frontier holds it
        for offset, (computed, name) in enumerate(zip(hashes, labels)):
            if stored_leaf(stop - len(hashes) + offset) not in (None, computed):
                leaf = stop - len(hashes) + offset
                return _fail(segment, leaf, f"leaf {leaf} ({name}) differs from the leaf hash the log stored")
    return segment


def _fail(segment: Segment, leaf: int, problem: str) -> Segment:
    segment.problem = (leaf, problem)
    return segment


def _batch_problem(organization_id, entry: bytes, index: int, batch: list[bytes], first: int | None,
                   start: int) -> str:
    """What is wrong with a flow.batch event's account of the flows just before it, or ""."""
    try:
        payload = orjson.loads(entry)["payload"]
        first_leaf, count, root = payload["first_leaf"], payload["leaf_count"], payload["leaves_root"]
    except (ValueError, KeyError, TypeError):
        return "not a batch event with first_leaf, leaf_count and leaves_root"
    if first_leaf + count != index:
        return f"its batch's leaves end at {first_leaf + count}, not just before it"
    if count and first_leaf < start:  # the batch began in the previous segment: read its first flows again
        batch = [merkle.leaf_hash(e) for read in READERS.values()
                 for _, e, _ in read(organization_id, first_leaf, start)] + batch
    if len(batch) != count:
        return f"{count} flows announced, {len(batch)} found before it"
    if merkle.root_of(batch).hex() != root:
        return f"the flows of leaves {first_leaf}..{index - 1} differ from the subtree root it recorded"
    return ""


def _tile_problem(organization_id: int, position: int, stored: bytes | None, hashes, labels) -> tuple[int, str]:
    first = position * TILE
    if stored is None:
        return first, f"the tile of leaves {first}..{first + TILE - 1} is missing"
    offset = next(i for i in range(TILE) if stored[i * 32:(i + 1) * 32] != hashes[i])
    parent = _stored_node(organization_id, position)
    chunks = [stored[i * 32:(i + 1) * 32] for i in range(TILE)]
    if parent is not None and merkle.perfect_root(chunks) != parent:
        return first + offset, (f"node hashes altered: the stored leaf hashes of tile 0/{position} do not add up to "
                                f"their parent node")
    return first + offset, f"leaf {first + offset} ({labels[offset]}) differs from the leaf hash the log stored"


def _stored_node(organization_id: int, position: int) -> bytes | None:
    """The stored level-8 node above tile 0/position: in a full level-1 tile, or on the head's frontier."""
    tile = _stored_tiles(organization_id, 1, position // TILE, position // TILE + 1).get(position // TILE)
    if tile is not None:
        offset = position % TILE
        return tile[offset * 32:(offset + 1) * 32]
    head = ChainHead.objects.filter(organization_id=organization_id).values_list("tree_size", "tree_edge").first()
    frontier = merkle.Frontier(head[0], bytes(head[1]))
    row = frontier.edge[1] if len(frontier.edge) > 1 else []
    offset = position % TILE
    return row[offset] if offset < len(row) else None


def segments(size: int, jobs: int, checkpoints) -> list[tuple[int, int]]:
    """Cut [0, size) into runs of whole tiles, about `jobs` × 4 of them for balance."""
    step = min(SEGMENT_MAX, max(SEGMENT_MIN, -(-size // (jobs * 4) // TILE) * TILE))
    bounds = list(range(0, size, step)) + [size]
    return list(zip(bounds, bounds[1:])) or [(0, 0)]


def _run(args) -> Segment:
    return check_segment(*args)


def verify_leaves(organization, *, jobs: int = 1) -> LeafVerification:
    """Recompute the organization's whole tree: every leaf from its row, every node, every tile, the
    head's frontier and root, and the root each signed tree head states. `jobs` > 1 checks segments in
    that many processes (PostgreSQL only; each opens its own connection and must see committed rows)."""
    result = LeafVerification()
    head = ChainHead.objects.filter(organization=organization).values_list("tree_size", "tree_edge",
                                                                           "tree_root").first()
    if head is None:
        return result
    size, packed, root = head[0], bytes(head[1]), head[2]
    heads = []  # (digest number, tree_size, root_hash) as each signed tree head's body states them
    for number, (body, *columns) in enumerate(AuditDigest.objects.filter(organization=organization).order_by(
            "period_end", "id").values_list("body", "tree_size", "root_hash"), start=1):
        statement = orjson.loads(body)
        if statement.get("version", 1) < 2:
            continue
        signed = [statement["tree_size"], statement["root_hash"]]
        if columns != signed:
            return result.fail(None, f"digest {number}: its tree_size or root_hash column differs from "
                                     "what it signed")
        heads.append((number, *signed))
    checkpoints = tuple(sorted({s for _, s, _ in heads if 0 < s <= size} | {size}))
    try:
        frontier = merkle.Frontier(size, packed)
    except ValueError:
        return result.fail(None, "the head's frontier does not hold the nodes its size requires")
    tail = b"".join(frontier.edge[0]) if frontier.edge else b""
    work = [(organization.pk, start, stop, checkpoints, tail if stop == size else b"")
            for start, stop in segments(size, jobs, checkpoints)]
    if jobs > 1 and connection.vendor == "postgresql" and len(work) > 1:
        connections.close_all()  # each process opens its own connection; none may share this one's socket
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"),
                                 initializer=connections.close_all) as pool:
            done = list(pool.map(_run, work))
    else:
        done = [_run(args) for args in work]
    for segment in done:
        if segment.problem:
            result.leaves_checked = segment.problem[0]
            return result.fail(*segment.problem)
    result.leaves_checked = size
    return _check_upper(organization.pk, result, done, frontier, root, heads, checkpoints)


def _check_upper(organization_id, result, done, frontier: merkle.Frontier, root, heads,
                 checkpoints) -> LeafVerification:
    """From the segments' tile roots: the stored upper tiles, the frontier, and the roots at every checkpoint."""
    size = frontier.size
    upper = merkle.Frontier()
    parts = {size: []} | {k: v for segment in done for k, v in segment.parts.items()}
    ranges: dict[int, list[bytes]] = {}
    pending = sorted(checkpoints)
    roots = [r for segment in done for r in segment.tile_roots]
    stored = {level: _stored_tiles(organization_id, level, 0, (size >> (8 * level)) // TILE) for level in range(1, 8)
              if size >> (8 * level) >= TILE}  # the tiles of this size: a drain may be adding more
    position = 0
    for checkpoint in pending:
        wanted = checkpoint // TILE
        for level, index, blob in upper.append(roots[position:wanted]):
            if stored.get(level + 1, {}).get(index) != blob:
                return result.fail(index * TILE ** (level + 2), f"node hashes altered: tile {level + 1}/{index} "
                                                               "differs from the tiles below it")
        position = wanted
        ranges[checkpoint] = upper.compact_range() + merkle.compact_range(parts.get(checkpoint, []))
    if sum(len(level) for level in stored.values()) != sum(
            (size >> (8 * level)) // TILE for level in range(1, 8)):
        return result.fail(None, "the log stores upper tiles no leaves account for")
    if _trimmed(frontier.edge) != _trimmed([parts.get(size, [])] + upper.edge):
        return result.fail(size - size % TILE, "the head's frontier differs from the leaves' nodes")
    computed = merkle.fold(ranges[size]).hex() if size else merkle.EMPTY_ROOT.hex()
    if computed != root:
        return result.fail(None, "the head's root differs from the tree its leaves make")
    for number, tree_size, root_hash in heads:
        if tree_size > size:
            return result.fail(size, f"digest {number} covers {tree_size} leaves; the log holds {size}")
        if tree_size and merkle.fold(ranges[tree_size]).hex() != root_hash:
            return result.fail(None, f"digest {number}: its root differs from the tree of the first "
                                     f"{tree_size} leaves")
    result.tree_size, result.root_hash = size, computed
    return result


def _trimmed(edge: list[list[bytes]]) -> list[list[bytes]]:
    edge = list(edge)
    while edge and not edge[-1]:
        edge.pop()
    return edge
