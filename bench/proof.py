#!/usr/bin/env python
"""Inclusion and consistency proofs among 10,000,000 leaves on PostgreSQL (DESIGN §5: an inclusion
proof for one leaf among 10,000,000 in < 5 ms server time).

    .venv/bin/python bench/proof.py [--leaves 10000000] [--proofs 1000]

It creates its own throwaway database (benchmerk_proof_<pid>) on the server PG* / --pg names
(default postgres@127.0.0.1:5432), migrates it, and drops it at the end, even on failure.
No broker is used.

How the tree is built (quickly, without flows): leaf i's entry is the synthetic text
`bench/<i>`; the leaf hashes SHA-256(0x00 || entry) are fed to `audit.merkle.Frontier` in chunks,
the tiles it completes are COPYed into audit_merkletile (`config.db.copy_rows`), the organization's
ChainHead gets the tree's size, root and edge, and one format-2 digest (a signed tree head) is
written with `audit.services.write_digest`.

What it measures, all in one run:

* inclusion: `audit.proofs.inclusion_proof` (signed head lookup, chain head, tile reads, hex) for
  `--proofs` random leaves, timed one by one: p50/p99/max in ms. Every proof is checked with the
  standalone verifier's RFC 9162 §2.1.3.2 algorithm against the signed root, and a few proof
  files through `tools/verify_audit_log.verify_inclusion_file` with the public key.
  Its size: hashes x 32 bytes + header (leaf index and tree size, 8 bytes each) against the limit
  32 x ceil(log2 n) + header; the JSON proof file's size is printed too.
* consistency: `Tree.consistency_path` over the stored tiles (the chain head's frontier and
  audit_merkletile, as `audit.proofs` reads them) from the signed size to random older sizes,
  p50/p99/max; checked with §2.1.4.2 for a few, the old root recomputed from the tiles.
* baselines, in the same run:
  - naive: the same audit path recomputed in memory from a list of leaf hashes by the RFC's
    recursive definition (`tools/verify_audit_log.inclusion_proof`), over the first 1,000,000
    leaves only (10x fewer than the tree: the baseline is favoured), already in memory (no I/O);
  - scan: reading the whole level-0 tile column of the tree from PostgreSQL (every leaf hash),
    the least a proof that does not use the upper tiles must read.
  Ratios are baseline time / proof p50.

The load average is printed at the start and at the end: other work on the machine skews the figures.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HEADER = 16  # leaf index and tree size, 8 bytes each, in a binary proof


def line(name: str, value) -> None:
    print(f"{name}: {value}", flush=True)


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return (f"p50 {statistics.median(ordered) * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms, "
            f"max {ordered[-1] * 1000:.3f} ms ({len(ordered)} samples)")


def entry_of(index: int) -> bytes:
    return f"bench/{index}".encode()


def build(org, leaves: int, keep: int):
    """The tree of `leaves` synthetic leaves: tiles COPYed, chain head set; returns the first `keep` leaf hashes."""
    from django.db import transaction

    from audit import merkle
    from audit.ledger import TILE_COLUMNS
    from audit.models import ChainHead, MerkleTile
    from config.db import copy_rows

    frontier, kept, tiles, chunk = merkle.Frontier(), [], 0, 1 << 18
    started = time.perf_counter()
    hashing = copying = 0.0
    for first in range(0, leaves, chunk):
        t0 = time.perf_counter()
        hashes = [merkle.leaf_hash(entry_of(i)) for i in range(first, min(leaves, first + chunk))]
        if len(kept) < keep:
            kept.extend(hashes[:keep - len(kept)])
        full = frontier.append(hashes)
        t1 = time.perf_counter()
        with transaction.atomic():
            copy_rows(MerkleTile, TILE_COLUMNS, [(org.pk, level, index, blob) for level, index, blob in full])
        copying += time.perf_counter() - t1
        hashing += t1 - t0
        tiles += len(full)
    ChainHead.objects.update_or_create(organization=org, defaults={
        "tree_size": frontier.size, "tree_root": frontier.root().hex(), "tree_edge": frontier.pack()})
    line("build", f"{leaves:,} leaves, {tiles:,} tiles ({tiles * 8192 / 2**20:,.0f} MiB) in "
                  f"{time.perf_counter() - started:.1f} s (hashing + Frontier {hashing:.1f} s, COPY {copying:.1f} s)")
    return kept, frontier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leaves", type=int, default=10_000_000)
    parser.add_argument("--proofs", type=int, default=1_000)
    parser.add_argument("--consistency", type=int, default=1_000)
    parser.add_argument("--naive-leaves", type=int, default=1_000_000)
    parser.add_argument("--naive-runs", type=int, default=5)
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432"),
                        help="server URL without a database name")
    parser.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    args = parser.parse_args()

    import psycopg
    name = f"benchmerk_proof_{os.getpid()}"
    admin = f"{args.pg}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ.update({"DATABASE_URL": f"{args.pg}/{name}", "DJANGO_SETTINGS_MODULE": "config.settings",
                       "CELERY_BROKER_URL": "", "REDIS_URL": "", "DEBUG": "False"})
    try:
        run(args, name)
    finally:
        from django.db import connections
        connections.close_all()
        if args.keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            print(f"dropped database {name}")


def run(args, name: str) -> None:
    import django
    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from accounts.models import Organization
    from audit import merkle, proofs, services
    from audit.models import MerkleTile
    from tools import verify_audit_log as verifier

    cpu = next((row.split(":", 1)[1].strip() for row in Path("/proc/cpuinfo").read_text().splitlines()
                if row.startswith("model name")), "?")
    line("machine", f"{os.cpu_count()} cores, {cpu}, {time.strftime('%Y-%m-%d')}")
    line("loadavg_start", loadavg())
    line("database", f"{name} on PostgreSQL {connection.cursor().connection.info.server_version}")
    call_command("migrate", verbosity=0)
    org = Organization.objects.create(slug="bench-proof", name="Proof Bench")  # no events: leaves are ours

    n = args.leaves
    kept, frontier = build(org, n, min(args.naive_leaves, n))
    with transaction.atomic():
        digest = services.write_digest(org)
    statement = json.loads(digest.body)
    assert statement["tree_size"] == n and statement["root_hash"] == frontier.root().hex()
    root = bytes.fromhex(statement["root_hash"])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_merkletile")
    line("signed_tree_head", f"tree_size {n:,}, root {statement['root_hash']}, digest {digest.pk}")

    # --- inclusion proofs, server side -----------------------------------------------------------------
    rng = random.Random(7)
    indexes = [rng.randrange(n) for _ in range(args.proofs)]
    for i in indexes[:20]:  # warm the connection and the code paths, not the tiles asked below
        proofs.inclusion_proof(org, leaf_index=rng.randrange(n), entry=entry_of(0))
    times, sizes, json_sizes, sql = [], [], [], {"queries": 0, "seconds": 0.0}

    def timed_sql(execute, query, params, many, context):
        t = time.perf_counter()
        try:
            return execute(query, params, many, context)
        finally:
            sql["queries"] += 1
            sql["seconds"] += time.perf_counter() - t

    for i in indexes:
        with connection.execute_wrapper(timed_sql):
            t0 = time.perf_counter()
            proof = proofs.inclusion_proof(org, leaf_index=i, entry=entry_of(i))
            times.append(time.perf_counter() - t0)
        path = [bytes.fromhex(h) for h in proof["audit_path"]]
        assert verifier.verify_inclusion(i, n, merkle.leaf_hash(entry_of(i)), path, root), i
        sizes.append(len(path) * 32 + HEADER)
        json_sizes.append(len(json.dumps(proof).encode()))
    inclusion_p50 = statistics.median(times)
    line("inclusion_proof_ms", percentiles(times) + "  (target < 5 ms at p50; all verified against the signed root)")
    limit = 32 * math.ceil(math.log2(n)) + HEADER
    line("inclusion_proof_sql", f"{sql['queries'] / len(indexes):.1f} queries per proof, "
                                f"{sql['seconds'] / len(indexes) * 1000:.3f} ms per proof in the database driver "
                                "(the rest: ORM, SHA-256 of the subtrees not stored, hex)")
    line("inclusion_proof_bytes", f"max {max(sizes)}, min {min(sizes)} (hashes x 32 + {HEADER}-byte header); "
                                  f"limit 32*ceil(log2 {n:,}) + {HEADER} = {limit}; "
                                  f"JSON proof file {min(json_sizes):,}..{max(json_sizes):,} bytes "
                                  "(hex path, entry, signed head)")
    assert max(sizes) <= limit

    key_pem = Path(tempfile.mkstemp(suffix=".pem")[1])
    from audit.models import SigningKey
    key_pem.write_text(SigningKey.objects.get(fingerprint=statement["key_fingerprint"]).public_key_pem)
    keys = verifier.given_keys([str(key_pem)])
    for i in indexes[:5]:
        proof_file = Path(tempfile.mkstemp(suffix=".json")[1])
        proof_file.write_text(json.dumps(proofs.inclusion_proof(org, leaf_index=i, entry=entry_of(i))))
        verifier.verify_inclusion_file(proof_file, keys)
        proof_file.unlink()
    key_pem.unlink()
    line("inclusion_proof_files", "5 checked by tools/verify_audit_log.py (signature + path): valid")

    # --- consistency proofs over the stored tiles --------------------------------------------------------
    olds = [rng.randrange(1, n) for _ in range(args.consistency)]
    ctimes, clens = [], []
    for old in olds:
        t0 = time.perf_counter()
        path = proofs._tree(org.pk, n).consistency_path(old)
        ctimes.append(time.perf_counter() - t0)
        clens.append(len(path))
    line("consistency_path_ms", percentiles(ctimes) + f"  (old size random in [1, {n:,}); {min(clens)}..{max(clens)} "
                                                      "hashes; chain head + tiles read per proof)")
    for old in olds[:5]:
        tree = proofs._tree(org.pk, n)
        old_root = merkle.Tree(old, tree.frontier, tree._fetch).root()
        assert verifier.verify_consistency(old, n, old_root, root, tree.consistency_path(old)), old
    line("consistency_checked", "5 verified with RFC 9162 §2.1.4.2 (old roots recomputed from the tiles)")

    # --- baselines ----------------------------------------------------------------------------------------
    m = len(kept)
    small = merkle.Tree(m, frontier, proofs._tree(org.pk, n)._fetch)
    naive = []
    for i in [rng.randrange(m) for _ in range(args.naive_runs)]:
        t0 = time.perf_counter()
        path = verifier.inclusion_proof(i, kept)
        naive.append(time.perf_counter() - t0)
        assert path == small.inclusion_path(i), i  # the tiles give the RFC's path
    naive_p50 = statistics.median(naive)
    line("baseline_naive_ms", f"median {naive_p50 * 1000:,.0f} ms over {len(naive)} proofs, in-memory recursive "
                              f"PATH over {m:,} leaf hashes (paths equal to the tiles' at size {m:,})")
    line("ratio_vs_naive", f"{naive_p50 / inclusion_p50:,.0f}x  (naive at {m:,} leaves / tiled at {n:,} leaves)")

    t0 = time.perf_counter()
    total = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DECLARE scan NO SCROLL CURSOR FOR SELECT hashes FROM audit_merkletile "
                       "WHERE organization_id = %s AND level = 0 ORDER BY index", [org.pk])
        while True:
            cursor.execute("FETCH 2000 FROM scan")
            rows = cursor.fetchall()
            if not rows:
                break
            total += sum(len(r[0]) for r in rows)
    scan = time.perf_counter() - t0
    assert total == (n // 256) * 8192
    line("baseline_scan_ms", f"{scan * 1000:,.0f} ms to read the level-0 column ({total / 2**20:,.0f} MiB, "
                             f"{n // 256:,} tiles, every leaf hash)")
    line("ratio_vs_scan", f"{scan / inclusion_p50:,.0f}x")
    line("tiles_in_db", f"{MerkleTile.objects.filter(organization=org).count():,}")
    line("loadavg_end", loadavg())


if __name__ == "__main__":
    main()
