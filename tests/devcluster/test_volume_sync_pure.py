"""The atomic volume layout, the mount retry and the volume sync, on real directories.

The sync reads its objects through the ``fetch`` it is given; here that is a dict of API
objects, so each case can change, delete or count reads exactly (the emulator cases are in
test_kubelet_secret_volumes.py).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path, PurePosixPath

import pytest

from jupyterhub_platform.devcluster.kubelet import volume_sync
from jupyterhub_platform.devcluster.kubelet.atomic_writer import (
    DATA_LINK,
    PayloadError,
    write_payload,
)
from jupyterhub_platform.devcluster.kubelet.volume_sync import (
    VolumeSync,
    retry_delays,
    until_mounted,
)
from jupyterhub_platform.devcluster.kubelet.volumes import (
    ContainerConfigError,
    MountPending,
    PodLayout,
    plan_volumes,
    volume_files,
)


def versions(root: Path) -> list[str]:
    return [p.name for p in root.iterdir() if p.name.startswith("..") and p.name != DATA_LINK]


def test_payload_is_swapped_in_through_data_link(tmp_path):
    root = tmp_path / "vol"
    write_payload(root, {PurePosixPath("a"): (b"1", 0o600), PurePosixPath("s/b"): (b"2", 0o644)})
    (first,) = versions(root)
    assert os.readlink(root / DATA_LINK) == first
    assert os.readlink(root / "a") == "..data/a" and os.readlink(root / "s") == "..data/s"
    assert (root / "s" / "b").read_bytes() == b"2"
    assert (root / "a").stat().st_mode & 0o777 == 0o600
    assert (root / first).stat().st_mode & 0o777 == 0o755  # readable by the pod's user

    seen = []
    write_payload(root, {PurePosixPath("a"): (b"3", 0o400)}, own=lambda p: seen.append(p.name))
    (second,) = versions(root)  # the old version is gone
    assert second != first and seen == [second]
    assert (root / "a").read_bytes() == b"3"
    assert not (root / "s").exists() and not (root / "s").is_symlink()  # key dropped
    assert sorted(p.name for p in root.iterdir()) == sorted([DATA_LINK, second, "a"])


def test_payload_names_must_not_clash_with_the_layout(tmp_path):
    with pytest.raises(PayloadError, match="must not start with '..'"):
        write_payload(tmp_path, {PurePosixPath("..data"): (b"x", 0o644)})
    layout = PodLayout(tmp_path, "ns", "p", "u-1")
    pod = {"spec": {"volumes": [{"name": "s", "secret": {"secretName": "x"}}]}}
    volume = plan_volumes(pod, layout)["s"]
    with pytest.raises(ContainerConfigError, match='volume "s" : .*must not start'):
        volume_files(volume, {("secrets", "x"): {"..data": b"x"}})


def test_missing_items_key_is_pending_unless_optional(tmp_path):
    layout = PodLayout(tmp_path, "ns", "p", "u-1")
    source = {"name": "cfg", "items": [{"key": "k", "path": "k"}, {"key": "z", "path": "z"}]}
    pod = {"spec": {"volumes": [{"name": "c", "configMap": source}]}}
    volume = plan_volumes(pod, layout)["c"]
    with pytest.raises(MountPending) as pending:
        volume_files(volume, {("configmaps", "cfg"): {"k": b"v"}})
    assert pending.value.message == (
        'MountVolume.SetUp failed for volume "c" : configmap references non-existent config key: z'
    )
    pod["spec"]["volumes"][0]["configMap"]["optional"] = True
    optional = plan_volumes(pod, layout)["c"]
    assert volume_files(optional, {("configmaps", "cfg"): {"k": b"v"}}) == {
        PurePosixPath("k"): (b"v", 0o644)
    }


def test_retry_delays_double_up_to_the_cap():
    delays = retry_delays()
    assert [next(delays) for _ in range(7)] == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]


async def test_pending_mount_is_retried_and_reported_now_and_then(monkeypatch):
    monkeypatch.setattr(volume_sync, "retry_delays", lambda: iter(lambda: 0.001, None))
    now = [0.0]
    attempts, reported = [], []

    async def attempt():
        attempts.append(now[0])
        now[0] += 1.0  # each attempt "takes" a second of the fake clock
        if len(attempts) < 12:
            raise MountPending("not yet")
        return "mounted"

    async def report(exc):
        reported.append(now[0])

    assert await until_mounted(attempt, report, clock=lambda: now[0]) == "mounted"
    assert len(attempts) == 12
    assert reported == [1.0, 6.0, 11.0]  # first at once, then once per 5 s


def secret(value: str) -> dict:
    return {"data": {"key": base64.b64encode(value.encode()).decode()}}


async def test_sync_rewrites_changed_volumes_reading_each_object_once(tmp_path):
    layout = PodLayout(tmp_path, "ns", "p", "u-1")
    volumes_spec = [
        {"name": "a", "secret": {"secretName": "creds"}},
        {"name": "b", "secret": {"secretName": "creds", "items": [{"key": "key", "path": "k"}]}},
        {"name": "c", "configMap": {"name": "settings", "optional": True}},
    ]
    volumes = list(plan_volumes({"spec": {"volumes": volumes_spec}}, layout).values())
    store = {("secrets", "creds"): secret("v1")}
    reads = []

    async def fetch(kind, name):
        reads.append((kind, name))
        return store.get((kind, name))

    written = {}
    for volume in volumes:
        written[volume.name] = volume_files(volume, {("secrets", "creds"): {"key": b"v1"}})
        write_payload(volume.path, written[volume.name])
    sync = VolumeSync(volumes, written, fetch, period=0.01)

    assert await sync.sync_once() == [] and len(reads) == 2  # unchanged: nothing written
    store[("secrets", "creds")] = secret("v2")
    store[("configmaps", "settings")] = {"data": {"mode": "lab"}}
    assert await sync.sync_once() == ["a", "b", "c"]
    assert (volumes[0].path / "key").read_text() == (volumes[1].path / "k").read_text() == "v2"
    assert (volumes[2].path / "mode").read_text() == "lab"

    del store[("secrets", "creds")]  # a deleted Secret leaves the files as they were
    assert await sync.sync_once() == []
    assert (volumes[0].path / "key").read_text() == "v2"
    del store[("configmaps", "settings")]  # an optional volume's object gone: empty
    assert await sync.sync_once() == ["c"]
    assert not (volumes[2].path / "mode").exists() and len(reads) == 8
