"""The shared validator vocabulary: located YAML, the general checks and their errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyterhub_platform.validate import (
    ConfigError,
    Invalid,
    Problems,
    field_name,
    load_located,
    parse_located,
)
from jupyterhub_platform.validate import checks as v

DOC = """\
name: web
resources:
  cpu: 500m
  memory: 2Gi
ports:
  - 80
  - 99999
"""


def problems_of(check, *args) -> list[tuple[str, str]]:
    with pytest.raises(Invalid) as info:
        check(*args)
    return [(field_name(path), reason) for path, reason in info.value.problems]


def test_located_data_knows_the_line_of_every_field(tmp_path):
    path = tmp_path / "svc.yaml"
    path.write_text(DOC)
    doc = load_located(path)
    assert doc.data["resources"] == {"cpu": "500m", "memory": "2Gi"}
    assert [doc.line(p) for p in [("name",), ("resources", "memory"), ("ports", 1)]] == [1, 4, 7]
    assert doc.line(("resources", "gpu")) == 2  # a missing field: its parent's line
    (error,) = doc.errors(Invalid("must be a port number", (1,)), ("ports",))
    assert isinstance(error, ConfigError)
    assert str(error) == f"{path}:7: ports[1]: must be a port number"


def test_errors_take_the_type_the_reader_asks_for():
    class ServiceError(ConfigError):
        pass

    doc = parse_located("a: 1\n", "s.yaml", ServiceError)
    assert type(doc.error(("a",), "bad")) is ServiceError
    with pytest.raises(ServiceError, match=r"^s\.yaml:2: a: duplicate key$"):
        parse_located("a: 1\na: 2\n", "s.yaml", ServiceError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\na: 2\n", "s.yaml:2: a: duplicate key"),
        ("top:\n  1: x\n", "s.yaml:2: top: keys must be strings, got 1"),
        ("a: [\n", "s.yaml:2: invalid YAML"),
        ("a: 1\n---\nb: 2\n", "s.yaml:2: invalid YAML"),
    ],
)
def test_bad_yaml_is_one_located_error(text, message):
    with pytest.raises(ConfigError) as info:
        parse_located(text, "s.yaml")
    assert str(info.value).startswith(message)


def test_embedded_yaml_counts_lines_from_its_first_line():
    doc = parse_located("a:\n  b: 1\n", "values.yaml", first_line=10)
    assert doc.line(("a", "b")) == 11
    with pytest.raises(ConfigError, match=r"values\.yaml:12: invalid YAML"):
        parse_located("a: 1\nb: [\n", "values.yaml", first_line=10)


def test_unreadable_file_names_it(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_located(tmp_path / "none.yaml")
    assert (info.value.file, info.value.line) == (str(tmp_path / "none.yaml"), None)
    assert "cannot read file: No such file or directory" in str(info.value)


@pytest.mark.parametrize(
    ("value", "cores"), [(2, 2.0), (0.5, 0.5), ("500m", 0.5), ("1.5", 1.5), (" 250m ", 0.25)]
)
def test_cpu(value, cores):
    assert v.cpu(value) == cores


@pytest.mark.parametrize(
    ("value", "amount"),
    [(1024, 1024), ("1Ki", 1024), ("2Gi", 2 * 2**30), ("1.5M", 1_500_000), ("3", 3)],
)
def test_memory(value, amount):
    assert v.memory(value) == amount


@given(st.integers(1, 10**6), st.sampled_from(["Ki", "Mi", "Gi", "k", "M", "G"]))
def test_memory_units_multiply(n, unit):
    assert v.memory(f"{n}{unit}") == n * v.MEMORY_UNITS[unit]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(30, 30.0), ("90s", 90.0), ("5m", 300.0), ("1h", 3600.0), ("2d", 172800.0), ("250ms", 0.25)],
)
def test_duration(value, seconds):
    assert v.duration(value) == seconds


@pytest.mark.parametrize(
    ("check", "value", "reason"),
    [
        (v.cpu, "lots", "must be a CPU amount like 2, 0.5 or '500m', got 'lots'"),
        (v.cpu, 0, "must be greater than 0"),
        (v.memory, True, "must be a memory amount like '8Gi' or '512Mi', got True"),
        (v.memory, "8GB", "must be a memory amount like '8Gi' or '512Mi', got '8GB'"),
        (v.duration, "soon", "must be a duration like 30, '90s', '5m', '1h' or '2d', got 'soon'"),
        (v.duration, "0s", "must be greater than 0"),
        (v.string, "", "must be a non-empty string, got the string ''"),
        (v.string, None, "must be a non-empty string, got nothing"),
        (
            v.identifier,
            "Web_1",
            "'Web_1' is not a valid slug (lowercase letters, digits and '-', max 63)",
        ),
        (v.label_key, "-bad", "'-bad' is not a valid Kubernetes resource or label name"),
        (v.boolean, "yes", "must be true or false, got the string 'yes'"),
        (v.integer, -1, "must be an integer >= 0, got -1"),
        (v.port, 0, "must be a port number (1-65535), got 0"),
        (
            v.regex,
            "(",
            "is not a valid regular expression: missing ), unterminated subpattern at position 0",
        ),
        (v.text, 3, "must be a string, got int 3"),
    ],
)
def test_a_bad_value_says_what_was_expected_and_what_it_got(check, value, reason):
    assert problems_of(check, value) == [("", reason)]


def test_identifiers_and_labels_accept_kubernetes_names():
    assert v.identifier("web-1") == "web-1"
    assert v.label_key("nvidia.com/gpu") == "nvidia.com/gpu"
    assert v.labels({"disk": "ssd", "zone": ""}) == {"disk": "ssd", "zone": ""}


def test_collections_report_every_bad_item_at_its_place():
    assert problems_of(v.strings, ["a", "", 3]) == [
        ("[1]", "must be a non-empty string, got the string ''"),
        ("[2]", "must be a non-empty string, got int 3"),
    ]
    assert v.list_of([80, 443], v.port) == (80, 443)
    assert problems_of(v.labels, {"ok": "x", "b@d": "x", "n": 1, "v": "-no-"}) == [
        ("b@d", "'b@d' is not a valid name"),
        ("n", "must be a string (quote it in YAML), got int 1"),
        ("v", "'-no-' is not a valid value"),
    ]
    assert problems_of(v.mapping, {"a": 1, "z": 2}, ("a", "b"), ("b",)) == [
        ("z", "unknown field (allowed: a, b)"),
        ("b", "required field is missing"),
    ]
    assert problems_of(v.mapping, [1], ("a",)) == [("", "must be a mapping, got a list")]


def test_problems_collects_and_fields_keeps_checking_known_fields():
    p = Problems()
    m = v.fields({"port": 0, "name": "web", "typo": 1}, p, ("port", "name"))
    assert p.field(m, "name", v.identifier) == "web"
    assert p.field(m, "port", v.port, default=8080) == 8080  # invalid: the default, recorded
    assert p.field(m, "absent", v.port, default=1) == 1
    with pytest.raises(Invalid) as info:
        p.raise_any()
    assert [field_name(path) for path, _ in info.value.problems] == ["typo", "port"]
    assert not Problems()  # nothing found: falsy, raise_any is a no-op
    Problems().raise_any()


def test_invalid_within_prefixes_every_problem():
    inner = Invalid.of([(("a",), "x"), ((0,), "y")])
    assert inner.within(("svc", "env")).problems == (
        (("svc", "env", "a"), "x"),
        (("svc", "env", 0), "y"),
    )
    assert str(inner) == "a: x; [0]: y"


def test_config_error_without_line_or_field():
    assert str(ConfigError("f.yaml", None, "", "empty")) == "f.yaml: empty"
    assert str(ConfigError("f.yaml", 3, "a.b[0]", "bad")) == "f.yaml:3: a.b[0]: bad"


def test_a_literal_block_knows_where_its_text_starts():
    doc = parse_located("a: 1\nb: |\n  x: 1\n  y: 2\nc: 'q'\n", "v.yaml")
    assert doc.text_start(("b",)) == 3
    assert doc.text_start(("c",)) is None and doc.text_start(("a",)) is None


def test_text_whose_lines_are_not_the_files_names_no_line():
    doc = parse_located("a:\n  b: 1\n", "v.yaml: x.stringData", first_line=None)
    assert doc.data == {"a": {"b": 1}} and doc.line(("a", "b")) is None
    assert str(doc.error(("a", "b"), "bad")) == "v.yaml: x.stringData: a.b: bad"
