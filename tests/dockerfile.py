"""Just enough of a Dockerfile parser for the image tests: the final stage's base, what its
``RUN`` lines install (apt, pip), what it ``COPY``s where, its last ``USER`` and ``CMD``.

Shell commands are split with :mod:`shlex` into simple commands (at ``;``, ``&&``, ``||``,
``|``, ``&``), which is what the shipped Dockerfiles and scripts use; nothing here runs them.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

SEPARATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", ";;"})
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::?[-+]([^}]*))?\}|(\w+))")
_PIP_VALUE_OPTIONS = frozenset(
    {"-r", "--requirement", "-c", "--constraint", "-i", "--index-url", "--extra-index-url",
     "-f", "--find-links", "-t", "--target", "--prefix", "--root"}
)  # fmt: skip


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass(frozen=True)
class Command:
    """A simple command: its words, and whether ``&`` put it in the background."""

    words: tuple[str, ...]
    background: bool = False


@dataclass(frozen=True)
class Dockerfile:
    path: Path
    base: str
    apt: frozenset[str]
    pip: Mapping[str, str]
    """Canonical package name -> the requirement as written (``streamlit==1.67.0``)."""
    local_pip: frozenset[str]
    """The image's directories that ``pip install`` installs (a project copied in)."""
    copies: tuple[tuple[str, str], ...]
    """(source in the build context, destination in the image) of each ``COPY``."""
    user: str | None
    cmd: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()


def instructions(text: str) -> list[Instruction]:
    """The instructions, continuation lines joined and comment lines dropped (Docker's rules)."""
    found: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("#") or (not line and not parts):
            continue
        if not parts:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1].strip())
            continue
        parts.append(line)
        joined = " ".join(p for p in parts if p)
        parts = []
        keyword, _, args = joined.partition(" ")
        found.append(Instruction(keyword.upper(), args.strip(), start))
    return found


def expand(text: str, variables: Mapping[str, str]) -> str:
    """``$NAME``, ``${NAME}`` and ``${NAME:-default}`` from ``variables`` (unknown: default or "")."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        return variables.get(name) or match.group(2) or ""

    return _VARIABLE.sub(value, text)


def commands(script: str) -> list[Command]:
    """The simple commands of a shell script or ``RUN`` line, line by line (comments dropped)."""
    found: list[Command] = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = False
        words: list[str] = []
        for token in lexer:
            if token in SEPARATORS:
                if words:
                    found.append(Command(tuple(words), background=token == "&"))
                words = []
            else:
                words.append(token)
        if words:
            found.append(Command(tuple(words)))
    return found


def exec_programs(script: str) -> list[str]:
    """The programs a script leaves running: what it ``exec``s and what it starts with ``&``.

    The short-lived commands around them (``cd``, ``mkdir``, ``sleep``, tests) are the shell's
    own or come with every base image. Words that are variables (``exec "$@"``) are skipped.
    """
    programs = []
    for command in commands(script):
        words = list(command.words)
        if words[0] == "exec":
            words = words[1:]
            while words and words[0].startswith("-"):  # exec's options; -a takes a value
                words = words[2:] if words[0] == "-a" else words[1:]
            if words:
                programs.append(words[0])
        elif command.background:
            programs.append(words[0])
    return [p for p in programs if not p.startswith("$")]


def canonical(name: str) -> str:
    """A Python package's normalized name (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed(run: str) -> tuple[set[str], dict[str, str], set[str]]:
    """(apt packages, pip requirements, local pip directories) a ``RUN`` line installs."""
    apt: set[str] = set()
    pip: dict[str, str] = {}
    local: set[str] = set()
    for command in commands(run):
        words = list(command.words)
        if words[:2] in (["apt-get", "install"], ["apt", "install"]):
            for word in words[2:]:
                if word.endswith(".deb"):  # a downloaded package: its name is before the "_"
                    apt.add(PurePosixPath(word).name.removesuffix(".deb").split("_")[0])
                elif not word.startswith("-"):
                    apt.add(word.split("=")[0])
        for at in range(len(words) - 1):
            if PurePosixPath(words[at]).name in ("pip", "pip3") and words[at + 1] == "install":
                args = iter(words[at + 2 :])
                for word in args:
                    if word in _PIP_VALUE_OPTIONS:
                        next(args, None)
                    elif word.startswith(("/", "./")):
                        local.add(word)
                    elif not word.startswith("-"):
                        pip[canonical(re.split(r"[\[<>=!~;\s]", word)[0])] = word
    return apt, pip, local


def _copy(args: str, variables: Mapping[str, str]) -> list[tuple[str, str]]:
    if args.startswith("["):
        words = json.loads(args)
    else:
        words = [w for w in shlex.split(args) if not w.startswith("--")]
    *sources, destination = (expand(w, variables) for w in words)
    return [(source, destination) for source in sources]


def parse(path: Path) -> Dockerfile:
    """The final stage of the Dockerfile at ``path`` (global ``ARG`` defaults expanded in ``FROM``)."""
    variables: dict[str, str] = {}
    base = ""
    apt: set[str] = set()
    pip: dict[str, str] = {}
    local_pip: set[str] = set()
    copies: list[tuple[str, str]] = []
    user: str | None = None
    cmd: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    for instruction in instructions(path.read_text()):
        keyword, args = instruction.keyword, instruction.args
        if keyword == "ARG":
            name, _, default = args.partition("=")
            if default or name not in variables:
                variables[name] = default.strip("\"'")
        elif keyword == "ENV":
            for word in shlex.split(args):
                name, _, value = word.partition("=")
                variables[name] = value
        elif keyword == "FROM":  # a new stage: only the last one is the image
            base = expand(args.split()[0], variables)
            apt, pip, local_pip, copies = set(), {}, set(), []
            user, cmd, entrypoint = None, (), ()
        elif keyword == "RUN":
            more_apt, more_pip, more_local = _installed(args)
            apt |= more_apt
            pip |= more_pip
            local_pip |= more_local
        elif keyword in ("COPY", "ADD") and "--from" not in args:
            copies += _copy(args, variables)
        elif keyword == "USER":
            user = expand(args, variables)
        elif keyword in ("CMD", "ENTRYPOINT"):
            argv = tuple(json.loads(args)) if args.startswith("[") else ("/bin/sh", "-c", args)
            if keyword == "CMD":
                cmd = argv
            else:
                entrypoint, cmd = argv, ()  # an ENTRYPOINT resets the CMD
    return Dockerfile(
        path, base, frozenset(apt), pip, frozenset(local_pip), tuple(copies), user, cmd, entrypoint
    )


def image_file(dockerfile: Dockerfile, root: Path, image_path: str) -> Path | None:
    """The build-context file or directory a ``COPY`` put at ``image_path`` (the last one wins)."""
    wanted = PurePosixPath(image_path)
    for source, destination in reversed(dockerfile.copies):
        local = root / source
        target = PurePosixPath(destination)
        if local.is_dir():
            if wanted == target or target in wanted.parents:
                candidate = local.joinpath(*wanted.relative_to(target).parts)
                if candidate.exists():
                    return candidate
        elif local.is_file():
            placed = target / local.name if destination.endswith("/") else target
            if wanted == placed:
                return local
    return None
