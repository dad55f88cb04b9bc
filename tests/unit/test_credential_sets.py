"""The policy's ``credential_sets:``: each set's fields, its provider and the provider's config
are checked at load, and every mistake is reported as ``file:line: field: problem``."""

from __future__ import annotations

import pytest

from jupyterhub_platform.policy.credential_sets import parse_credential_sets
from jupyterhub_platform.policy.errors import PolicyError
from jupyterhub_platform.policy.loader import policy_from_text
from jupyterhub_platform.services.credentials.providers.s3_sts import S3STSProvider
from jupyterhub_platform.services.credentials.providers.template import TemplateProvider
from jupyterhub_platform.validate import Invalid

S3 = """\
credential_sets:
  research-s3:
    description: Per-user S3 credentials
    provider: s3-sts
    config:
      sts_endpoint: https://sts.example.org
      role_arn: arn:aws:iam::123456789012:role/jupyter-research
      s3_endpoint: https://s3.example.org
      region: us-east-1
      duration: 1h
    env: {AWS_DEFAULT_REGION: region}
  mlflow:
    provider: template
    config: {values: {tracking_uri: "https://mlflow.example.org/{username}"}}
    env: {MLFLOW_TRACKING_URI: tracking_uri}
    files: false
    required: true
"""


def test_sets_are_declared_with_their_providers():
    sets = policy_from_text(S3, "policy.yaml").credential_sets
    assert list(sets) == ["research-s3", "mlflow"]
    s3, mlflow = sets["research-s3"], sets["mlflow"]
    assert isinstance(s3.provider, S3STSProvider) and s3.provider.duration == 3600
    assert s3.provider.sts_endpoint == "https://sts.example.org" and s3.provider.kind == "id_token"
    assert (s3.description, dict(s3.env), s3.files, s3.required) == (
        "Per-user S3 credentials", {"AWS_DEFAULT_REGION": "region"}, True, False,
    )  # fmt: skip
    assert isinstance(mlflow.provider, TemplateProvider)
    assert (mlflow.files, mlflow.required, mlflow.provider.keys) == (False, True, ("tracking_uri",))


def test_no_section_declares_nothing():
    assert policy_from_text("groups: {a: {}}", "policy.yaml").credential_sets == {}


def test_an_explicit_provider_mapping_replaces_the_entry_points():
    sets = parse_credential_sets(
        {"t": {"provider": "mine", "config": {"values": {"k": "v"}}}}, {"mine": TemplateProvider}
    )
    assert isinstance(sets["t"].provider, TemplateProvider)
    with pytest.raises(Invalid) as e:
        parse_credential_sets({"t": {"provider": "template"}}, {"mine": TemplateProvider})
    assert e.value.problems == (
        (("credential_sets", "t", "provider"), "unknown provider 'template' (known: mine)"),
    )


def one(spec: str) -> str:
    return f"credential_sets:\n  a:\n{spec}"


TEMPLATE = "    provider: template\n    config: {values: {k: v}}\n"
BAD = [
    ("credential_sets: [a]", "policy.yaml:1: credential_sets: must be a mapping of set name -> set, got a list"),
    ("credential_sets:\n  Research: {provider: template}",
     "policy.yaml:2: credential_sets.Research: 'Research' is not a valid set name (a DNS label: "
     "lowercase letters, digits and '-', at most 63)"),
    ("credential_sets:\n  a.b: {provider: template}",
     "policy.yaml:2: credential_sets.a.b: 'a.b' is not a valid set name (a DNS label: "
     "lowercase letters, digits and '-', at most 63)"),
    ("credential_sets:\n  a: text", "policy.yaml:2: credential_sets.a: must be a mapping, got the string 'text'"),
    (one("    description: x\n"), "policy.yaml:2: credential_sets.a.provider: required field is missing"),
    (one(TEMPLATE + "    colour: red\n"),
     "policy.yaml:5: credential_sets.a.colour: unknown field (allowed: config, description, env, "
     "files, provider, required)"),
    (one("    provider: vault\n"),
     "policy.yaml:3: credential_sets.a.provider: unknown provider 'vault' (known: oidc-token, "
     "s3-sts, secret, template)"),
    (one("    provider: template\n    config: [values]\n"),
     "policy.yaml:4: credential_sets.a.config: must be a mapping (the provider's settings), got a list"),
    (one(TEMPLATE + "    files: yes please\n"),
     "policy.yaml:5: credential_sets.a.files: must be true or false, got the string 'yes please'"),
    (one(TEMPLATE + "    required: 1\n"),
     "policy.yaml:5: credential_sets.a.required: must be true or false, got int 1"),
    (one(TEMPLATE + "    env: {1BAD: k}\n"), "policy.yaml:5: credential_sets.a.env.1BAD: '1BAD' is not a valid name"),
    (one(TEMPLATE + "    env: {MY-VAR: k}\n"),
     "policy.yaml:5: credential_sets.a.env.MY-VAR: 'MY-VAR' is not a valid name"),
    (one(TEMPLATE + "    env: {K: other}\n"),
     "policy.yaml:5: credential_sets.a.env.K: 'other' is not a key of the template provider (keys: k)"),
    (one(TEMPLATE + "    env: {JUPYTERHUB_API_TOKEN: k}\n"),
     "policy.yaml:5: credential_sets.a.env.JUPYTERHUB_API_TOKEN: JUPYTERHUB_API_TOKEN is set by the "
     "hub (names starting JUPYTERHUB_ or JPY_ are reserved)"),
    ("credential_sets:\n  a: {provider: template, config: {values: {k: v}}, env: {X: k}}\n"
     "  b: {provider: template, config: {values: {k: v}}, env: {X: k}}\n",
     "policy.yaml:3: credential_sets.b.env.X: X is already set by credential set 'a'"),
    (one("    provider: template\n    config:\n      values: {k: '{user}'}\n"),
     "policy.yaml:5: credential_sets.a.config.values.k: unknown placeholder {user} (known: {groups}, "
     "{username})"),
    (one("    provider: s3-sts\n    config:\n      region: us-east-1\n      role_arn: nope\n"),
     "policy.yaml:6: credential_sets.a.config.role_arn: 'nope' is not a valid IAM role ARN"),
    (one("    provider: s3-sts\n    config: {region: us-east-1}\n"),
     "policy.yaml:4: credential_sets.a.config.role_arn: required field is missing"),
    ("groups: {students: {credential_sets: [course]}}\n" + one(TEMPLATE),
     "policy.yaml:1: groups.students.credential_sets[0]: unknown credential set 'course' "
     "(declared under credential_sets: a)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"), BAD, ids=[m.split(": ")[1] + str(i) for i, (_, m) in enumerate(BAD)]
)
def test_bad_declarations_name_file_line_field_and_value(text, message):
    with pytest.raises(PolicyError) as e:
        policy_from_text(text, "policy.yaml")
    assert str(e.value) == message
