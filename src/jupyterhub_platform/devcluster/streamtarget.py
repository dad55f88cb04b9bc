"""Which container a ``pods/log`` or ``pods/exec`` request means, decided as the real API server
decides it before it contacts the kubelet (pure)."""

from __future__ import annotations

from . import errors
from .nodeapi import NodeStreamError

_REASONS = {400: "BadRequest", 404: "NotFound", 500: "InternalError"}


def _names(containers) -> list[str]:
    return [c.get("name", "") for c in containers or []]


def pick_container(pod: dict, requested: str | None) -> str:
    """The named container (which must exist), or the pod's only one; 400 otherwise."""
    spec, name = pod.get("spec", {}), pod["metadata"]["name"]
    init = _names(spec.get("initContainers"))
    regular = _names(spec.get("containers"))
    if requested:
        if requested not in regular + init + _names(spec.get("ephemeralContainers")):
            raise errors.bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    if len(regular) == 1:
        return regular[0]
    if not regular:
        raise errors.bad_request(f"a container name must be specified for pod {name}")
    message = (
        f"a container name must be specified for pod {name}, choose one of: [{' '.join(regular)}]"
    )
    if init:
        message += f" or one of the init containers: [{' '.join(init)}]"
    raise errors.bad_request(message)


def node_error(exc: NodeStreamError) -> errors.ApiError:
    """A kubelet refusal as the Status the API server relays."""
    return errors.ApiError(exc.status, _REASONS.get(exc.status, "InternalError"), exc.message)


def no_kubelet(pod: dict) -> errors.ApiError:
    """What a client gets when no kubelet runs the pod's node (``--kubelet none``)."""
    node = pod.get("spec", {}).get("nodeName")
    return errors.ApiError(
        500, "InternalError", f'no kubelet serves node "{node}" (the devcluster runs without one)'
    )
