"""The group policy through the real hub: what each demo user gets after logging in at the IdP.

Expected rights are computed from the shipped policy and profiles with the policy's own pure
code, so the test checks that the hub applies the policy, not a copy of it.
"""

from __future__ import annotations

import re

import aiohttp
import pytest

from jupyterhub_platform.devcluster.idp import DEMO_USERS
from jupyterhub_platform.policy import load_policy
from jupyterhub_platform.profiles import load_catalogue
from jupyterhub_platform.profiles.catalogue import bundled_profiles_dir
from jupyterhub_platform.testing import shipped_policy_file

pytestmark = pytest.mark.asyncio(loop_scope="session")

POLICY_FILE = shipped_policy_file()  # the policy inline in chart-values/values.yaml
OFFERED = re.compile(r'<input type="radio" name="profile" id="profile-[^"]+" value="([^"]+)"')


def expected(username: str):
    user = next(u for u in DEMO_USERS if u.username == username)
    catalogue = load_catalogue([bundled_profiles_dir()])
    return load_policy(POLICY_FILE, catalogue.rules()).resolve(user.groups)


async def admin_view(platform, name: str) -> dict:
    headers = {"Authorization": f"token {platform.admin_token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{platform.hub_api_url}/users/{name}") as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()


async def offered_profiles(user) -> set[str]:
    async with user.session.get(f"{user.hub_url}/hub/spawn/{user.name}") as resp:
        assert resp.status == 200
        return set(OFFERED.findall(await resp.text()))


async def test_researcher_gets_the_researcher_profiles_and_no_admin(platform, hub):
    alice = hub("alice")
    assert await alice.login() == 302
    rights = expected("alice")
    assert rights.login_allowed and rights.profiles
    model = await admin_view(platform, "alice")
    assert model["admin"] is False
    assert sorted(model["groups"]) == sorted(rights.groups)
    assert sorted(model["roles"]) == sorted({"user", *rights.roles})
    assert await offered_profiles(alice) == set(rights.profiles)


async def test_platform_admin_is_admin_and_holds_the_policy_roles(platform, hub):
    bob = hub("bob")
    assert await bob.login() == 302
    rights = expected("bob")
    assert rights.admin and rights.roles  # the shipped policy gives bob both
    model = await admin_view(platform, "bob")
    assert model["admin"] is True
    assert set(rights.roles) <= set(model["roles"])
    assert await offered_profiles(bob) == set(rights.profiles)


async def test_user_in_no_allowed_group_is_refused_with_a_page_saying_so(platform, hub):
    carol = hub("carol")
    assert not expected("carol").login_allowed
    assert await carol.login() == 403
    async with carol.session.get(f"{carol.hub_url}/hub/home", allow_redirects=False) as resp:
        assert resp.status == 302  # not logged in: back to the login page, no loop, no session
