"""``jupyterhub-platform-credentials``: the hub-managed credentials service.

Workspaces ask it for a set's current values with their hub token (``GET
api/v1/credentials/<set>``; the identity is the token's, as the hub says); its loop renews the
sets in running servers' Secrets before they expire and blanks those no longer granted
(docs/credentials.md)."""

from __future__ import annotations

import asyncio
import time

from traitlets import Float, Unicode

from jupyterhub_platform.policy.model import Policy

from ..common.app import ServiceApp
from ..common.hub_client import HubAPIError, HubClient
from ..common.kube import KubeConfigError, KubeSource, kube_client
from ..common.policy_source import PolicyLoadError, PolicySource
from .cache import IssueCache
from .context import issue_context
from .entitlement import issuable_sets
from .handlers import routes
from .metrics import CredentialMetrics
from .renewal import renewal_round
from .service import CredentialService


class CredentialsApp(ServiceApp):
    name = "credentials"
    description = "Issue and renew users' platform credentials (docs/credentials.md)."
    classes = [KubeSource, PolicySource]

    renew_every = Float(
        60.0,
        help="Seconds between renewal rounds over the servers' credential Secrets (a set is "
        "renewed in the first round after 80% of its lifetime, so keep this under a fifth of "
        "the shortest lifetime); 0: no renewal loop.",
    ).tag(config=True)
    cache_max_age = Float(
        300.0,
        help="Seconds a set that does not expire (a Secret's values, a template) is served from "
        "the cache before it is issued again.",
    ).tag(config=True)
    oidc_issuer = Unicode(
        help="The OIDC issuer whose tokens (from the users' auth state) providers forward, "
        "verified first (signature, issuer, audience, expiry); the hub's "
        "OIDCAuthenticator.issuer. Empty: no token is verified, so none is forwarded."
    ).tag(config=True)
    oidc_audience = Unicode(
        help="The audience (the hub's OIDC client id) the id tokens must be for."
    ).tag(config=True)
    request_timeout = Float(
        10.0, help="Seconds a request to the hub or to a provider's upstream may take."
    ).tag(config=True)

    aliases = {
        **ServiceApp.aliases,
        "policy": "PolicySource.policy_file",
        "renew-every": "CredentialsApp.renew_every",
    }

    def initialize(self, argv=None) -> None:
        super().initialize(argv)
        try:
            policy = PolicySource(parent=self).load()
        except PolicyLoadError as exc:
            self.exit_error(str(exc))
        self.kube = KubeSource(parent=self)
        self.metrics = CredentialMetrics()
        self.service = CredentialService(
            hub=self.hub_client(timeout=self.request_timeout),
            policy=policy,
            ctx=issue_context(
                self.kube, self.oidc_issuer, self.oidc_audience, self.request_timeout
            ),  # fmt: skip
            cache=IssueCache(time.time, max_age=self.cache_max_age),
            metrics=self.metrics,
            token_client=self._token_client,
            log=self.log,
        )
        self.use_policy(policy)

    def use_policy(self, policy: Policy) -> None:
        """Issue by ``policy`` from now on (its sets are re-checked on every issuance)."""
        self.service.policy = policy
        lacking = sorted(set(policy.credential_sets) - set(issuable_sets(policy)))
        if lacking:
            self.log.warning("credential sets without a provider, never issued: %s",
                             ", ".join(lacking))  # fmt: skip
        self.log.info("credential sets: %s", ", ".join(sorted(issuable_sets(policy))) or "none")

    def _token_client(self, token: str) -> HubClient:
        return HubClient(self.api_url, token, retries=1, timeout=self.request_timeout,
                         log=self.log)  # fmt: skip

    def handlers(self) -> list[tuple]:
        return routes(self.service)

    async def renew(self) -> None:
        """One renewal round, with its outcome in the log and the metrics."""
        api = await self.kube.api_client()
        try:
            core = kube_client().CoreV1Api(api)
            now = time.time()
            report = await renewal_round(self.service, core, self.kube.namespace, now)
        finally:
            await api.close()
        self.metrics.seconds_to_expiry.clear()  # sets no server holds any more go
        for name, soonest in report.soonest.items():
            self.metrics.seconds_to_expiry.labels(name).set(soonest - time.time())
        self.metrics.rounds.labels("ok").inc()
        self.log.info("renewal round: %d renewed, %d revoked, %d failed, %d Secrets patched",
                      report.renewed, report.revoked, report.failed, len(report.patched))  # fmt: skip

    async def run(self) -> None:
        if not self.renew_every:
            await asyncio.Event().wait()
        while True:
            try:
                await self.renew()
            except (HubAPIError, KubeConfigError, kube_client().ApiException, OSError) as exc:
                self.metrics.rounds.labels("failed").inc()
                self.log.error("renewal round failed: %s", exc)
            await asyncio.sleep(self.renew_every)


main = CredentialsApp.launch_instance
