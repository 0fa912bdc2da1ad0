"""The organization's log as an RFC 9162 Merkle tree, as pure functions (docs/audit-chain.md, format 2).

Leaves are entries (an event's body, a flow's entry); leaf hash = SHA-256(0x00 || entry), node hash =
SHA-256(0x01 || left || right), and the tree over n leaves splits at the largest power of two below n.

The tree is stored as *tiles*: a tile holds the hashes of 256 consecutive nodes of one tree level
that is a multiple of 8 (tile level t holds tree level 8t), and is written once, when it is full.
The nodes of the tiles not full yet (the right edge) live with the chain head (`Frontier`). Any
perfect subtree's hash is then at most 128 stored hashes and 127 SHA-256 away, so a proof among
10 million leaves reads three tiles.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from hashlib import sha256

HASH_SIZE = 32
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
EMPTY_ROOT = sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two smaller than `size` (> 1): where RFC 9162 splits a tree."""
    return 1 << ((size - 1).bit_length() - 1)


def perfect_root(hashes: list[bytes]) -> bytes:
    """The root over a power-of-two number of node hashes."""
    while len(hashes) > 1:
        pairs = iter(hashes)
        hashes = [sha256(b"\x01" + left + right).digest() for left, right in zip(pairs, pairs)]
    return hashes[0]


def root_of(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH over leaf hashes in order."""
    return fold(compact_range(list(leaf_hashes)))


def compact_range(hashes: list[bytes]) -> list[bytes]:
    """The perfect subtrees over these hashes, largest first: one per set bit of their count."""
    perfect, at = [], 0
    for height in reversed(range(len(hashes).bit_length())):
        if len(hashes) >> height & 1:
            perfect.append(perfect_root(hashes[at:at + (1 << height)]))
            at += 1 << height
    return perfect


def fold(perfect: Iterable[bytes]) -> bytes:
    """The root of a tree given its perfect subtrees left to right, largest first (its compact range)."""
    perfect = list(perfect)
    if not perfect:
        return EMPTY_ROOT
    digest = perfect[-1]
    for left in reversed(perfect[:-1]):
        digest = node_hash(left, digest)
    return digest


class Frontier:
    """The right edge of a tree of `size` leaves: at each tile level, the nodes not in a full tile yet.

    Appending leaf hashes fills it and hands back the tiles that became full. It is stored with the
    chain head as the edge nodes' hashes concatenated level by level (their counts follow from size).
    """

    def __init__(self, size: int = 0, packed: bytes = b""):
        self.size = size
        self.edge: list[list[bytes]] = []
        offset, level = 0, 0
        while size >> (TILE_HEIGHT * level):
            count = (size >> (TILE_HEIGHT * level)) % TILE_WIDTH
            self.edge.append([packed[offset + i * HASH_SIZE: offset + (i + 1) * HASH_SIZE] for i in range(count)])
            offset += count * HASH_SIZE
            level += 1
        if offset != len(packed):
            raise ValueError(f"a frontier of {size} leaves holds {offset} bytes, not {len(packed)}")

    def pack(self) -> bytes:
        return b"".join(b"".join(level) for level in self.edge)

    def append(self, leaf_hashes: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
        """Add leaves; returns the tiles they completed as (tile level, tile index, 256 hashes)."""
        full: list[tuple[int, int, bytes]] = []
        edge = self.edge
        if not edge:
            edge.append([])
        bottom = edge[0]
        for digest in leaf_hashes:
            bottom.append(digest)
            self.size += 1
            if len(bottom) == TILE_WIDTH:
                self._complete(0, full)
        return full

    def _complete(self, level: int, full: list) -> None:
        row = self.edge[level]
        nodes_at_level = self.size >> (TILE_HEIGHT * level)
        full.append((level, nodes_at_level // TILE_WIDTH - 1, b"".join(row)))
        parent = perfect_root(row)
        row.clear()
        if len(self.edge) == level + 1:
            self.edge.append([])
        self.edge[level + 1].append(parent)
        if len(self.edge[level + 1]) == TILE_WIDTH:
            self._complete(level + 1, full)

    def root(self) -> bytes:
        """The tree's root: its perfect subtrees (one per set bit of size, largest first), folded."""
        return fold(self.compact_range())

    def compact_range(self) -> list[bytes]:
        perfect = []
        for height in reversed(range(self.size.bit_length())):
            if self.size >> height & 1:
                perfect.append(self.edge_node(height, (self.size >> height) - 1))
        return perfect

    def edge_node(self, height: int, index: int) -> bytes:
        """A perfect subtree whose base nodes are all on the edge (not in a full tile)."""
        level, rest = divmod(height, TILE_HEIGHT)
        first = (index << rest) % TILE_WIDTH
        return perfect_root(self.edge[level][first:first + (1 << rest)])


class Tree:
    """A tree of `size` leaves read from its tiles and the frontier of a size at least as large.

    `tiles(keys)` returns {(level, index): 256 hashes as bytes} for full tiles; a proof first works out
    which tiles its path crosses and reads them in one call (`prefetch`), each once.
    """

    def __init__(self, size: int, frontier: Frontier, tiles: Callable[[list[tuple[int, int]]], dict]):
        if size > frontier.size:
            raise ValueError(f"a tree of {size} leaves cannot be read from a frontier of {frontier.size}")
        self.size, self.frontier, self._fetch, self._tiles = size, frontier, tiles, {}
        self._nodes: dict[tuple[int, int], bytes] = {}

    def _full(self, level: int, index: int) -> bool:
        return index < (self.frontier.size >> (TILE_HEIGHT * level)) // TILE_WIDTH

    def _base(self, level: int, first: int, count: int) -> list[bytes]:
        """`count` consecutive nodes of tree level 8*level from `first`, all within one tile."""
        index, offset = divmod(first, TILE_WIDTH)
        if self._full(level, index):
            key = (level, index)
            if key not in self._tiles:
                self._load([key])
            blob = self._tiles[key]
            return [blob[(offset + i) * HASH_SIZE:(offset + i + 1) * HASH_SIZE] for i in range(count)]
        return self.frontier.edge[level][offset:offset + count]

    def _load(self, keys: list[tuple[int, int]]) -> None:
        for key, blob in self._fetch(keys).items():
            if len(blob) != TILE_WIDTH * HASH_SIZE:
                raise ValueError(f"tile {key} holds {len(blob)} bytes")
            self._tiles[key] = blob
        missing = [key for key in keys if key not in self._tiles]
        if missing:
            raise LookupError(f"tile {missing[0]} is missing")

    def prefetch(self, ranges: Iterable[tuple[int, int]]) -> None:
        """Read at once the full tiles the roots of these leaf ranges need."""
        keys = set()
        for start, end in ranges:
            for height, index in _perfect(start, end):
                level, rest = divmod(height, TILE_HEIGHT)
                tile = (index << rest) // TILE_WIDTH
                if self._full(level, tile) and (level, tile) not in self._tiles:
                    keys.add((level, tile))
        if keys:
            self._load(sorted(keys))

    def node(self, height: int, index: int) -> bytes:
        """The perfect subtree of 2**height leaves from leaf index << height."""
        digest = self._nodes.get((height, index))
        if digest is None:
            level, rest = divmod(height, TILE_HEIGHT)
            digest = self._nodes[height, index] = perfect_root(self._base(level, index << rest, 1 << rest))
        return digest

    def range_root(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end) as RFC 9162 builds it (start aligned as its recursion aligns it)."""
        size = end - start
        if size == 0:
            return EMPTY_ROOT
        if size & (size - 1) == 0 and start % size == 0:
            return self.node(size.bit_length() - 1, start // size)
        k = split_point(size)
        return node_hash(self.range_root(start, start + k), self.range_root(start + k, end))

    def root(self) -> bytes:
        return self.range_root(0, self.size)

    def inclusion_path(self, index: int) -> list[bytes]:
        """RFC 9162 §2.1.3.1 PATH(index, D[0:size]), the leaf's sibling first."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} is not in a tree of {self.size}")
        ranges, start, end = [], 0, self.size
        while end - start > 1:
            k = split_point(end - start)
            if index - start < k:
                ranges.append((start + k, end))
                end = start + k
            else:
                ranges.append((start, start + k))
                start += k
        return self._roots(ranges[::-1])

    def _roots(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        self.prefetch(ranges)
        return [self.range_root(start, end) for start, end in ranges]

    def consistency_path(self, old_size: int) -> list[bytes]:
        """RFC 9162 §2.1.4.1 PROOF(old_size, D[0:size]); empty for 0 or an equal size."""
        if not 0 <= old_size <= self.size:
            raise ValueError(f"a tree of {old_size} leaves is not a prefix of one of {self.size}")
        if old_size in (0, self.size):
            return []
        ranges, start, end, m, whole = [], 0, self.size, old_size, True
        while m != end - start:
            k = split_point(end - start)
            if m <= k:
                ranges.append((start + k, end))
                end = start + k
            else:
                ranges.append((start, start + k))
                start, m, whole = start + k, m - k, False
        if not whole:
            ranges.append((start, end))
        return self._roots(ranges[::-1])


def _perfect(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees, as (height, index), whose hashes make the root of leaves [start, end) as
    RFC 9162 splits them (Tree.range_root)."""
    size = end - start
    if size == 0:
        return []
    if size & (size - 1) == 0 and start % size == 0:
        return [(size.bit_length() - 1, start // size)]
    k = split_point(size)
    return _perfect(start, start + k) + _perfect(start + k, end)


def verify_inclusion(leaf_hash: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: whether `path` leads from leaf `index`'s hash to `root`, the root of `size` leaves."""
    if not 0 <= index < size:
        return False
    fn, sn, digest = index, size - 1, leaf_hash
    for sibling in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            digest = node_hash(sibling, digest)
            while not fn & 1 and fn != 0:  # climb past the levels where this node has no right sibling
                fn, sn = fn >> 1, sn >> 1
        else:
            digest = node_hash(digest, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and digest == root


def verify_consistency(size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes) -> bool:
    """RFC 9162 §2.1.4.2: whether the tree of `size2` leaves (root2) extends that of `size1` leaves (root1)."""
    if not 0 <= size1 <= size2:
        return False
    if size1 == 0:  # the empty tree is a prefix of every tree
        return not proof
    if size1 == size2:
        return not proof and root1 == root2
    if not proof:
        return False
    if size1 & (size1 - 1) == 0:  # a perfect old tree is itself a node of the new one: its root starts the path
        proof = [root1, *proof]
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old, new = proof[0], proof[0]
    for node in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            old, new = node_hash(node, old), node_hash(node, new)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            new = node_hash(new, node)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and old == root1 and new == root2
