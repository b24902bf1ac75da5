"""Loaded case files, remembered between sessions (under pytest's cache directory).

Reading a QA case file -- compose the YAML, check every key, build every
:class:`~.scenario.model.Case` -- costs about 0.2 ms a case, so a suite of 10,000
cases paid seconds on every collection, unchanged files included. What the loader
returns depends only on the file's text, the path and stem it is shown and named
by, and the loader's own code; nothing of the session's options (the checks that
depend on options -- topology, switches -- run on the loaded cases every time).
So the loaded groups are kept, pickled, one entry per file, and used again when
that key matches exactly:

* the SHA-256 of the text (any edit, even of a comment or of whitespace, misses);
* the path shown in messages and the stem that names the cases;
* the loader's fingerprint: the package version, the source of every module of
  ``pytest_tidb_ha.scenario`` (a changed loader or model misses, released or not),
  Python's and PyYAML's versions.

A file that fails to load is never kept (its error is raised again, from the
loader, every time). A missing, unreadable, stale or corrupt entry is a miss, never
an error; a cache that cannot be written is skipped. Entries are written to a
temporary file and renamed, so concurrent sessions (pytest-xdist workers) never
read half an entry. One entry per file path: an edit replaces it.

The entries are pickles in the project's own ``.pytest_cache``; whoever can write
there can already write the project's ``conftest.py``, which pytest runs, so
reading them adds no way in. ``-p no:cacheprovider`` (or ``--cache-clear``) turns
the cache off (or empties it).

The model's dataclasses are pickled by their fields (:func:`_field_state`), not by
pickle's default, which would leave a ``__dict__`` made on every pickled instance
for the rest of the session.
"""

from __future__ import annotations

import contextlib
import copyreg
import dataclasses
import hashlib
import io
import operator
import os
import pickle
import platform
import tempfile
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from . import __version__
from .scenario import loader, model
from .scenario.gcpause import gc_paused
from .scenario.loader import CaseGroup
from .scenario.model import frozen_map

__all__ = ["CACHE_NAME", "CaseCache", "loader_fingerprint"]

#: The folder under pytest's cache directory (``config.cache.mkdir``).
CACHE_NAME = "tidb-ha-cases"
#: Bumped when the entry layout changes.
FORMAT = b"tidb-ha-cases/1\n"
_KEY_LEN = 64  # hex SHA-256

Loaded = tuple[CaseGroup, ...] | None


def loader_fingerprint() -> str:
    """What the loader's output depends on besides the file: its code and its libraries."""
    h = hashlib.sha256()
    for part in (__version__, platform.python_version(), yaml.__version__,
                 str(pickle.HIGHEST_PROTOCOL)):
        h.update(part.encode() + b"\0")
    package = Path(loader.__file__).parent
    for source in sorted(package.glob("*.py")):
        h.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return h.hexdigest()


def _reduce_frozen_map(mapping: MappingProxyType[str, object]) -> tuple[Any, ...]:
    return frozen_map, (dict(mapping),)


def _field_state(cls: type) -> Any:
    """A reducer for dataclass ``cls``: what pickle's default gives (``__newobj__``, then
    the fields as the state to set), with the state a new dict of every field.

    Why not the default: it takes an instance's ``__dict__`` as its state, and CPython
    keeps attributes inline until something asks for that dict -- then makes it and
    keeps it on the instance for good. Pickling 10,000 cases so left ~40,000 more
    dicts for the cyclic collector to walk for the rest of the session (each full
    collection ~50 ms more, ``bench/collection.py`` cold). Read back, an entry is the
    same either way.
    """
    names = tuple(f.name for f in dataclasses.fields(cls))
    get = operator.attrgetter(*names)
    if len(names) == 1:
        def reduce_one(obj: object) -> tuple[Any, ...]:
            return copyreg.__newobj__, (cls,), {names[0]: get(obj)}  # type: ignore[attr-defined]
        return reduce_one

    def reduce(obj: object) -> tuple[Any, ...]:
        return copyreg.__newobj__, (cls,), dict(zip(names, get(obj), strict=True))  # type: ignore[attr-defined]
    return reduce


#: The picklers' reducers: the standard ones, the model's frozen maps as ``frozen_map``,
#: the model's dataclasses and :class:`CaseGroup` by their fields (see :func:`_field_state`).
_DISPATCH: dict[type, Any] = {
    **copyreg.dispatch_table,
    MappingProxyType: _reduce_frozen_map,
    **{cls: _field_state(cls) for cls in (*vars(model).values(), CaseGroup)
       if isinstance(cls, type) and dataclasses.is_dataclass(cls)
       and cls.__module__ in (model.__name__, loader.__name__)},
}


def _dumps(groups: Loaded) -> bytes:
    """Pickle the groups with :data:`_DISPATCH` (this pickler's only)."""
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(groups)
    return buf.getvalue()


class CaseCache:
    """One folder of entries; :meth:`load` is :func:`.scenario.loader.load_groups`, remembered.

    ``fingerprint`` is :func:`loader_fingerprint` (taken once per session).
    """

    def __init__(self, folder: Path, fingerprint: str) -> None:
        self.folder = folder
        self.fingerprint = fingerprint
        self.hits = 0
        self.misses = 0

    def key(self, text: str, path: str, stem: str) -> bytes:
        h = hashlib.sha256()
        for part in (self.fingerprint, path, stem):
            h.update(part.encode("utf-8", "surrogatepass") + b"\0")
        h.update(text.encode("utf-8", "surrogatepass"))
        return h.hexdigest().encode()

    def entry(self, path: str, stem: str) -> Path:
        name = hashlib.sha256(f"{path}\0{stem}".encode("utf-8", "surrogatepass")).hexdigest()
        return self.folder / f"{name[:32]}.pickle"

    def load(self, text: str, path: str, *, stem: str) -> Loaded:
        """The groups of the file: from its entry when the key matches, else loaded and kept.

        Raises the loader's :class:`~.scenario.errors.ScenarioError` exactly as
        :func:`~.scenario.loader.load_groups` does (nothing is kept then).
        """
        key = self.key(text, path, stem)
        entry = self.entry(path, stem)
        found = self._read(entry, key)
        if found is not None:
            self.hits += 1
            return found[0]
        self.misses += 1
        groups = loader.load_groups(text, path, stem=stem)
        self._write(entry, key, groups)
        return groups

    def _read(self, entry: Path, key: bytes) -> tuple[Loaded] | None:
        try:
            data = entry.read_bytes()
        except OSError:
            return None
        head = len(FORMAT) + _KEY_LEN
        if data[:len(FORMAT)] != FORMAT or data[len(FORMAT):head] != key:
            return None
        try:
            with gc_paused():  # thousands of small objects, no cycles (as in the loader)
                groups = pickle.loads(data[head:])  # noqa: S301 - our own cache file, keyed by version and content
        except Exception:  # noqa: BLE001 - a corrupt entry is a miss: the file is read again
            return None
        if groups is not None and not (isinstance(groups, tuple)
                                       and all(isinstance(g, CaseGroup) for g in groups)):
            return None
        return (groups,)

    def _write(self, entry: Path, key: bytes, groups: Loaded) -> None:
        try:
            payload = FORMAT + key + _dumps(groups)
        except Exception:  # noqa: BLE001 - not picklable: simply not cached
            return
        with contextlib.suppress(OSError):
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=entry.stem, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(payload)
                os.replace(tmp, entry)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
