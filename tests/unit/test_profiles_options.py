"""Group filtering, option validation (400/403, never anything else) and the spawn form."""

from __future__ import annotations

import re
import textwrap
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyterhub_platform.policy.loader import policy_from_text
from jupyterhub_platform.profiles.access import entitlements_from_rules, offers
from jupyterhub_platform.profiles.catalogue import load_catalogue
from jupyterhub_platform.profiles.form import form_view, render_form
from jupyterhub_platform.profiles.options import (
    KNOWN_KEYS,
    OptionError,
    options_from_form,
    validate_options,
)

PROFILES = {
    "lab.yaml": """\
        slug: lab
        display_name: Lab <b>bold</b>
        description: "Lab description <script>alert(1)</script>"
        kind: jupyterlab
        default: true
        order: 1
        image:
          choices:
            a: {display_name: Image A, image: "registry.example/secret-a:1"}
            b: {display_name: Image B, image: "registry.example/secret-b:1", allowed_groups: [beta]}
          custom:
            display_name: Your own image
            pattern: 'x/[a-z]+:[0-9]+'
            allowed_groups: [admins]
        resources:
          choices:
            small: {cpu: {request: 1, limit: 1}, memory: {request: 1Gi, limit: 1Gi}}
            big: {cpu: {request: 4, limit: 4}, memory: {request: 8Gi, limit: 8Gi}, allowed_groups: [big]}
        env: {SECRET_ENV_VALUE: hidden-env-value}
        volumes: [{name: data, pvc: secret-claim, mount_path: /mnt/secret-mount}]
        """,
    "staff.yaml": """\
        slug: staff-only
        display_name: Staff
        kind: vscode
        order: 2
        allowed_groups: [staff]
        image: "registry.example/staff:1"
        resources:
          choices:
            small: {cpu: {request: 1, limit: 1}, memory: {request: 1Gi, limit: 1Gi}}
        sidecars:
          - name: viewer
            display_name: Viewer
            image: "registry.example/secret-viewer:1"
            command: [secret-viewer-start]
            resources: {cpu: {request: 100m, limit: 500m}, memory: {request: 128Mi, limit: 256Mi}}
        """,
    "own.yaml": """\
        slug: own
        display_name: Own image
        kind: custom
        order: 3
        image:
          custom: {pattern: 'x/[a-z]+:[0-9]+'}
        resources:
          choices:
            gpu-only:
              cpu: {request: 1, limit: 1}
              memory: {request: 1Gi, limit: 1Gi}
              gpu: {count: 1}
              allowed_groups: [big]
        """,
}
GROUPS = ("beta", "admins", "big", "staff", "other")


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    directory = tmp_path_factory.mktemp("profiles")
    for name, text in PROFILES.items():
        (directory / name).write_text(textwrap.dedent(text))
    return load_catalogue([directory])


def available(catalogue, *groups):
    return offers(catalogue, entitlements_from_rules(catalogue.rules(), groups))


def refused(catalogue, groups, user_options) -> OptionError:
    with pytest.raises(OptionError) as info:
        validate_options(user_options, catalogue, available(catalogue, *groups))
    return info.value


# -- group filtering ---------------------------------------------------------------------------
def test_users_see_only_what_their_groups_allow(catalogue):
    (lab,) = available(catalogue)  # "own" has no size left, "staff-only" is not granted
    assert [c.key for c in lab.images] == ["a"] and lab.custom_image is None
    assert [s.key for s in lab.sizes] == ["small"]
    everything = available(catalogue, *GROUPS)
    assert [o.slug for o in everything] == ["lab", "staff-only", "own"]
    assert [c.key for c in everything[0].images] == ["a", "b"]
    assert everything[0].custom_image is not None


def test_policy_grants_and_profile_rules_filter_the_same_way(catalogue):
    policy = policy_from_text(
        "groups: {eng: {profiles: [lab, lab/image/b]}}", "policy.yaml", catalogue.rules()
    )
    (lab,) = offers(catalogue, policy.resolve(["eng"]))
    assert [c.key for c in lab.images] == ["a", "b"] and [s.key for s in lab.sizes] == ["small"]
    assert offers(catalogue, policy.resolve(["stranger"])) == ()


# -- validation --------------------------------------------------------------------------------
def test_empty_options_pick_the_defaults(catalogue):
    selection = validate_options({}, catalogue, available(catalogue))
    assert selection.as_user_options() == {"profile": "lab", "image": "a", "size": "small"}


def test_rest_bypass_payload_without_profile_is_refused(catalogue):
    # kubespawner 7.1 skips all validation when "profile" is missing.
    assert refused(catalogue, (), {"image--unlisted-choice": "evil/img:1"}).status_code == 403
    error = refused(catalogue, ("admins",), {"image--unlisted-choice": "evil/img:1"})
    assert error.status_code == 400 and "image--unlisted-choice" in error.jupyterhub_message


def test_custom_image_must_match_the_whole_pattern(catalogue):
    ok = validate_options(
        {"profile": "lab", "image--unlisted-choice": "x/abc:12"},
        catalogue,
        available(catalogue, "admins"),
    )
    assert ok.custom_image == "x/abc:12"
    for value in ("x/abc:12evil", "x/abc:12\n", "x/abc:12 --privileged", "prefix-x/abc:1"):
        error = refused(catalogue, ("admins",), {"image--unlisted-choice": value})
        assert error.status_code == 400


@pytest.mark.parametrize(
    "groups, user_options, status, words",
    [
        ((), {"size": "huge"}, 400, "has no size 'huge'"),
        ((), {"size": "big"}, 403, "not allowed to use size 'big'"),
        ((), {"image": "b"}, 403, "not allowed to use image 'b'"),
        ((), {"image": "zzz"}, 400, "has no image"),
        ((), {"profile": "staff-only"}, 403, "not allowed to use profile"),
        ((), {"profile": "nope"}, 400, "there is no profile"),
        ((), {"cpu_limit": "100"}, 400, "Unknown option 'cpu_limit'"),
        ((), {"profile": 3}, 400, "must be a non-empty string"),
        ((), {"profile": ""}, 400, "must be a non-empty string"),
        ((), {"size": ["small"]}, 400, "must be a non-empty string"),
        ((), {"image": "custom"}, 400, "needs 'image--unlisted-choice'"),
        (("admins",), {"image": "a", "image--unlisted-choice": "x/a:1"}, 400, "conflict"),
        (("big",), {"profile": "own"}, 400, "needs an image"),
        (("big",), {"profile": "staff-only", "image--unlisted-choice": "x/a:1"}, 403, "profile"),
        (
            ("staff",),
            {"profile": "staff-only", "image--unlisted-choice": "x/a:1"},
            400,
            "takes no custom image",
        ),
    ],
)
def test_bad_requests_are_400_forbidden_ones_403(catalogue, groups, user_options, status, words):
    error = refused(catalogue, groups, user_options)
    assert error.status_code == status
    assert words in error.jupyterhub_message


def test_nobody_entitled_gets_403(catalogue):
    with pytest.raises(OptionError) as info:
        validate_options({}, catalogue, ())
    assert info.value.status_code == 403 and "No server profile" in info.value.jupyterhub_message


values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["lab", "staff-only", "own", "a", "b", "custom", "small", "big", "x/ab:1"]),
    st.integers(),
    st.none(),
    st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
)
user_options = st.dictionaries(
    st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=20)), values, max_size=5
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(options=user_options, groups=st.sets(st.sampled_from(GROUPS)))
def test_any_input_is_a_refusal_or_an_entitled_selection(catalogue, options, groups):
    entitlements = entitlements_from_rules(catalogue.rules(), groups)
    try:
        selection = validate_options(options, catalogue, offers(catalogue, entitlements))
    except OptionError as e:
        assert e.status_code in (400, 403) and e.jupyterhub_message
        return
    allowed = entitlements.profiles[selection.offer.slug]
    assert selection.size.key in allowed["size"]
    if selection.custom_image is not None:
        assert "custom" in allowed["image"]
        assert re.fullmatch(r"x/[a-z]+:[0-9]+", selection.custom_image)
    else:
        assert selection.image.key in allowed["image"]


# -- the form ----------------------------------------------------------------------------------
def test_form_data_becomes_user_options_of_the_chosen_profile_only():
    form = {
        "profile": ["lab"],
        "profile-option-lab--image": ["a"],
        "profile-option-lab--image--unlisted-choice": ["x/left:1"],
        "profile-option-lab--size": ["small"],
        "profile-option-own--image": ["custom"],
        "unrelated": ["1"],
    }
    assert options_from_form(form) == {"profile": "lab", "image": "a", "size": "small"}
    form["profile-option-lab--image"] = ["custom"]
    assert options_from_form(form) == {
        "profile": "lab",
        "image--unlisted-choice": "x/left:1",
        "size": "small",
    }
    form["profile-option-lab--image--unlisted-choice"] = ["  "]
    assert options_from_form(form)["image"] == "custom"  # refused later with a clear message
    assert options_from_form({}) == {}


class FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def rendered(catalogue, groups, last_options=None):
    offered = available(catalogue, *groups)
    last = validate_options(last_options, catalogue, offered) if last_options else None
    return render_form(form_view(offered, last))


def test_form_shows_display_data_only(catalogue):
    html = rendered(catalogue, GROUPS)
    for secret in ("registry.example", "secret-", "hidden-env-value", "SECRET_ENV_VALUE",
                   "secret-claim", "/mnt/secret-mount", "x/[a-z]", "[0-9]"):  # fmt: skip
        assert secret not in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "Lab &lt;b&gt;bold&lt;/b&gt;" in html
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", html)  # no CDN assets


def test_form_lists_sidecars_with_their_own_resources_only(catalogue):
    html = rendered(catalogue, GROUPS)
    assert "Also runs" in html and "<li>Viewer (0.5 CPU, 256 MiB RAM)</li>" in html
    assert "secret-viewer" not in html  # neither its image nor its command
    assert "Also runs" not in rendered(catalogue, ())  # lab has no sidecar


def test_form_is_labelled_and_lists_only_allowed_choices(catalogue):
    parser = FormParser()
    parser.feed(rendered(catalogue, ()))
    labels = {a["for"] for t, a in parser.tags if t == "label"}
    controls = [a for t, a in parser.tags if t in ("select", "input") and a.get("type") != "hidden"]
    assert controls and all(c["id"] in labels for c in controls)
    radios = [a["value"] for t, a in parser.tags if t == "input" and a.get("type") == "radio"]
    assert radios == ["lab"]
    # a single allowed choice is shown as text and sent as a hidden field
    assert not [a for t, a in parser.tags if t == "option"]
    hidden = {a["name"]: a["value"] for t, a in parser.tags if a.get("type") == "hidden"}
    assert hidden == {"profile-option-lab--image": "a", "profile-option-lab--size": "small"}


def test_form_preselects_the_last_choices(catalogue):
    last = {"profile": "lab", "image--unlisted-choice": "x/mine:7", "size": "big"}
    parser = FormParser()
    parser.feed(rendered(catalogue, GROUPS, last))
    selected = [a["value"] for t, a in parser.tags if t == "option" and "selected" in a]
    assert selected[:2] == ["custom", "big"]
    custom = next(
        a for t, a in parser.tags if a.get("name") == "profile-option-lab--image--unlisted-choice"
    )
    assert custom["value"] == "x/mine:7"
    checked = [a["value"] for t, a in parser.tags if t == "input" and "checked" in a]
    assert checked == ["lab"]


def test_form_for_a_user_without_profiles_says_so(catalogue):
    assert "No server profile is available to you" in render_form(form_view((), None))
