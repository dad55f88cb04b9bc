"""ProfileSpawner: KubeSpawner whose profiles come from profile files, filtered by group policy.

Pods are still built by KubeSpawner: each user's allowed profiles become a ``profile_list`` and
KubeSpawner's ``_load_profile`` applies the overrides. What this class adds is where profiles
come from, who may use which, strict validation of every requested option before any override is
applied, pod hygiene defaults and failing fast on sidecars that cannot start.
"""

from __future__ import annotations

import contextlib
import copy
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence

from jupyterhub.utils import exponential_backoff
from kubespawner import KubeSpawner
from tornado import web
from traitlets import Bool, Float, List, Unicode, default

from jupyterhub_platform.observability.hub_metrics import server_labels
from jupyterhub_platform.policy.config import PlatformPolicy
from jupyterhub_platform.policy.credential_sets import server_sets
from jupyterhub_platform.policy.entitlements import Entitlements
from jupyterhub_platform.policy.quota_decision import Server, usage_lines
from jupyterhub_platform.profiles.access import Offer, offers
from jupyterhub_platform.profiles.catalogue import Catalogue, bundled_profiles_dir
from jupyterhub_platform.profiles.form import form_view, render_form
from jupyterhub_platform.profiles.kubespawner import (
    ANNOTATION_START,
    OVERRIDDEN_TRAITS,
    kubespawner_profile_list,
    profile_list_entry,
)
from jupyterhub_platform.profiles.options import (
    OptionError,
    Selection,
    options_from_form,
    validate_options,
)
from jupyterhub_platform.services.credentials.model import CredentialSet, IssueContext, Subject
from jupyterhub_platform.services.credentials.secret_manifest import TOKEN_ENV, secret_manifest

from .credentials import (
    CredentialsRefused,
    ServerCredentials,
    hub_issue_context,
    issue_server_sets,
    put_secret,
)
from .quota_gate import QuotaState, counted_servers, quota_refusal, size_usage
from .sidecars import exited_sidecar, startup_failure, unready_sidecars
from .sources import DEFAULT_RELOAD_INTERVAL, Sources, shared_sources
from .spawn_audit import record_failure, record_refusal, record_start


class StartFailed(web.HTTPError):
    """A container of the server's pod failed, or a sidecar never became ready, during start.

    An HTTPError so JupyterHub relays the message (to the API client, the progress page) instead
    of reporting an unhandled error.
    """

    def __init__(self, message: str):
        super().__init__(500, "%s", message, reason="Server failed to start")
        self.jupyterhub_message = message


class ProfileSpawner(KubeSpawner):
    """KubeSpawner driven by profile files, offering each user only what the policy entitles.

    Profiles come from YAML files (``profile_directories``, reloaded when they change), not from
    ``profile_list``; with a group policy (``c.PlatformPolicy.policy_file``) the user's groups
    decide which profiles and choices they see, otherwise the files' ``allowed_groups`` do. Spawn
    requests (form or REST) are validated on the hub before anything reaches Kubernetes, and a
    start fails fast when a container cannot start or a sidecar never becomes ready. The
    KubeSpawner internals it relies on are listed in :mod:`jupyterhub_platform.upstream`.
    See docs/profiles.md.
    """

    clock = staticmethod(time.monotonic)
    """Seconds for the sidecar readiness timeout (a test substitutes its own clock)."""

    profile_directories = List(
        Unicode(),
        config=True,
        help="""Directories holding profile files (ending in .yaml or .yml). Default: the
        profiles shipped with jupyterhub-platform. In a cluster, mount a directory with
        hub.extraFiles or a ConfigMap. Files are reloaded when they change; a bad edit is logged
        and the last good set stays.""",
    )

    @default("profile_directories")
    def _profile_directories_default(self):
        return [str(bundled_profiles_dir())]

    profile_reload_interval = Float(
        DEFAULT_RELOAD_INTERVAL,
        config=True,
        help="Seconds between checks whether profile or policy files changed (checked on use).",
    )

    home_mount_path = Unicode(
        "/home/jovyan",
        config=True,
        help="Mount path of the home volume; sidecars get the same mount to share the home.",
    )

    sidecar_ready_timeout = Float(
        120.0,
        config=True,
        help="""Seconds a running sidecar may stay not-ready during start before the spawn fails
        with a message naming it (instead of waiting for start_timeout).""",
    )

    api_token_in_secret = Bool(
        True,
        config=True,
        help="""Put the server's JupyterHub API token in the server's credentials Secret (env
        JUPYTERHUB_API_TOKEN/JPY_API_TOKEN as secretKeyRef and a file under the credentials
        mount) instead of as a value in the pod spec. The Secret is created for every server
        (one extra API request per spawn); with this off it is created only for servers that
        get credential sets.""",
    )

    credentials_url = Unicode(
        "",
        config=True,
        help="""URL of the credentials service handed to servers as
        JUPYTERHUB_PLATFORM_CREDENTIALS_URL (for renewals and sets not issued at start), e.g.
        http://hub:8081/services/credentials/. Empty: the variable is not set.""",
    )

    # -- pod hygiene defaults (each can be overridden as c.KubeSpawner.<name>) ----------------
    @default("uid")
    def _uid_default(self):
        return 1000

    @default("fs_gid")
    def _fs_gid_default(self):
        return 100

    @default("container_security_context")
    def _container_security_context_default(self):
        return {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }

    @default("pod_security_context")
    def _pod_security_context_default(self):
        return {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}

    @default("storage_pvc_ensure")
    def _storage_pvc_ensure_default(self):
        return True

    @default("pvc_name_template")
    def _pvc_name_template_default(self):
        return "claim-{username}"

    @default("storage_capacity")
    def _storage_capacity_default(self):
        return "10Gi"

    @default("volumes")
    def _volumes_default(self):
        return [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]

    @default("volume_mounts")
    def _volume_mounts_default(self):
        return [{"name": "home", "mountPath": self.home_mount_path}]

    # -- KubeSpawner / JupyterHub hooks ----------------------------------------------------
    @default("profile_list")
    def _profile_list_default(self):
        return ProfileSpawner.entitled_profile_list

    @default("options_form")
    def _options_form_default(self):
        return ProfileSpawner.render_options_form

    @default("options_from_form")
    def _options_from_form_default(self):
        # JupyterHub calls this in the form handler before spawning, so a refusal reaches the
        # browser as 400/403 whatever slow_spawn_timeout is.
        return self.checked_options_from_form

    @default("apply_user_options")
    def _apply_user_options_default(self):
        # Runs before start(), so a refused request never gets near Kubernetes.
        return ProfileSpawner.check_user_options

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        configured = [
            s for s in ("KubeSpawner", "ProfileSpawner") if "profile_list" in self.config.get(s, {})
        ]
        for section in configured:
            if self.config[section]["profile_list"]:
                raise ValueError(
                    f"c.{section}.profile_list (singleuser.profileList) cannot be used with "
                    "ProfileSpawner: profiles come from profile files (profile_directories)"
                )
        if configured:  # the chart always sets singleuser.profileList, by default to []
            self.profile_list = ProfileSpawner.entitled_profile_list
        self._policy_file = PlatformPolicy(parent=self).policy_file or None
        self._baseline: dict | None = None
        self._watch_start = False
        self._start_id = ""  # the pod this start created: ANNOTATION_START
        self._sidecars_unready_since: float | None = None
        self._credentials: ServerCredentials | None = None

    # -- profiles and entitlements -----------------------------------------------------------
    def sources(self) -> Sources:
        # The group policy file is the hub-wide c.PlatformPolicy.policy_file, the same one the
        # authenticator reads. Without one, the profile files' allowed_groups decide alone.
        return shared_sources(
            self.profile_directories, self._policy_file, self.log, self.profile_reload_interval
        )

    def user_groups(self) -> list[str]:
        """Names of the user's JupyterHub groups (synced from the identity provider)."""
        return sorted(g.name for g in (getattr(self.user, "groups", None) or []))

    def entitlements(self) -> tuple[Catalogue, Entitlements]:
        return self.sources().entitlements(self.user_groups())

    def available(self) -> tuple[Catalogue, tuple[Offer, ...]]:
        catalogue, entitlements = self.entitlements()
        return catalogue, offers(catalogue, entitlements)

    def entitled_profile_list(self) -> list[dict]:
        """KubeSpawner ``profile_list`` holding only what this user may use."""
        return kubespawner_profile_list(self.available()[1])

    def validate_user_options(self, user_options, catalogue=None, available=None) -> Selection:
        """The validated request, or :class:`OptionError` (400/403) with a message for the user."""
        if catalogue is None or available is None:
            catalogue, available = self.available()
        try:
            return validate_options(user_options, catalogue, available)
        except OptionError as e:
            self.log.warning(
                "Refused spawn options for %s (groups %s): %s",
                self._log_name,
                self.user_groups(),
                e.jupyterhub_message,
            )
            self._record_refusal(user_options, e)
            raise

    def check_user_options(self, user_options) -> None:
        self.validate_user_options(user_options)

    def refuse_spawn_request(self, options, users) -> Server | None:
        """Raise :class:`OptionError` (400/403) unless ``options`` may start this server; return
        the quota reservation to hold while the spawn starts (None: no quota applies).

        Called by :mod:`.refusals` before JupyterHub starts a spawn, with the hub's ``users``.
        ``None`` options mean "start with the saved options", as JupyterHub then does.
        """
        if options is None:
            options = self.orm_spawner.user_options or {}
        catalogue, available = self.available()
        selection = self.validate_user_options(options, catalogue, available)
        return self.check_quota(catalogue, selection, users)

    def check_quota(self, catalogue: Catalogue, selection: Selection, users) -> Server | None:
        """Refuse (403) a spawn that would exceed the user's quota; else the server to reserve."""
        state = self.quota_state(catalogue, users)
        if state is None:
            return None
        request = size_usage(selection.offer.profile, selection.size)
        decision = state.decide(request)
        if not decision.allowed:
            self.log.warning("Quota refused a spawn of %s: %s", self._log_name, decision.message)
            error = OptionError(403, decision.message, "quota")
            self._record_refusal(selection.as_user_options(), error)
            raise error
        return Server(self.user.name, self.name, request)

    def quota_state(self, catalogue: Catalogue, users) -> QuotaState | None:
        """The user's quota and what counts against it, from the hub's ``users`` (None: no
        quota applies)."""
        quota = self.sources().quota(self.user_groups())
        if quota.unlimited:
            return None
        pools = {p.group for p in quota.pools}
        groups = [g for g in self.user.groups if g.name in pools]
        members = {g.name: [u.name for u in g.users] for g in groups}
        counted_users = {self.user.name: self.user}
        for orm_user in (u for g in groups for u in g.users):
            if orm_user.id in users and orm_user.name not in counted_users:
                counted_users[orm_user.name] = users[orm_user.id]
        counted = counted_servers(catalogue, counted_users.values(), (self.user.name, self.name))
        return QuotaState(quota, self.user.name, counted, members)

    def checked_options_from_form(self, formdata) -> dict[str, str]:
        options = options_from_form(formdata)
        return self.validate_user_options(options).as_user_options()

    def render_options_form(self) -> str:
        catalogue, available = self.available()
        state = self.quota_state(catalogue, self.user.settings.get("users", {}))
        try:
            last = (
                validate_options(self.user_options, catalogue, available)
                if self.user_options
                else None
            )
        except OptionError:
            last = None  # stale choices (profiles or groups changed): show the defaults
        if state is None:
            views, lines = form_view(available, last), []
        else:
            views = form_view(available, last, quota_refusal(state))
            lines = usage_lines(*state)
        return render_form(views, self.additional_profile_form_template_paths, lines)

    async def load_user_options(self):
        """Validate, then let KubeSpawner apply the chosen profile's overrides."""
        self._credentials = None
        # once, so a reload cannot split the steps
        catalogue, entitlements = self.entitlements()
        available = offers(catalogue, entitlements)
        selection = self.validate_user_options(self.user_options, catalogue, available)
        self._restore_baseline()
        self.user_options = selection.as_user_options()
        # only the chosen profile: KubeSpawner deep-copies and initialises what it is given
        chosen = [profile_list_entry(selection.offer, default=True)]
        self._load_profile(selection.offer.slug, self._get_initialized_profile_list(chosen))
        declared = self.declared_credential_sets()
        names = server_sets(
            entitlements.credential_sets, selection.offer.profile.credential_sets, declared
        )
        await self.prepare_credentials([declared[n] for n in names])

    def _restore_baseline(self) -> None:
        """Undo a previous profile's overrides: spawner objects are re-used across starts."""
        if self._baseline is None:  # first start: the settings are still the configured ones
            self._baseline = {t: copy.deepcopy(getattr(self, t)) for t in OVERRIDDEN_TRAITS}
            return
        for name, value in self._baseline.items():
            setattr(self, name, copy.deepcopy(value))

    # -- credentials: issued before the pod is built, the Secret created right after the pod -----
    def declared_credential_sets(self) -> Mapping[str, CredentialSet]:
        """The policy file's ``credential_sets`` (none without a policy file)."""
        policy = self.sources().policy
        return policy.current().credential_sets if policy is not None else {}

    def issue_context(self) -> IssueContext:
        """The I/O providers use at spawn (a test passes its own)."""
        return hub_issue_context(self.api, self.namespace, self.authenticator)

    async def prepare_credentials(self, sets: Sequence[CredentialSet]) -> None:
        """Issue the server's sets and add the Secret's volume and mount to this start's pod
        (volumes and mounts are restored before each start: nothing leaks into the next)."""
        if not sets and not self.api_token_in_secret:
            return
        auth_state = (await self.user.get_auth_state() or {}) if sets else {}
        subject = Subject(self.user.name, frozenset(self.user_groups()), auth_state)
        try:
            credentials = await issue_server_sets(
                self.pod_name, sets, subject, self.issue_context(), self.log, self.credentials_url
            )
        except CredentialsRefused as exc:
            self.log.error("Server %s not started: %s", self._log_name, exc)
            raise StartFailed(f"Your server could not start: {exc}") from None
        self.volumes = _with_named(self.volumes, credentials.volume())
        self.volume_mounts = _with_named(self.volume_mounts, credentials.mount())
        self._credentials = credentials

    def get_env(self):
        """KubeSpawner's env, the token and the sets' env as references to the Secret."""
        env = super().get_env()
        if self._credentials is not None:
            extra = self._credentials.env()
            if not self.api_token_in_secret:
                for name in TOKEN_ENV:
                    del extra[name]
            env.update(extra)
        return env

    def _this_start(self, pod: Mapping | None) -> Mapping | None:
        """``pod`` if it is the one this start created: the reflector may still hold an earlier
        pod of the same name (a server stopped just before), whose containers and uid are not
        this start's."""
        annotations = ((pod or {}).get("metadata") or {}).get("annotations") or {}
        if self._start_id and annotations.get(ANNOTATION_START) == self._start_id:
            return pod
        return None

    async def _make_create_pod_request(self, pod, request_timeout):
        self._start_id = uuid.uuid4().hex
        pod.metadata.annotations = {**(pod.metadata.annotations or {}),
                                    ANNOTATION_START: self._start_id}  # fmt: skip
        created = await super()._make_create_pod_request(pod, request_timeout)
        if created and self._credentials is not None:
            try:
                await self._create_credentials_secret(pod)
            except Exception:
                await self.stop(True)
                raise
        return created

    async def _create_credentials_secret(self, pod) -> None:
        """One create request: the pod's uid comes from the reflector (as KubeSpawner's own
        owned objects do), not from another API read (:func:`.credentials.put_secret`)."""
        ref_key = f"{self.namespace}/{self.pod_name}"
        await exponential_backoff(
            lambda: self.pod_has_uid(self._this_start(self.pod_reflector.pods.get(ref_key))),
            f"pod/{ref_key} does not have a uid!",
            timeout=self.k8s_api_request_retry_timeout,
        )
        credentials = self._credentials
        manifest = secret_manifest(
            self.pod_name,
            self.namespace,
            self.pod_reflector.pods[ref_key]["metadata"]["uid"],
            pod.metadata.labels or {},
            self.user.name,
            self.api_token,
            credentials.sets,
            credentials.issued,
        )
        try:
            await put_secret(self.api, self.namespace, manifest, self.k8s_api_request_timeout)
        except CredentialsRefused as exc:
            self.log.error("Server %s not started: %s", self._log_name, exc)
            raise StartFailed(f"Your server could not start: {exc}") from None
        self.log.info(
            "Created Secret %s for %s with credential sets: %s",
            manifest["metadata"]["name"],
            self._log_name,
            ", ".join(credentials.issued) or "none",
        )

    async def progress(self):
        """KubeSpawner's progress events, with a line for each set left out of this start."""
        shown = 0

        def new_notes() -> list[dict]:
            nonlocal shown
            notes = self._credentials.notes if self._credentials is not None else ()
            fresh, shown = notes[shown:], len(notes)
            return [{"message": f"Credentials: {note}"} for note in fresh]

        async for event in super().progress():
            for note in new_notes():
                yield note
            yield event
        for note in new_notes():
            yield note

    # -- start: fail fast on failed containers --------------------------------------------------------
    async def _start(self):
        began = self.clock()
        try:
            with self.watching_start():
                url = await super()._start()
        except BaseException as exc:  # a cancelled start (stopped, timed out) too
            record_failure(self.user.name, self.name, self.metric_labels(), exc)
            raise
        record_start(self.user.name, self.name, self.metric_labels(), self.user_options or {},
                     self.clock() - began)  # fmt: skip
        return url

    # -- metrics and the audit trail ----------------------------------------------------------
    def metric_profiles(self) -> dict[str, list[str]]:
        """Profile slug → its size keys: the only values the metrics' labels take."""
        catalogue = self.sources().catalogue.current()
        return {p.slug: [s.key for s in p.sizes] for p in catalogue.profiles}

    def metric_labels(self, options=None) -> tuple[str, str]:
        """(profile, size) of ``options`` (default: the server's) as bounded labels."""
        return server_labels(self.user_options if options is None else options,
                             self.metric_profiles())  # fmt: skip

    def _record_refusal(self, user_options, error: OptionError) -> None:
        profile, _ = self.metric_labels(user_options if isinstance(user_options, dict) else {})
        record_refusal(self.user.name, self.name, profile, error)

    @contextlib.contextmanager
    def watching_start(self) -> Iterator[None]:
        """While KubeSpawner waits for the pod: a failed container or a sidecar that is not
        ready within ``sidecar_ready_timeout`` ends the start (:meth:`is_pod_running`)."""
        self._watch_start, self._sidecars_unready_since = True, None
        try:
            yield
        finally:
            self._watch_start = False

    def is_pod_running(self, pod):
        if self._watch_start:
            pod = self._this_start(pod)
            self._check_start(pod)
        return super().is_pod_running(pod)

    def _check_start(self, pod) -> None:
        failure = startup_failure(pod)
        unready = unready_sidecars(pod)
        if failure is None and unready:
            now = self.clock()
            since = self._sidecars_unready_since = self._sidecars_unready_since or now
            if now - since > self.sidecar_ready_timeout:
                failure = (
                    f"sidecar container(s) {', '.join(map(repr, unready))} did not become ready "
                    f"within {self.sidecar_ready_timeout:g} seconds"
                )
        elif not unready:
            self._sidecars_unready_since = None
        if failure:
            self.log.error("Server %s failed to start: %s", self._log_name, failure)
            raise StartFailed(f"Your server could not start: {failure}")

    async def poll(self):
        """KubeSpawner's poll, and stopped when a sidecar with ``on_exit: stop_server`` exited."""
        status = await super().poll()
        if status is not None:
            return status
        exited = exited_sidecar(self.pod_reflector.pods.get(f"{self.namespace}/{self.pod_name}"))
        if exited is None:
            return None
        name, code = exited
        self.log.warning("Server %s stopped: its sidecar %r exited with code %d (on_exit: "
                         "stop_server)", self._log_name, name, code)  # fmt: skip
        if self.delete_stopped_pods:
            await self.stop(now=True)
        return code


def _with_named(items, item: dict):
    """``items`` (a KubeSpawner list or name-keyed dict trait) plus ``item``, replacing one of
    the same name."""
    if isinstance(items, dict):
        return {**items, item["name"]: item}
    return [*(i for i in items if i.get("name") != item["name"]), item]
