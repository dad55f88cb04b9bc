"""ProfileSpawner against plain KubeSpawner with an equivalent ``profile_list``, in the same run.

- hub-side ``start()`` time (wall clock, mostly waiting for the pod, and the hub process's CPU
  time, which is what the spawner itself costs) and Kubernetes API requests per spawn, on the emulator (DevCluster with
  the light kubelet) over real HTTP; the emulator counts the requests kubernetes_asyncio sends;
- what credential injection costs: ProfileSpawner issuing three credential sets (a provider
  with no I/O, so the hub's own work is measured) into the server's Secret, against
  ProfileSpawner with no sets and the API token left in the pod spec (``api_token_in_secret``
  off): API requests (one Secret create more) and hub-side start() time;
- spawn-form rendering with 200 profiles x 50 groups;
- hub RSS after 100 spawns.

Each spawner class runs in its own subprocess, both at once (``python -m benchmarks.bench_spawner CLASS URL``),
so neither inherits the other's imports, caches or reflectors; the emulator runs here.
Spawners are driven as the hub drives them (user, hub, server, API token), without a hub.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from benchmarks.figures import Figure

SPAWNS = 100
FORM_PROFILES = 200
FORM_GROUPS = 50
FORM_RENDERS = 20
USER_AGENT_PREFIX = "OpenAPI-Generator"  # kubernetes_asyncio's; the light kubelet's differs
CLASSES = ("profiles", "kubespawner")  # also the namespaces their pods go to
CREDENTIALS = ("credentials", "no-credentials")  # ProfileSpawner with three sets / with none
CREDENTIAL_POLICY = """\
groups:
  researchers: {profiles: ["*"], credential_sets: [alpha, beta, gamma]}
culling: {policies: {standard: {idle_timeout: 1h}}}
credential_sets:  # declared for the policy; the spawner issues the no-I/O sets of credential_sets()
  alpha: {provider: template, config: {values: {a: "{username}"}}}
  beta: {provider: template, config: {values: {b: "{username}"}}}
  gamma: {provider: template, config: {values: {c: "{username}"}}}
"""
NAMESPACE_IN_PATH = re.compile(r"/namespaces/([^/]+)/")

# KubeSpawner settings both classes get: ProfileSpawner's pod defaults, written out for KubeSpawner.
COMMON = {
    "cmd": ["jupyterhub-singleuser"],
    "uid": 1000,
    "fs_gid": 100,
    "start_timeout": 60,
    "storage_pvc_ensure": True,
    "pvc_name_template": "claim-{username}",
    "storage_capacity": "10Gi",
    "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}],
    "volume_mounts": [{"name": "home", "mountPath": "/home/jovyan"}],
    "container_security_context": {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "pod_security_context": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
}
SPAWN_OPTIONS = {"profile": "jupyterlab", "image": "scipy", "size": "standard"}


# -- profiles for the form benchmark ---------------------------------------------------------
def group_name(i: int) -> str:
    return f"group-{i:02d}"


def many_profiles(directory: Path) -> None:
    """200 profile files; each allowed to 5 of the 50 groups, with 3 images and 3 sizes."""
    for i in range(FORM_PROFILES):
        groups = ", ".join(group_name((i + k * 7) % FORM_GROUPS) for k in range(5))
        (directory / f"p{i:03d}.yaml").write_text(
            f"""\
slug: p{i:03d}
display_name: Profile {i}
description: Generated profile number {i} for the form benchmark.
kind: jupyterlab
allowed_groups: [{groups}]
image:
  choices:
    minimal: {{display_name: Minimal, image: "quay.io/jupyter/minimal-notebook:2025-01-06", default: true}}
    scipy: {{display_name: SciPy, image: "quay.io/jupyter/scipy-notebook:2025-01-06"}}
    r: {{display_name: R, image: "quay.io/jupyter/r-notebook:2025-01-06"}}
resources:
  choices:
    small: {{display_name: Small, cpu: {{request: 0.5, limit: 1}}, memory: {{request: 1Gi, limit: 2Gi}}, default: true}}
    medium: {{display_name: Medium, cpu: {{request: 1, limit: 2}}, memory: {{request: 4Gi, limit: 8Gi}}}}
    large: {{display_name: Large, cpu: {{request: 4, limit: 8}}, memory: {{request: 16Gi, limit: 32Gi}}}}
"""
        )


def plain_profile_list(profile_dir: Path, groups: list[str]) -> list[dict]:
    """The KubeSpawner ``profile_list`` equivalent to what ProfileSpawner offers ``groups``:
    plain dicts, overrides as values (what an admin would write by hand)."""
    from jupyterhub_platform.profiles.access import entitlements_from_rules, offers
    from jupyterhub_platform.profiles.catalogue import load_catalogue
    from jupyterhub_platform.profiles.kubespawner import KIND_DEFAULT_URL

    catalogue = load_catalogue([profile_dir])
    available = offers(catalogue, entitlements_from_rules(catalogue.rules(), groups))
    return [
        {
            "slug": o.slug,
            "display_name": o.profile.display_name,
            "description": o.profile.description,
            "default": i == 0,
            "kubespawner_override": {
                "extra_labels": {"jupyterhub-platform/profile": o.slug},
                "environment": dict(o.profile.env),
                "default_url": o.profile.default_url or KIND_DEFAULT_URL.get(o.profile.kind, ""),
            },
            "profile_options": {
                "image": {
                    "display_name": "Image",
                    "choices": {
                        c.key: {
                            "display_name": c.display_name,
                            "default": c is o.default_image(),
                            "kubespawner_override": {"image": c.image},
                        }
                        for c in o.images
                    },
                },
                "size": {
                    "display_name": "Size",
                    "choices": {
                        s.key: {
                            "display_name": s.display_name,
                            "default": s is o.default_size(),
                            "kubespawner_override": {
                                "cpu_guarantee": s.resources.cpu_request,
                                "cpu_limit": s.resources.cpu_limit,
                                "mem_guarantee": s.resources.mem_request,
                                "mem_limit": s.resources.mem_limit,
                            },
                        }
                        for s in o.sizes
                    },
                },
            },
        }
        for i, o in enumerate(available)
    ]


# -- the subprocess: one spawner class ---------------------------------------------------------
def credential_sets() -> dict:
    """Three sets like the shipped kinds (S3-style keys with env, a token, a config value)."""
    from jupyterhub_platform.services.credentials import model

    class Fixed(model.Provider):
        name = "fixed"

        @property
        def keys(self):
            return tuple(self.config)

        async def issue(self, subject, ctx):
            now = ctx.now()
            return model.Issued({k: f"{v}-{subject.username}" for k, v in self.config.items()},
                                now, now + 3600)  # fmt: skip

    def one(name, keys, **kwargs):
        return model.CredentialSet(name, Fixed(keys, ("credential_sets", name)), **kwargs)

    s3 = dict.fromkeys(("aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                        "expiration", "endpoint_url", "region"), "v")  # fmt: skip
    sets = [
        one("alpha", s3, env={"AWS_DEFAULT_REGION": "region"}),
        one("beta", {"token": "t", "expiration": "e"}),
        one("gamma", {"PROJECT": "p"}, env={"PROJECT": "PROJECT"}, files=False),
    ]
    return {s.name: s for s in sets}


def credential_context():
    import time

    from jupyterhub_platform.services.credentials import model

    async def no_io(*args):
        raise RuntimeError("the benchmark's sets do no I/O")

    return model.IssueContext(fetch=no_io, read_secret=no_io, verify_token=no_io, now=time.time)


def make_spawner(kind: str, name: str, config, groups: list[str], mock: bool = False):
    from jupyterhub.objects import Hub, Server
    from kubespawner import KubeSpawner

    from jupyterhub_platform.spawner import ProfileSpawner

    cls = KubeSpawner if kind == "kubespawner" else ProfileSpawner
    user = SimpleNamespace(
        name=name,
        id=hash(name) % 10**6,
        url=f"/user/{name}/",
        escaped_name=name,
        groups=[SimpleNamespace(name=g) for g in groups],
        settings={},
    )
    spawner = cls(
        _mock=mock,  # mock: no Kubernetes client (form rendering only)
        user=user,
        hub=Hub(base_url="/hub/", ip="127.0.0.1", port=8081),
        server=Server(base_url=f"/user/{name}/", ip="0.0.0.0", port=8888),
        api_token=f"token-{name}",
        oauth_client_id=f"jupyterhub-user-{name}",
        config=config,
    )
    if kind in CREDENTIALS:
        declared = credential_sets() if kind == "credentials" else {}
        spawner.declared_credential_sets = lambda: declared
        spawner.issue_context = credential_context

        async def get_auth_state():
            return {}

        user.get_auth_state = get_auth_state
    return spawner


def spawn_config(kind: str, namespace: str):
    from traitlets.config import Config

    from jupyterhub_platform.profiles.catalogue import bundled_profiles_dir

    config = Config()
    for key, value in {**COMMON, "namespace": namespace}.items():
        setattr(config.KubeSpawner, key, value)
    if kind == "kubespawner":
        config.KubeSpawner.profile_list = plain_profile_list(
            bundled_profiles_dir(), ["researchers"]
        )
    if kind in CREDENTIALS:
        policy = Path(tempfile.mkdtemp(prefix="bench-policy-")) / "policy.yaml"
        policy.write_text(CREDENTIAL_POLICY)
        config.PlatformPolicy.policy_file = str(policy)
        config.ProfileSpawner.api_token_in_secret = kind == "credentials"
    return config


async def measure_spawns(kind: str, namespace: str) -> dict:
    import psutil

    config = spawn_config(kind, namespace)
    spawners, seconds, cpu = [], [], []
    for i in range(SPAWNS + 1):  # the first start also starts the shared reflectors: not timed
        spawner = make_spawner(kind, f"{kind[:1]}user{i:03d}", config, ["researchers"])
        spawner.user_options = dict(SPAWN_OPTIONS)
        started, cpu_started = time.perf_counter(), time.process_time()
        await spawner.start()
        if i:
            seconds.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
        spawners.append(spawner)
    rss = psutil.Process().memory_info().rss
    return {"start_seconds": seconds, "start_cpu_seconds": cpu, "rss_bytes": rss}


async def measure_form(kind: str, profile_dir: Path) -> float:
    from traitlets.config import Config

    groups = [group_name(i) for i in range(0, FORM_GROUPS, 3)]
    config = Config()
    if kind == "kubespawner":
        # Per-user profiles need a callable profile_list, which KubeSpawner renders on each
        # request (a static list is rendered once). This one only returns the precomputed
        # list: the baseline is KubeSpawner's rendering alone, without any group filtering.
        profiles = plain_profile_list(profile_dir, groups)
        config.KubeSpawner.profile_list = lambda spawner: profiles
    else:
        config.ProfileSpawner.profile_directories = [str(profile_dir)]
    spawner = make_spawner(kind, "formuser", config, groups, mock=True)
    html = await spawner.get_options_form()
    shown = html.count('name="profile"')
    assert shown > FORM_PROFILES // 2, f"only {shown} profiles in the form"
    started = time.perf_counter()
    for _ in range(FORM_RENDERS):
        await spawner.get_options_form()
    return (time.perf_counter() - started) / FORM_RENDERS


def child(argv: list[str]) -> int:
    """``spawn CLASS KUBECONFIG NAMESPACE`` or ``form CLASS KUBECONFIG PROFILE_DIR``."""
    mode, kind, kubeconfig, arg = argv
    os.environ["KUBECONFIG"] = kubeconfig  # KubeSpawner loads it on construction
    if mode == "spawn":
        result = asyncio.run(measure_spawns(kind, arg))
    else:
        result = {"form_seconds": asyncio.run(measure_form(kind, Path(arg)))}
    print(json.dumps(result), flush=True)
    return 0


# -- the parent: emulator, counting, report ---------------------------------------------------
async def run_child(log_dir: Path, *args: str) -> dict:
    """Run ``python -m benchmarks.bench_spawner ARGS`` in its own process group; its JSON result."""
    from jupyterhub_platform.devcluster.procs import ManagedProcess

    log = log_dir / f"{args[0]}-{args[1]}.log"
    proc = ManagedProcess(
        [sys.executable, "-m", "benchmarks.bench_spawner", *args], name=args[1], log_path=log
    )
    try:
        await asyncio.to_thread(proc.popen.wait)
    finally:
        await proc.astop()
    lines = log.read_text().splitlines()
    if proc.returncode != 0 or not lines or not lines[-1].startswith("{"):
        raise RuntimeError(f"bench_spawner {' '.join(args)} failed:\n{proc.log_tail()}")
    return json.loads(lines[-1])


async def run() -> list[Figure]:
    from jupyterhub_platform.devcluster.cluster import DevCluster

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-spawner-") as tmp:
        logs = Path(tmp)
        cluster = DevCluster(Path(tmp) / "cluster", kubelet="light")
        await cluster.start()
        counted = dict.fromkeys((*CLASSES, *CREDENTIALS), 0)

        def count(request) -> None:
            if request.headers.get("User-Agent", "").startswith(USER_AGENT_PREFIX):
                match = NAMESPACE_IN_PATH.search(request.path)
                if match and match.group(1) in counted:
                    counted[match.group(1)] += 1

        cluster.server.on_request = count
        try:
            for kind in counted:
                await _create_namespace(cluster.access, kind)
            # Each pair at once, each in its own namespace: the same machine load for both.
            for pair in (CLASSES, CREDENTIALS):
                spawned = await asyncio.gather(
                    *(run_child(logs, "spawn", k, str(cluster.kubeconfig_path), k) for k in pair)
                )
                for kind, result in zip(pair, spawned, strict=True):
                    results[kind] = {**result, "requests": counted[kind]}
            profile_dir = Path(tmp) / "profiles"
            profile_dir.mkdir()
            many_profiles(profile_dir)
            for kind in CLASSES:
                results[kind].update(
                    await run_child(
                        logs, "form", kind, str(cluster.kubeconfig_path), str(profile_dir)
                    )
                )
        finally:
            await cluster.stop()

    ours, theirs = results["profiles"], results["kubespawner"]
    sets, none = results["credentials"], results["no-credentials"]
    none_name = "ProfileSpawner, no sets, token in the pod spec"
    return [
        Figure(
            f"hub-side start() time, median of {SPAWNS}",
            statistics.median(ours["start_seconds"]) * 1000, "ms",
            baseline=statistics.median(theirs["start_seconds"]) * 1000,
            baseline_name="KubeSpawner, equivalent profile_list", target="<= 1.1x",
        ),
        Figure(
            f"hub process CPU time per start(), mean of {SPAWNS}",
            statistics.mean(ours["start_cpu_seconds"]) * 1000, "ms",
            baseline=statistics.mean(theirs["start_cpu_seconds"]) * 1000,
            baseline_name="KubeSpawner, equivalent profile_list", target="<= 1.1x",
        ),
        Figure(
            "Kubernetes API requests per spawn", ours["requests"] / SPAWNS, "requests",
            baseline=theirs["requests"] / SPAWNS,
            baseline_name="KubeSpawner, equivalent profile_list",
            target="KubeSpawner's + 1: the Secret holding the API token",
        ),
        Figure(
            f"hub-side start() time with 3 credential sets, median of {SPAWNS}",
            statistics.median(sets["start_seconds"]) * 1000, "ms",
            baseline=statistics.median(none["start_seconds"]) * 1000,
            baseline_name=none_name, target="<= 1.1x",
        ),
        Figure(
            f"hub process CPU time per start() with 3 credential sets, mean of {SPAWNS}",
            statistics.mean(sets["start_cpu_seconds"]) * 1000, "ms",
            baseline=statistics.mean(none["start_cpu_seconds"]) * 1000,
            baseline_name=none_name, target="<= 1.1x",
        ),
        Figure(
            "Kubernetes API requests per spawn with 3 credential sets",
            sets["requests"] / SPAWNS, "requests",
            baseline=none["requests"] / SPAWNS,
            baseline_name=none_name, target="+1 request: the Secret",
        ),
        Figure(
            f"spawn form, {FORM_PROFILES} profiles x {FORM_GROUPS} groups",
            ours["form_seconds"] * 1000, "ms",
            baseline=theirs["form_seconds"] * 1000,
            baseline_name="KubeSpawner's form, equivalent profile_list", target="<= 1.2x",
        ),
        Figure(
            f"hub RSS after {SPAWNS} spawns", ours["rss_bytes"] / 2**20, "MiB",
            baseline=theirs["rss_bytes"] / 2**20,
            baseline_name="KubeSpawner, equivalent profile_list",
        ),
    ]  # fmt: skip


async def _create_namespace(access, name: str) -> None:
    async with access.session() as http:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        async with http.post(f"{access.url}/api/v1/namespaces", json=body) as resp:
            if resp.status not in (201, 409):
                raise RuntimeError(f"namespace {name}: {resp.status} {await resp.text()}")


if __name__ == "__main__":
    sys.exit(child(sys.argv[1:]))
