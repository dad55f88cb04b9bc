"""Chart values files as Helm reads them, and what the platform looks up in them (pure but for reading).

Helm merges ``-f`` files in order: mappings merge key by key, anything else (lists included) is
replaced, and ``null`` removes a key. The platform reads merged values for a few things only —
where the policy file is mounted, which authenticator and spawner are configured — and leaves
everything else to the chart.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from jupyterhub_platform.validate import load_located

POLICY_FILE_PATH = "hub.config.PlatformPolicy.policy_file"
"""Where values say which file the hub's group policy is (``c.PlatformPolicy.policy_file``)."""


class ValuesError(ValueError):
    """A values file cannot be used; the message names the file, the dotted path and the value."""


def load_values_file(path: Path) -> dict[str, Any]:
    """One values file as a mapping; a clear :class:`ValuesError` instead of a YAML traceback."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ValuesError(f"{path}: cannot read the values file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValuesError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValuesError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge of two values mappings (``override`` wins; ``null`` deletes)."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def merge_all(layers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = merge_values(merged, layer)
    return merged


def get_path(values: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    """``values`` at ``a.b.c``, or ``default`` when any step is missing or not a mapping."""
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


@dataclass(frozen=True)
class ExtraFile:
    """One ``hub.extraFiles`` entry: the file the hub pod sees at ``mount_path``."""

    key: str
    mount_path: str
    content: str
    field: str
    """Which of stringData / data / binaryData gave the content (for messages)."""


def extra_file(key: str, spec: Mapping[str, Any]) -> ExtraFile:
    """The content the chart writes for a ``hub.extraFiles`` entry.

    ``data`` is rendered by file extension as the chart does (YAML keys sorted, like Helm's
    ``toYaml``), so the content matches the hub pod's file.
    """
    mount = spec.get("mountPath")
    if not isinstance(mount, str) or not mount:
        raise ValuesError(f"hub.extraFiles.{key}.mountPath: missing (the chart requires it)")
    present = [f for f in ("stringData", "data", "binaryData") if spec.get(f)]
    if len(present) != 1:
        raise ValuesError(
            f"hub.extraFiles.{key}: exactly one of stringData, data and binaryData must be set "
            f"(found {present or 'none'})"
        )
    field = present[0]
    value = spec[field]
    if field == "stringData":
        content = str(value)
    elif field == "binaryData":
        content = base64.b64decode("".join(str(value).split())).decode("utf-8", "replace")
    elif mount.endswith(".json"):
        content = json.dumps(value, sort_keys=True)
    elif mount.endswith((".yaml", ".yml")):
        content = yaml.safe_dump(value, sort_keys=True)
    else:
        raise ValuesError(
            f"hub.extraFiles.{key}.data: the mountPath {mount!r} must end in .yaml, .yml or .json "
            "for data entries"
        )
    return ExtraFile(key, mount, content, field)


def extra_files(values: Mapping[str, Any]) -> list[ExtraFile]:
    entries = get_path(values, "hub.extraFiles") or {}
    if not isinstance(entries, Mapping):
        raise ValuesError(f"hub.extraFiles = {entries!r}: must be a mapping of name -> file")
    return [extra_file(key, spec or {}) for key, spec in entries.items()]


@dataclass(frozen=True)
class PolicyInValues:
    """The group policy a hub with these values uses, and the values path it comes from."""

    text: str
    path: str
    """e.g. ``hub.extraFiles.platform-policy.stringData``."""
    keys: tuple[str, ...] = ()
    """The same path as keys (``("hub", "extraFiles", "platform-policy", "stringData")``)."""

    @property
    def is_data(self) -> bool:
        """Given as ``data``, which the chart re-writes with sorted keys (the group order is lost)."""
        return self.path.endswith(".data")


def policy_in_values(values: Mapping[str, Any]) -> PolicyInValues:
    """The ``hub.extraFiles`` entry mounted where ``hub.config.PlatformPolicy.policy_file`` says."""
    policy_file = get_path(values, POLICY_FILE_PATH)
    if not isinstance(policy_file, str) or not policy_file:
        raise ValuesError(
            f"{POLICY_FILE_PATH} is not set, so the hub has no group policy (nobody may log in)"
        )
    files = extra_files(values)
    for entry in files:
        if entry.mount_path == policy_file:
            keys = ("hub", "extraFiles", entry.key, entry.field)
            return PolicyInValues(entry.content, ".".join(keys), keys)
    mounts = ", ".join(f"{f.key} -> {f.mount_path}" for f in files) or "none"
    raise ValuesError(
        f"{POLICY_FILE_PATH} = {policy_file!r}, but no hub.extraFiles entry has that mountPath "
        f"(entries: {mounts})"
    )


def policy_text_start(files: Sequence[str], policy: PolicyInValues) -> tuple[str, int | None]:
    """The values file that gives ``policy`` (the last of ``files`` to set it: Helm's merge) and
    the line where its text starts there, or None unless it is a literal block (``|``), the one
    form whose lines are the file's."""
    for file in reversed(files):
        doc = load_located(file)
        node: Any = doc.data
        for key in policy.keys:
            node = node.get(key) if isinstance(node, Mapping) else None
        if node is not None:
            return file, doc.text_start(policy.keys)
    return files[-1], None
