"""``GET .../pods/{name}/log``: a container's log from its kubelet, whole or followed."""

from __future__ import annotations

from aiohttp import web

from . import errors
from .nodeapi import LogOptions, NodeStreamError, NodeStreams, parse_timestamp
from .streamtarget import no_kubelet, node_error, pick_container

TRUE_VALUES = ("true", "True", "1")


def _integer(query, name: str) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f"{name}: invalid value {value!r}: must be an integer") from None


def log_options(query, pod_name: str) -> LogOptions:
    """PodLogOptions from the query; 422 for values the real server's validation refuses."""
    tail, since, limit = (_integer(query, k) for k in ("tailLines", "sinceSeconds", "limitBytes"))
    since_time = query.get("sinceTime")
    causes = []
    if tail is not None and tail < 0:
        causes.append(("tailLines", f"Invalid value: {tail}: must be greater than or equal to 0"))
    if limit is not None and limit < 1:
        causes.append(("limitBytes", f"Invalid value: {limit}: must be greater than 0"))
    if since is not None and since < 1:
        causes.append(("sinceSeconds", f"Invalid value: {since}: must be greater than 0"))
    if since is not None and since_time:
        causes.append(("", "at most one of `sinceTime` or `sinceSeconds` may be specified"))
    since_ns = None
    if since_time:
        try:
            since_ns = parse_timestamp(since_time)
        except ValueError:
            raise errors.bad_request(f"sinceTime: invalid RFC 3339 time {since_time!r}") from None
    if causes:
        summary = ", ".join(f"{f}: {m}" if f else m for f, m in causes)
        raise errors.ApiError(
            422, "Invalid", f'PodLogOptions "{pod_name}" is invalid: {summary}',
            {"name": pod_name, "kind": "PodLogOptions",
             "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes]},
        )  # fmt: skip
    return LogOptions(
        follow=query.get("follow") in TRUE_VALUES,
        previous=query.get("previous") in TRUE_VALUES,
        timestamps=query.get("timestamps") in TRUE_VALUES,
        tail_lines=tail,
        since_seconds=since,
        since_time_ns=since_ns,
        limit_bytes=limit,
    )


async def serve_log(
    request: web.Request, pod: dict, streams: NodeStreams | None
) -> web.StreamResponse:
    container = pick_container(pod, request.query.get("container"))
    options = log_options(request.query, pod["metadata"]["name"])
    if not pod.get("spec", {}).get("nodeName"):
        return web.Response(status=200, content_type="text/plain")  # not scheduled: no logs yet
    if streams is None:
        raise no_kubelet(pod)
    try:
        chunks = streams.container_log(pod, container, options)
    except NodeStreamError as exc:
        raise node_error(exc) from None
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        async for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        await chunks.aclose()
    return response
