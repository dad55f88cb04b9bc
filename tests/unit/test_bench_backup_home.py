"""The backup benchmark's home (benchmarks/bench_backup.py): the mix it promises, the same bytes
on every run, nothing restic could compress or deduplicate."""

from __future__ import annotations

import hashlib
import zlib
from collections import Counter

from benchmarks.bench_backup import MIB, home_plan, write_home


def test_the_plan_is_the_promised_mix_and_the_same_every_time():
    plan = home_plan(1024 * MIB)
    assert plan == home_plan(1024 * MIB)
    assert sum(f.size for f in plan) == 1024 * MIB
    assert len({f.path for f in plan}) == len(plan)
    by_kind = Counter()
    for f in plan:
        by_kind[f.path.split("/")[0]] += f.size
    assert by_kind == {
        "projects": 1024 * MIB // 5,
        "results": 1024 * MIB * 35 // 100,
        "data": 1024 * MIB - 1024 * MIB // 5 - 1024 * MIB * 35 // 100,
    }
    small = [f for f in plan if f.path.startswith("projects/")]
    assert len(small) > 10_000 and max(f.size for f in small) <= 64 << 10
    assert max(Counter(f.path.rsplit("/", 1)[0] for f in small).values()) <= 100
    assert 1 <= sum(f.path.startswith("data/") for f in plan) <= 5


def test_the_home_is_deterministic_incompressible_and_unique(tmp_path):
    plan = home_plan(4 * MIB)
    assert write_home(tmp_path / "a", plan) == 4 * MIB
    write_home(tmp_path / "b", plan)
    digests = {}
    for f in plan:
        data = (tmp_path / "a" / f.path).read_bytes()
        assert data == (tmp_path / "b" / f.path).read_bytes()
        digests[hashlib.sha256(data).hexdigest()] = f.path
    assert len(digests) == len(plan)  # no two files alike
    blob = b"".join((tmp_path / "a" / f.path).read_bytes() for f in plan)
    assert len(zlib.compress(blob, 1)) > 0.99 * len(blob)
