"""The HTTP face of the emulator: Kubernetes REST paths, Status bodies, list and watch streams.

Every request but the health checks must carry the cluster's bearer token (the kubeconfig's);
others get 401 with a Status body, as a kube-apiserver whose anonymous access is limited to
``/livez``, ``/readyz`` and ``/healthz`` answers them. ``pods/log`` and ``pods/exec`` are served
from the kubelet (podlog.py, podexec.py); ``kubectl get`` gets Tables (tables.py).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import time
from collections import Counter
from collections.abc import Callable

from aiohttp import web

from . import errors, tables
from .nodeapi import NodeStreams
from .patching import SUPPORTED as PATCH_TYPES
from .podexec import serve_exec
from .podlog import serve_log
from .registry import Registry
from .resources import (
    POD,
    VERBS,
    ResourceType,
    Target,
    UnknownPath,
    group_versions,
    in_group_version,
    parse_target,
)
from .selectors import Selector, SelectorError, parse_field_selector, parse_label_selector
from .store import Change, Expired, Subscription, TooOld
from .validation import KUBERNETES_VERSION

log = logging.getLogger(__name__)

# Without timeoutSeconds the real server ends a watch after 30-60 minutes.
DEFAULT_WATCH_SECONDS = 1800
# How often an idle watch checks whether its client went away.
IDLE_CHECK_SECONDS = 2.0
MAX_BODY_BYTES = 3 * 1024 * 1024
TRUE_VALUES = ("true", "True", "1")
#: what anonymous clients may reach (the real server's AnonymousAuthConfigurableEndpoints)
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/healthz/", "/livez/", "/readyz/"})
#: pod subresources served from the kubelet, and their discovery verbs
POD_STREAMS = {"log": ["get"], "exec": ["create", "get"]}


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _json(obj: object, status: int = 200) -> web.Response:
    return web.Response(text=_dumps(obj), status=status, content_type="application/json")


@web.middleware
async def _status_errors(request: web.Request, handler):
    try:
        return await handler(request)
    except errors.ApiError as exc:
        return _json(exc.body, exc.code)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("internal error serving %s %s", request.method, request.path)
        body = errors.status_body(
            500, "InternalError", "an internal error occurred in the devcluster API server"
        )
        return _json(body, 500)


# discovery ---------------------------------------------------------------------------------
def _resource_entries(rtype: ResourceType) -> list[dict]:
    entry = {
        "name": rtype.plural,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": list(VERBS),
    }
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    entries = [entry]
    if rtype.has_status:
        entries.append(
            {
                "name": f"{rtype.plural}/status",
                "singularName": "",
                "namespaced": rtype.namespaced,
                "kind": rtype.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    if rtype is POD:
        entries += [
            {
                "name": f"pods/{sub}",
                "singularName": "",
                "namespaced": True,
                "kind": "PodExecOptions" if sub == "exec" else "Pod",
                "verbs": verbs,
            }
            for sub, verbs in POD_STREAMS.items()
        ]
    return entries


def bearer_token(header: str | None) -> str | None:
    scheme, _, token = (header or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def client_of(user_agent: str | None) -> str:
    """The first product of a User-Agent (``OpenAPI-Generator/31.1.0/python``: ``OpenAPI-Generator``)."""
    product = (user_agent or "").split(" ", 1)[0].split("/", 1)[0]
    return product or "unknown"


def metrics_text(counts: Counter[tuple[str, str]]) -> str:
    """``counts`` as Prometheus text, one ``devcluster_requests_total`` sample per key."""

    def label(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"')

    lines = [
        "# HELP devcluster_requests_total Requests served, by client and method.",
        "# TYPE devcluster_requests_total counter",
    ]
    lines += [
        f'devcluster_requests_total{{client="{label(c)}",method="{label(m)}"}} {n}'
        for (c, m), n in sorted(counts.items())
    ]
    return "\n".join(lines) + "\n"


def unauthorized() -> web.Response:
    return _json(errors.status_body(401, "Unauthorized", "Unauthorized"), 401)


def _resource_list(group: str, version: str) -> dict:
    types = in_group_version(group, version)
    if not types:
        raise errors.path_not_found(f"/apis/{group}/{version}" if group else f"/api/{version}")
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": types[0].api_version,
        "resources": [e for rtype in types for e in _resource_entries(rtype)],
    }


def _api_group(name: str, versions: list[str]) -> dict:
    listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": listed, "preferredVersion": listed[0]}


class ApiServer:
    """Serves one :class:`Registry` over HTTP to clients holding ``token`` (None: to anyone)."""

    def __init__(self, registry: Registry, *, token: str | None = None):
        self.registry = registry
        self.store = registry.store
        self.token = token
        self.on_request: Callable[[web.Request], None] | None = None
        """Called with every request before it is handled (benchmarks count requests with it)."""
        self.request_counts: Counter[tuple[str, str]] = Counter()
        """Requests served, by (User-Agent product, method); ``GET /metrics`` reports them."""
        self.node_streams: NodeStreams | None = None
        """The kubelet serving ``pods/log`` and ``pods/exec`` (None without a kubelet)."""
        self.app = web.Application(
            middlewares=[self._observe, self._authenticate, _status_errors],
            client_max_size=MAX_BODY_BYTES,
        )
        route = self.app.router.add_route
        # Discovery paths are requested both with and without a trailing slash.
        for path, handler in (
            ("/version", self._version),
            ("/api", self._core_versions),
            ("/apis", self._groups),
            ("/apis/{group}", self._group),
            ("/api/{version}", self._core_resources),
            ("/apis/{group}/{version}", self._group_resources),
            ("/healthz", self._ok),
            ("/readyz", self._ok),
            ("/livez", self._ok),
            ("/metrics", self._metrics),
        ):
            route("*", path, handler)
            route("*", path + "/", handler)
        self.app.router.add_route("*", "/api/{version}/{tail:.+}", self._core_request)
        self.app.router.add_route("*", "/apis/{group}/{version}/{tail:.+}", self._group_request)

    @web.middleware
    async def _observe(self, request: web.Request, handler):
        self.request_counts[(client_of(request.headers.get("User-Agent")), request.method)] += 1
        if self.on_request is not None:
            self.on_request(request)
        return await handler(request)

    @web.middleware
    async def _authenticate(self, request: web.Request, handler):
        if self.token is not None and request.path not in PUBLIC_PATHS:
            offered = bearer_token(request.headers.get("Authorization"))
            if offered is None or not hmac.compare_digest(offered.encode(), self.token.encode()):
                return unauthorized()
        return await handler(request)

    # discovery handlers ------------------------------------------------------------------
    async def _ok(self, request: web.Request) -> web.Response:
        self._only_get(request)
        return web.Response(text="ok")

    async def _metrics(self, request: web.Request) -> web.Response:
        self._only_get(request)
        return web.Response(text=metrics_text(self.request_counts))

    async def _version(self, request: web.Request) -> web.Response:
        self._only_get(request)
        major, minor, _ = KUBERNETES_VERSION.split(".")
        return _json(
            {
                "major": major,
                "minor": minor,
                "gitVersion": f"v{KUBERNETES_VERSION}",
                "gitCommit": "devcluster",
                "gitTreeState": "clean",
                "buildDate": "1970-01-01T00:00:00Z",
                "goVersion": "go1.24",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        )

    async def _core_versions(self, request: web.Request) -> web.Response:
        self._only_get(request)
        return _json(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}
                ],
            }
        )

    async def _groups(self, request: web.Request) -> web.Response:
        self._only_get(request)
        groups = [_api_group(name, versions) for name, versions in group_versions().items()]
        return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})

    async def _group(self, request: web.Request) -> web.Response:
        self._only_get(request)
        name = request.match_info["group"]
        versions = group_versions().get(name)
        if versions is None:
            raise errors.path_not_found(request.path)
        return _json({"kind": "APIGroup", "apiVersion": "v1", **_api_group(name, versions)})

    async def _core_resources(self, request: web.Request) -> web.Response:
        self._only_get(request)
        return _json(_resource_list("", request.match_info["version"]))

    async def _group_resources(self, request: web.Request) -> web.Response:
        self._only_get(request)
        return _json(_resource_list(request.match_info["group"], request.match_info["version"]))

    @staticmethod
    def _only_get(request: web.Request) -> None:
        """Discovery documents are read-only."""
        if request.method != "GET":
            raise errors.method_not_allowed(request.method, request.path)

    # resource handlers -------------------------------------------------------------------
    async def _core_request(self, request: web.Request) -> web.StreamResponse:
        return await self._resource_request(request, "")

    async def _group_request(self, request: web.Request) -> web.StreamResponse:
        return await self._resource_request(request, request.match_info["group"])

    async def _resource_request(self, request: web.Request, group: str) -> web.StreamResponse:
        version = request.match_info["version"]
        try:
            target = parse_target(group, version, request.match_info["tail"].split("/"))
        except UnknownPath:
            raise errors.path_not_found(request.path) from None
        if request.query.get("dryRun"):
            raise errors.bad_request("dryRun is not supported by the devcluster API server")
        method = request.method
        if target.rtype is POD and target.subresource in POD_STREAMS and target.name:
            return await self._pod_stream(request, target)
        if target.subresource is not None:
            if target.subresource != "status" or not target.rtype.has_status:
                raise errors.path_not_found(request.path)
            if method not in ("GET", "PUT", "PATCH"):
                raise errors.method_not_allowed(method, request.path)
        if target.name is None:
            if method == "GET":
                if request.query.get("watch") in TRUE_VALUES:
                    return await self._watch(request, target)
                return self._list(request, target)
            if method == "POST" and (target.namespace is not None or not target.rtype.namespaced):
                body = await self._body(request)
                return _json(self.registry.create(target.rtype, target.namespace, body), 201)
            if method == "DELETE":
                options = await self._delete_options(request)
                items = self.registry.delete_collection(
                    target.rtype, target.namespace, self._selector(request, target.rtype), **options
                )
                return _json(self._list_body(target.rtype, items))
            raise errors.method_not_allowed(method, request.path)
        rtype, ns, name = target.rtype, target.namespace, target.name
        if method == "GET":
            obj = self.registry.get(rtype, ns, name)
            version = tables.table_version(request.headers.get("Accept"))
            if version is not None:
                return _json(
                    tables.table(
                        rtype,
                        [obj],
                        version=version,
                        include_object=request.query.get("includeObject", "Metadata"),
                    )
                )
            return _json(obj)
        if method == "PUT":
            body = await self._body(request)
            return _json(
                self.registry.replace(rtype, ns, name, body, subresource=target.subresource)
            )
        if method == "PATCH":
            content_type = request.content_type
            if content_type not in PATCH_TYPES:
                raise errors.unsupported_media_type(content_type)
            patch = await self._body(request)
            return _json(
                self.registry.patch(
                    rtype, ns, name, content_type, patch, subresource=target.subresource
                )
            )
        if method == "DELETE":
            options = await self._delete_options(request)
            return _json(self.registry.delete(rtype, ns, name, **options))
        raise errors.method_not_allowed(method, request.path)

    async def _pod_stream(self, request: web.Request, target: Target) -> web.StreamResponse:
        sub = target.subresource
        allowed = ("GET",) if sub == "log" else ("GET", "POST")
        if request.method not in allowed:
            raise errors.method_not_allowed(request.method, request.path)
        pod = self.registry.get(POD, target.namespace, target.name)
        serve = serve_log if sub == "log" else serve_exec
        return await serve(request, pod, self.node_streams)

    @staticmethod
    async def _body(request: web.Request) -> object:
        raw = await request.read()
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise errors.bad_request(f"the request body is not valid JSON: {exc}") from None

    async def _delete_options(self, request: web.Request) -> dict:
        raw = await request.read()
        options = {}
        if raw.strip():
            try:
                options = json.loads(raw)
            except ValueError as exc:
                raise errors.bad_request(
                    f"the DeleteOptions body is not valid JSON: {exc}"
                ) from None
            if not isinstance(options, dict):
                raise errors.bad_request("the DeleteOptions body must be a JSON object")
        query = request.query
        grace = query.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
        propagation = query.get("propagationPolicy", options.get("propagationPolicy"))
        orphan = query.get("orphanDependents", options.get("orphanDependents"))
        if propagation is None and orphan is not None:
            propagation = "Orphan" if str(orphan).lower() == "true" else "Background"
        try:
            grace = None if grace is None else int(grace)
        except ValueError:
            raise errors.bad_request(f"gracePeriodSeconds: invalid value {grace!r}") from None
        return {
            "grace": grace,
            "propagation": propagation,
            "preconditions": options.get("preconditions"),
        }

    @staticmethod
    def _selector(request: web.Request, rtype: ResourceType) -> Selector:
        try:
            return Selector(
                parse_label_selector(request.query.get("labelSelector")),
                parse_field_selector(request.query.get("fieldSelector"), rtype.field_path),
            )
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None

    # list ----------------------------------------------------------------------------------
    def _list_body(self, rtype: ResourceType, items: list[dict], meta: dict | None = None) -> dict:
        return {
            "kind": rtype.list_kind,
            "apiVersion": rtype.api_version,
            "metadata": {"resourceVersion": str(self.store.resource_version), **(meta or {})},
            "items": items,
        }

    def _list(self, request: web.Request, target: Target) -> web.Response:
        items = self.registry.list(
            target.rtype, target.namespace, self._selector(request, target.rtype)
        )
        token = request.query.get("continue")
        if token:
            try:
                after = json.loads(base64.urlsafe_b64decode(token))["after"]
            except (ValueError, KeyError, TypeError):
                raise errors.bad_request("continue: invalid continue token") from None
            items = [o for o in items if _list_key(o) > tuple(after)]
        meta = {}
        limit = request.query.get("limit")
        if limit and limit.isdigit() and 0 < int(limit) < len(items):
            items, rest = items[: int(limit)], items[int(limit) :]
            after = list(_list_key(items[-1]))
            meta = {
                "continue": base64.urlsafe_b64encode(_dumps({"after": after}).encode()).decode(),
                "remainingItemCount": len(rest),
            }
        version = tables.table_version(request.headers.get("Accept"))
        if version is not None:
            list_meta = {"resourceVersion": str(self.store.resource_version), **meta}
            return _json(
                tables.table(
                    target.rtype,
                    items,
                    version=version,
                    list_meta=list_meta,
                    include_object=request.query.get("includeObject", "Metadata"),
                )
            )
        return _json(self._list_body(target.rtype, items, meta))

    # watch ---------------------------------------------------------------------------------
    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        selector = self._selector(request, target.rtype)
        timeout = request.query.get("timeoutSeconds")
        try:
            seconds = DEFAULT_WATCH_SECONDS if not timeout else int(timeout)
            version = request.query.get("resourceVersion") or "0"
            since = int(version)
        except ValueError:
            raise errors.bad_request(
                "timeoutSeconds and resourceVersion must be integers"
            ) from None
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        initial: list[dict] = []
        subscription: Subscription | None = None
        expired: str | None = None
        # Listing and subscribing happen without an await in between: no change falls in a gap.
        if since == 0:
            initial = self.registry.list(target.rtype, target.namespace, selector)
            subscription = self.store.subscribe()
        else:
            try:
                subscription = self.store.subscribe(since)
            except TooOld as exc:
                expired = str(exc)
        try:
            await response.prepare(request)
            if expired is not None:
                await self._send(response, "ERROR", errors.expired(expired).body)
                return response
            for obj in initial:
                await self._send(response, "ADDED", obj)
            await self._stream(request, response, subscription, target, selector, seconds)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            if subscription is not None:
                subscription.close()
        return response

    async def _stream(
        self,
        request: web.Request,
        response: web.StreamResponse,
        subscription: Subscription,
        target: Target,
        selector: Selector,
        seconds: int,
    ) -> None:
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                change = await asyncio.wait_for(
                    subscription.get(), min(remaining, IDLE_CHECK_SECONDS)
                )
            except asyncio.TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    return
                continue
            if change is None:
                return
            if isinstance(change, Expired):
                await self._send(response, "ERROR", errors.expired(change.message).body)
                return
            event = watch_event(change, target, selector)
            if event is not None:
                await self._send(response, *event)

    @staticmethod
    async def _send(response: web.StreamResponse, type_: str, obj: dict) -> None:
        await response.write((_dumps({"type": type_, "object": obj}) + "\n").encode())


def _list_key(obj: dict) -> tuple[str, str]:
    return obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def watch_event(change: Change, target: Target, selector: Selector) -> tuple[str, dict] | None:
    """The event a watcher sees for a change, or None: objects entering or leaving the
    selector are reported ADDED and DELETED, like the real server's filtered watches."""
    if change.rtype is not target.rtype:
        return None
    if target.namespace is not None and change.new["metadata"].get("namespace") != target.namespace:
        return None
    now = change.type != "DELETED" and selector.matches(change.new)
    before = change.old is not None and selector.matches(change.old)
    if change.type == "DELETED":
        return ("DELETED", change.new) if before else None
    if now and before:
        return "MODIFIED", change.new
    if now:
        return "ADDED", change.new
    if before:
        return "DELETED", change.new
    return None
