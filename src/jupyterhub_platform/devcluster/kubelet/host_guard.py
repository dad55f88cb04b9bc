"""Containers the process kubelet must not run on this machine, and what happens to them instead.

Process "containers" run directly on the host, as the local user. A container asking for host
privileges — ``privileged``, added capabilities, the host's network or process namespace —
would act on this machine instead of a pod sandbox: the stock chart's ``block-cloud-metadata``
init container runs ``iptables --append OUTPUT ... --jump DROP`` as privileged, which on the
host would rewrite the host's firewall. Such containers are never run:

- an **init container** is skipped: it is recorded as terminated (exit 0, reason
  ``NotRunOnHost``) with a Warning event naming it and why, and the pod proceeds, as it would in
  a cluster where the init container ran;
- a **main container** is refused: terminated (exit 1, reason ``RefusedOnHost``) with a Warning
  event. Running it without what it asked for would pretend it works; the pod fails visibly
  (KubeSpawner reports the message to the user).
"""

from __future__ import annotations

from collections.abc import Mapping

ALLOWED_ADDED_CAPABILITIES: frozenset[str] = frozenset()
"""Capabilities a container may add and still run on the host: none, since an unprivileged
process has no capabilities, and any added one is a privilege the host would grant."""
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")
SKIPPED_REASON = "NotRunOnHost"
REFUSED_REASON = "RefusedOnHost"


def host_privileges(pod: Mapping, container: Mapping) -> list[str]:
    """What ``container`` (of ``pod``) asks for that would act on the host; empty when nothing."""
    spec = pod.get("spec") or {}
    asked = [f"{key}: true" for key in HOST_NAMESPACES if spec.get(key)]
    context = container.get("securityContext") or {}
    if context.get("privileged"):
        asked.append("privileged: true")
    added = [
        c
        for c in (context.get("capabilities") or {}).get("add") or []
        if c not in ALLOWED_ADDED_CAPABILITIES
    ]
    if added:
        asked.append(f"capabilities.add: {', '.join(added)}")
    return asked


def refusal_message(container: Mapping, asked: list[str], *, init: bool) -> str:
    what = "init container" if init else "container"
    outcome = "skipped; the pod continues" if init else "not started"
    return (
        f"{what} {container['name']!r} asks for {'; '.join(asked)}: the process kubelet runs "
        f"containers on this machine, where that would act on the host, so it is {outcome}"
    )


async def refuse_on_host(runtime, container: Mapping, status, *, init: bool) -> bool | None:
    """Stop ``container`` from running on the host if it asks for host privileges.

    None: it may run. Otherwise its ``status`` is terminated, a Warning event says why, and the
    result tells the kubelet whether the pod goes on (True for a skipped init container).
    """
    asked = host_privileges(runtime.pod, container)
    if not asked:
        return None
    message = refusal_message(container, asked, init=init)
    if init:
        status.terminate(0, SKIPPED_REASON, message)
    else:
        status.terminate(1, REFUSED_REASON, message)
    await runtime.event(
        SKIPPED_REASON if init else REFUSED_REASON,
        message,
        type="Warning",
        container=container["name"],
    )
    return init
