"""Which files pytest offers to the case loader: the ``ha_case_files`` globs (pure).

Like pytest's ``python_files``: a pattern without a ``/`` matches the file
name, one with a ``/`` matches the end of the path (``scenarios/*.yaml``);
a file named on the command line is a candidate whatever the patterns say.
Only candidates are read; a candidate without a top-level ``cases:`` is still
not a case file (a ``docker-compose.yaml`` next to the tests is ignored). So a
project whose data files also say ``cases:`` narrows the patterns, e.g.
``ha_case_files = *_case.yaml scenarios/*.yaml``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from pathlib import Path

#: The ini option and its default: every YAML file.
CASE_FILES_INI = "ha_case_files"
DEFAULT_PATTERNS = ("*.yaml", "*.yml")
YAML_SUFFIXES = (".yaml", ".yml")


def matches(path: Path, pattern: str) -> bool:
    """``fnmatch`` on the name, or on the path's end when the pattern has a ``/``."""
    if "/" not in pattern:
        return fnmatch.fnmatchcase(path.name, pattern)
    if path.is_absolute() and not pattern.startswith("/"):
        pattern = f"*/{pattern}"
    return fnmatch.fnmatchcase(path.as_posix(), pattern)


def is_candidate(path: Path, patterns: Iterable[str], *, named: bool = False) -> bool:
    """Is *path* offered to the case loader? ``named``: given on the command line
    (then any YAML file is, as pytest collects a named ``.py`` file)."""
    if named and path.suffix in YAML_SUFFIXES:
        return True
    return any(matches(path, p) for p in patterns)
