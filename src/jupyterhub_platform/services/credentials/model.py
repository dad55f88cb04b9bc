"""What every part of credential injection shares: a declared set, the subject it is issued to,
an issued credential, the provider interface, and how a set appears in a server's pod.

Pure: no I/O. The hub (at spawn, :mod:`jupyterhub_platform.spawner.credentials`) and the
credentials service (renewal and the workspace client's requests) both issue through
:class:`Provider`; a site adds its own provider through the ``jupyterhub_platform.credential_providers``
entry point group.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from jupyterhub_platform.validate import FieldPath

ENTRY_POINT_GROUP = "jupyterhub_platform.credential_providers"

SET_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
"""Set names are DNS labels: they become Secret keys (``<set>.<key>``) and directory names."""
KEY_RE = re.compile(r"[A-Za-z0-9_][-A-Za-z0-9_]{0,62}")
"""Keys a provider issues: part of a Secret data key and a file name (no dots, no slashes)."""

MOUNT_ROOT = "/run/jupyterhub-platform/credentials"
"""Where a server's credential Secret is mounted: ``<MOUNT_ROOT>/<set>/<key>`` per file."""
API_TOKEN_KEY = "jupyterhub-api-token"
"""The Secret key (and file under MOUNT_ROOT) holding the server's JupyterHub API token."""
SECRET_COMPONENT = "singleuser-credentials"
"""``component`` label of the per-server Secrets (z2jh labels pods ``singleuser-server``)."""
EXPIRY_ANNOTATION = "jupyterhub-platform/credential-expiry"
"""On the Secret: JSON ``{set: {"issued_at": epoch, "expires_at": epoch|null}}`` (no values)."""
SETS_ANNOTATION = "jupyterhub-platform/credential-sets"
"""On the Secret: the comma-separated sets it holds, in order."""
USER_ANNOTATION = "hub.jupyter.org/username"
RENEW_FRACTION = 0.8
"""Short-lived credentials are renewed once this fraction of their lifetime has passed."""


def secret_name(pod_name: str) -> str:
    """The per-server Secret of the pod ``pod_name`` (owned by the pod: it goes with it)."""
    return f"{pod_name}-credentials"


def data_key(set_name: str, key: str) -> str:
    """The Secret data key of one issued value."""
    return f"{set_name}.{key}"


def file_path(set_name: str, key: str) -> str:
    """Where the value is in the server's filesystem when the set has ``files: true``."""
    return f"{MOUNT_ROOT}/{set_name}/{key}"


@dataclass(frozen=True)
class Subject:
    """Who a credential is issued to. ``groups`` are the policy-normalised hub groups;
    ``auth_state`` the user's (decrypted) auth state: never logged, never shown."""

    username: str
    groups: frozenset[str]
    auth_state: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Issued:
    """One issuance: ``values`` (key -> string) and its lifetime in epoch seconds."""

    values: Mapping[str, str] = field(repr=False)
    issued_at: float
    expires_at: float | None = None
    """None: does not expire (re-issued at each spawn and when the service re-checks)."""

    def renew_at(self, fraction: float = RENEW_FRACTION) -> float | None:
        """When to renew: ``fraction`` of the lifetime after issuance (None: never due)."""
        if self.expires_at is None:
            return None
        return self.issued_at + fraction * max(0.0, self.expires_at - self.issued_at)


class IssueError(Exception):
    """Issuance refused or failed. ``reason`` is a short word for metrics and audit lines
    (``not_entitled``, ``no_token``, ``token_invalid``, ``token_expired``, ``upstream_refused``,
    ``upstream_unavailable``, ``source_missing``); the message is safe to show the user and to
    log: it never holds a credential or token value."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class IssueContext:
    """What providers may use for I/O, handed in by the hub or the service.

    ``fetch(method, url, headers, body) -> (status, headers, body bytes)`` is plain HTTP with a
    timeout (raises :class:`IssueError` ``upstream_unavailable`` when unreachable);
    ``read_secret(name) -> {key: str}`` reads a Secret in the hub's namespace (raises
    ``source_missing``); ``verify_token(kind, token) -> claims`` verifies an OIDC ``id_token`` or
    ``access_token`` itself (signature, issuer, audience, expiry) before any provider forwards
    it (raises ``token_invalid`` / ``token_expired``); ``now()`` is epoch seconds.
    """

    fetch: Callable[..., Awaitable[tuple[int, Mapping[str, str], bytes]]]
    read_secret: Callable[[str], Awaitable[Mapping[str, str]]]
    verify_token: Callable[[str, str], Awaitable[Mapping[str, Any]]]
    now: Callable[[], float]


class Provider(ABC):
    """A kind of credential. Subclasses set ``name`` and validate their ``config`` in
    ``__init__`` (raising :class:`~jupyterhub_platform.validate.Invalid` with a field path under
    ``at``), so a bad policy file fails at load, never at a user's spawn."""

    name: ClassVar[str]

    def __init__(self, config: Mapping[str, Any], at: FieldPath):
        self.config = config
        self.at = at

    @property
    @abstractmethod
    def keys(self) -> tuple[str, ...]:
        """The keys :meth:`issue` returns (known at load: env mappings are checked against them)."""

    @abstractmethod
    async def issue(self, subject: Subject, ctx: IssueContext) -> Issued:
        """Issue for ``subject`` (entitlement is checked by the caller, before this)."""


@dataclass(frozen=True)
class CredentialSet:
    """A set declared under the policy file's ``credential_sets:``."""

    name: str
    provider: Provider
    description: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    """Environment variable -> key: values fixed when the server starts (never renewed there)."""
    files: bool = True
    """Every key as a file under ``<MOUNT_ROOT>/<name>/`` (renewed in place)."""
    required: bool = False
    """True: a spawn fails when the set cannot be issued; False: the server starts without it
    (the spawn log says why) and the service keeps trying."""
