"""Native sidecars (init containers with ``restartPolicy: Always``) on the process kubelet, and
volumes shared inside the containers' private ``/tmp``: what the desktop's GUI sidecars use.

The programs build the shared path at run time, so the kubelet's rewriting of mount paths in
arguments cannot stand in for the bind under test.
"""

from __future__ import annotations

import pytest
from kubelet_helpers import (
    NS,
    PY,
    container,
    events_of,
    needs_namespaces,
    phase_is,
    pod_body,
    wait_pod,
)

from jupyterhub_platform.devcluster.kubelet.process_pod import BACKOFF_FIRST, restart_delay

pytestmark = [pytest.mark.kubelet("process"), pytest.mark.isolation("auto")]

SHARED = {"name": "shared", "mountPath": "/tmp/shared"}
# the first instance leaves its mark and fails; the restarted one stays up
APP = """
import glob, os, pathlib, sys, time
shared = os.path.join("/tmp", "shared")
first = not glob.glob(os.path.join(shared, "app-*"))
pathlib.Path(shared, f"app-{os.getpid()}-{time.monotonic_ns()}").write_text("up")
pathlib.Path("/tmp", "private-app").write_text("mine")
if first:
    time.sleep(1)
    sys.exit(3)
time.sleep(600)
"""
# the main container sees both instances' marks through the shared volume, none of the sidecar's
# private /tmp, then exits 0
MAIN = """
import glob, os, sys, time
shared = os.path.join("/tmp", "shared")
while len(glob.glob(os.path.join(shared, "app-*"))) < 2:
    time.sleep(0.2)
sys.exit(5 if os.path.exists(os.path.join("/tmp", "private-app")) else 0)
"""


def test_restart_back_off_doubles_up_to_five_minutes():
    assert [restart_delay(n) for n in range(7)] == [10, 20, 40, 80, 160, 300, 300]


async def test_a_native_sidecar_is_restarted_shares_tmp_volumes_and_stops_with_the_pod(
    devcluster, core
):
    if devcluster.kubelet.ctx.isolation is None:
        needs_namespaces()
    app = container("app", PY, "-c", APP, restartPolicy="Always", volumeMounts=[SHARED])
    main = container("main", PY, "-c", MAIN, volumeMounts=[SHARED])
    body = pod_body("desk", main, restart="Never", init=[app],
                    volumes=[{"name": "shared", "emptyDir": {}}])  # fmt: skip
    await core.create_namespaced_pod(NS, body)

    def backing_off(pod) -> bool:
        (status,) = pod.status.init_container_statuses or [None]
        return bool(status and status.state.waiting and status.restart_count == 0
                    and status.last_state.terminated)  # fmt: skip

    pod = await wait_pod(core, "desk", "the sidecar's back-off", backing_off)
    (app_status,) = pod.status.init_container_statuses
    assert app_status.state.waiting.reason == "CrashLoopBackOff"
    assert app_status.last_state.terminated.exit_code == 3
    assert pod.status.phase == "Running", "a sidecar's exit does not end the pod"
    conditions = {c.type: c.status for c in pod.status.conditions}
    assert conditions["Initialized"] == "True" and conditions["Ready"] == "False"

    pod = await wait_pod(core, "desk", "the pod to finish", phase_is("Succeeded", "Failed"),
                         timeout=BACKOFF_FIRST + 20)  # fmt: skip
    (main_status,) = pod.status.container_statuses
    assert main_status.state.terminated.exit_code == 0, "main saw both instances, not /tmp"
    (app_status,) = pod.status.init_container_statuses
    assert app_status.restart_count == 1
    assert app_status.state.terminated, "stopped once the containers had exited"
    assert pod.status.phase == "Succeeded"
    backoff = [e for e in await events_of(core, "desk") if e.reason == "BackOff"]
    assert len(backoff) == 1 and backoff[0].type == "Warning"
    assert "container app" in backoff[0].message and "exited with code 3" in backoff[0].message
    started = [e for e in await events_of(core, "desk") if e.reason == "Started"]
    assert sum(e.count for e in started if e.message == "Started container app") == 2
