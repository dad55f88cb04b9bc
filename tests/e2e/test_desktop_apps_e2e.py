"""GUI applications as sidecars on the desktop (profiles/desktop-apps.yaml), in a real browser.

The user picks the profile on the spawn page, which lists the sidecar application with its own
resources; the desktop opens through noVNC; the application (xclock, in its own container, the
X socket shared through the pod's /tmp/.X11-unix volume) has a window on the desktop's display,
checked with ``xwininfo`` in the sidecar container and kept as a screenshot. Killing the
application is handled as the profile says (``on_exit: restart``): the kubelet restarts the
container after Kubernetes' back-off, reports it (a BackOff Warning, ``restartCount``), and the
window comes back.
"""

from __future__ import annotations

import re

import kubernetes_validate
import pytest
from browser import SCREENSHOTS, START_TIMEOUT_MS, log_in
from hub_user import exec_in, require_programs, user_pods
from kubernetes_asyncio import client

from jupyterhub_platform.devcluster.kubelet.process_pod import BACKOFF_FIRST
from jupyterhub_platform.devcluster.procs import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.jh55_only, pytest.mark.asyncio(loop_scope="session")]

APP = "clock"
KUBERNETES_VERSION = "1.30"


async def app_windows(k8s, pod: str) -> str:
    """The X display's window tree as the sidecar sees it (its DISPLAY and cookie)."""
    return await exec_in(k8s, pod, ["xwininfo", "-root", "-tree"], container=APP)


def app_status(pod) -> client.V1ContainerStatus:
    return next(s for s in pod.status.init_container_statuses or [] if s.name == APP)


async def test_a_gui_sidecar_draws_on_the_desktop_and_is_restarted_when_killed(
    browser, platform, hub, k8s
):
    require_programs("vncserver", "xclock", "xwininfo")
    hub("alice")  # registers the server for stopping after the test
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        form = await log_in(page, platform.hub_url, "alice")
        await form.get_by_role("radio", name="Desktop with applications").click()
        also = form.get_by_role("list", name="Also runs")
        assert (await also.inner_text()).strip() == (
            "Clock (stand-in GUI application) (0.5 CPU, 256 MiB RAM)"
        )
        await page.screenshot(path=SCREENSHOTS / "spawn-page-desktop-apps.png", full_page=True)
        await page.get_by_role("button", name="Start").click()
        await page.wait_for_url(re.compile(r"/user/alice/desktop/"), timeout=START_TIMEOUT_MS)
        await page.locator("#screen canvas").wait_for(timeout=START_TIMEOUT_MS)

        (pod,) = await user_pods(k8s, "alice")
        name = pod.metadata.name
        manifest = client.ApiClient().sanitize_for_serialization(pod)
        for key in ("status", "metadata"):
            manifest.pop(key)
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, **manifest},
            KUBERNETES_VERSION,
            strict=True,
        )
        sidecar = next(c for c in pod.spec.init_containers if c.name == APP)
        assert sidecar.restart_policy == "Always"
        assert {m.mount_path for m in sidecar.volume_mounts} >= {"/tmp/.X11-unix", "/home/jovyan"}
        assert pod.spec.node_selector == {"jupyterhub-platform/node-group": "gui"}

        async def has_window() -> bool:
            return '"xclock"' in await app_windows(k8s, name)

        await wait_for(has_window, timeout=60, interval=1, what="the xclock window on :1")
        await page.wait_for_timeout(1500)  # a frame or two for noVNC to draw it
        await page.screenshot(path=SCREENSHOTS / "desktop-apps.png")

        # kill the application: the container exits and is restarted after the back-off
        await exec_in(k8s, name, ["pkill", "-KILL", "-x", "xclock"], container=APP)

        async def restarted() -> bool:
            (current,) = await user_pods(k8s, "alice")
            status = app_status(current)
            return status.restart_count == 1 and status.state.running is not None

        await wait_for(restarted, timeout=BACKOFF_FIRST + 30, interval=0.5,
                       what="the application's restart")  # fmt: skip
        (pod,) = await user_pods(k8s, "alice")
        last = app_status(pod).last_state.terminated
        assert last.exit_code == 137, "the killed application's exit is kept as lastState"
        events = (await k8s.list_namespaced_event("default")).items
        backoff = [e for e in events if e.involved_object.name == name and e.reason == "BackOff"]
        assert backoff and backoff[0].type == "Warning" and f"container {APP}" in backoff[0].message
        await wait_for(has_window, timeout=30, interval=1, what="the restarted xclock window")
        await page.wait_for_timeout(1500)
        await page.screenshot(path=SCREENSHOTS / "desktop-apps-restarted.png")
        assert pod.status.phase == "Running", "the server keeps running through the restart"
    except Exception:
        await page.screenshot(path=SCREENSHOTS / "desktop-apps-failure.png", full_page=True)
        raise
    finally:
        await context.close()
