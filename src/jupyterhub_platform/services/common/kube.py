"""A Kubernetes API client for services: the pod's service account in a cluster, else a kubeconfig
(the local platform gives its services the emulator's). Nothing here knows about the emulator."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from traitlets import Unicode, default
from traitlets.config import LoggingConfigurable

if TYPE_CHECKING:
    from kubernetes_asyncio import client

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeConfigError(RuntimeError):
    """Neither a service account nor a usable kubeconfig; the message says which file failed."""


class KubeSource(LoggingConfigurable):
    """Where a service finds the Kubernetes API and which namespace it works in."""

    kubeconfig = Unicode(
        help="A kubeconfig file (default: $KUBECONFIG); empty: the pod's service account."
    ).tag(config=True)

    @default("kubeconfig")
    def _kubeconfig(self) -> str:
        return os.environ.get("KUBECONFIG", "")

    namespace = Unicode(
        help="The namespace of the hub and the users' volumes (default: $POD_NAMESPACE, else "
        "the service account's namespace, else 'default')."
    ).tag(config=True)

    @default("namespace")
    def _namespace(self) -> str:
        return os.environ.get("POD_NAMESPACE") or service_account_namespace() or "default"

    async def api_client(self) -> client.ApiClient:
        """A configured ``ApiClient`` (close it with ``await api.close()``)."""
        from kubernetes_asyncio import client, config

        configuration = client.Configuration()
        if self.kubeconfig:
            try:
                await config.load_kube_config(
                    config_file=self.kubeconfig, client_configuration=configuration
                )
            except (OSError, config.ConfigException, ValueError) as exc:
                raise KubeConfigError(f"kubeconfig {self.kubeconfig}: {exc}") from None
        elif (SERVICE_ACCOUNT_DIR / "token").is_file():
            config.load_incluster_config(client_configuration=configuration)
        else:
            raise KubeConfigError(
                f"no Kubernetes credentials: no {SERVICE_ACCOUNT_DIR}/token and no kubeconfig "
                "(set $KUBECONFIG or KubeSource.kubeconfig)"
            )
        return client.ApiClient(configuration)


def kube_client() -> ModuleType:
    """``kubernetes_asyncio.client``, imported on first use, not with the service: the import
    takes seconds (its ``dynamic`` package loads kubernetes_validate and jsonschema where they
    are installed), and a hub gives a managed service about 10 s to answer on its URL."""
    from kubernetes_asyncio import client

    return client


def service_account_namespace(directory: Path = SERVICE_ACCOUNT_DIR) -> str:
    try:
        return (directory / "namespace").read_text().strip()
    except OSError:
        return ""
