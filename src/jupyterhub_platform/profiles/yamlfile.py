"""Read a YAML file into plain data plus the line of every field, for precise error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ProfileError

FieldPath = tuple[str | int, ...]


def field_name(path: FieldPath) -> str:
    """``("resources", "choices", "gpu", "cpu")`` -> ``resources.choices.gpu.cpu``; ``[i]`` for items."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class LocatedData:
    """Parsed YAML and where each field came from."""

    def __init__(self, file: str, data: Any, lines: dict[FieldPath, int]):
        self.file, self.data, self._lines = file, data, lines

    def line(self, path: FieldPath) -> int | None:
        """Line of ``path``, or of its nearest ancestor when the field is missing."""
        for end in range(len(path), -1, -1):
            if path[:end] in self._lines:
                return self._lines[path[:end]]
        return None

    def error(self, path: FieldPath, reason: str) -> ProfileError:
        return ProfileError(self.file, self.line(path), field_name(path), reason)


def load_located(path: Path) -> LocatedData:
    """Parse one YAML document with the safe loader; duplicate keys and non-string keys are errors."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ProfileError(file, None, "", f"cannot read file: {e}") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        lines: dict[FieldPath, int] = {}
        data = _convert(loader, node, (), lines, file) if node is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise ProfileError(
            file, mark.line + 1 if mark else None, "", f"invalid YAML: {e.problem or e.context}"
        ) from None
    except yaml.YAMLError as e:
        raise ProfileError(file, None, "", f"invalid YAML: {e}") from None
    finally:
        loader.dispose()
    return LocatedData(file, data, lines)


def _convert(loader: yaml.SafeLoader, node: yaml.Node, path: FieldPath, lines: dict, file: str):
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise ProfileError(
                    file, line, field_name(path), f"keys must be strings, got {key!r}"
                )
            if key in out:
                raise ProfileError(file, line, field_name(path + (key,)), "duplicate key")
            lines[path + (key,)] = line
            out[key] = _convert(loader, value_node, path + (key,), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(loader, item, path + (i,), lines, file) for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)
