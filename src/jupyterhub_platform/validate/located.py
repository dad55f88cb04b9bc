"""Read YAML into plain data plus the line of every field, for ``file:line: field`` errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, FieldPath, Invalid, field_name


class LocatedData:
    """Parsed YAML, where each field came from, and the error type its problems become."""

    def __init__(
        self,
        file: str,
        data: Any,
        lines: dict[FieldPath, int],
        error: type[ConfigError] = ConfigError,
        literal_starts: dict[FieldPath, int] | None = None,
    ):
        self.file, self.data, self._lines, self.error_type = file, data, lines, error
        self._literal_starts = literal_starts or {}

    def line(self, path: FieldPath) -> int | None:
        """Line of ``path``, or of its nearest ancestor when the field is missing."""
        for end in range(len(path), -1, -1):
            if path[:end] in self._lines:
                return self._lines[path[:end]]
        return None

    def text_start(self, path: FieldPath) -> int | None:
        """The line where the text of the literal block scalar (``|``) at ``path`` begins, so a
        document embedded in it (a policy in chart values) can report lines of this file."""
        return self._literal_starts.get(path)

    def error(self, path: FieldPath, reason: str) -> ConfigError:
        return self.error_type(self.file, self.line(path), field_name(path), reason)

    def errors(self, invalid: Invalid, at: FieldPath = ()) -> list[ConfigError]:
        """Each problem of ``invalid`` (found in the value at ``at``) with its line."""
        return [self.error(tuple(at) + path, reason) for path, reason in invalid.problems]


def load_located(path: Path | str, error: type[ConfigError] = ConfigError) -> LocatedData:
    """Read and parse the YAML file ``path``; unreadable files and bad YAML raise ``error``."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise error(file, None, "", f"cannot read file: {reason}") from None
    return parse_located(text, file, error)


def parse_located(
    text: str, file: str, error: type[ConfigError] = ConfigError, first_line: int | None = 1
) -> LocatedData:
    """Parse one YAML document with the safe loader; duplicate and non-string keys are errors.

    ``first_line`` is the file line of the text's first line (for YAML embedded in a file);
    None when the text's lines are not the file's (errors then name no line).
    """
    if first_line is None:
        doc = parse_located(text, file, error)
        return LocatedData(file, doc.data, {}, error)
    loader = yaml.SafeLoader(text)
    offset = first_line - 1
    try:
        node = loader.get_single_node()
        lines: dict[FieldPath, int] = {}
        literals: dict[FieldPath, int] = {}
        data = _convert(loader, node, (), (lines, literals), offset) if node is not None else None
    except _KeyProblem as e:
        raise error(file, e.line, field_name(e.path), e.reason) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 + offset if mark else None
        raise error(file, line, "", f"invalid YAML: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise error(file, None, "", f"invalid YAML: {e}") from None
    finally:
        loader.dispose()
    return LocatedData(file, data, lines, error, literals)


class _KeyProblem(Exception):
    def __init__(self, line: int, path: FieldPath, reason: str):
        self.line, self.path, self.reason = line, path, reason


def _convert(loader: yaml.SafeLoader, node: yaml.Node, path: FieldPath, where: tuple, offset: int):
    lines, literals = where
    lines.setdefault(path, node.start_mark.line + 1 + offset)
    if isinstance(node, yaml.ScalarNode) and node.style == "|":
        literals[path] = node.start_mark.line + 2 + offset  # the line after the "|"
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1 + offset
            if not isinstance(key, str):
                raise _KeyProblem(line, path, f"keys must be strings, got {key!r}")
            if key in out:
                raise _KeyProblem(line, path + (key,), "duplicate key")
            lines[path + (key,)] = line
            out[key] = _convert(loader, value_node, path + (key,), where, offset)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(loader, item, path + (i,), where, offset) for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)
