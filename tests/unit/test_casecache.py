"""The case cache returns exactly what the loader returns, and misses whenever it must."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest

from pytest_tidb_ha import casecache
from pytest_tidb_ha.casecache import FORMAT, CaseCache, loader_fingerprint
from pytest_tidb_ha.scenario import loader
from pytest_tidb_ha.scenario.errors import ScenarioError
from pytest_tidb_ha.scenario.loader import load_groups

REPO = Path(__file__).resolve().parents[2]


def _loads(path: Path) -> bool:
    try:
        load_groups(path.read_text(), path.name, stem=path.stem)
    except ScenarioError:
        return False
    return True


#: Every QA file we hold that loads: the seeds and the public issues' files (config lists
#: included; the corpus' deliberately broken pastes are the bad-file test's business).
QA_FILES = [p for p in sorted([*(REPO / "scenarios" / "seeds").glob("*.yaml"),
                               *(REPO / "tests" / "corpus").glob("*.yaml")]) if _loads(p)]

CASES = """\
cases:
  - name: first
    faultType: network_delay
    selector: tikv(random)
    latency: 50ms
    faultDuration: 1m
    ddl:
      addIndex:
        - {db: d, table: t, index_col_name: c, timeout: 10m}
"""


@pytest.fixture
def cache(tmp_path: Path) -> CaseCache:
    return CaseCache(tmp_path / "cases", loader_fingerprint())


@pytest.fixture(autouse=True)
def _folder(tmp_path: Path) -> None:
    (tmp_path / "cases").mkdir()


@pytest.mark.parametrize("path", QA_FILES, ids=lambda p: p.name)
def test_a_hit_is_what_the_loader_returns(cache: CaseCache, path: Path) -> None:
    text = path.read_text()
    fresh = load_groups(text, path.name, stem=path.stem)
    first = cache.load(text, path.name, stem=path.stem)
    second = cache.load(text, path.name, stem=path.stem)
    assert (cache.misses, cache.hits) == (1, 1)
    assert first == fresh
    assert second == fresh
    assert second is not first  # really read back from the entry
    assert _every_field(second) == _every_field(first) == _every_field(fresh)
    for group in second or ():
        for case in group.cases:
            for fault in case.faults:
                assert isinstance(fault.params, MappingProxyType)  # still read-only


def test_any_edit_misses(cache: CaseCache) -> None:
    cache.load(CASES, "c.yaml", stem="c")
    renamed = cache.load(CASES.replace("first", "second"), "c.yaml", stem="c")
    commented = cache.load(CASES + "# a comment\n", "c.yaml", stem="c")
    assert cache.misses == 3
    assert cache.hits == 0
    assert renamed is not None
    assert renamed[0].cases[0].name == "second"
    assert commented is not None
    assert commented[0].cases[0].name == "first"


def test_path_and_stem_are_part_of_the_key(cache: CaseCache) -> None:
    a = cache.load(CASES, "a.yaml", stem="a")
    b = cache.load(CASES, "b/a.yaml", stem="a")
    c = cache.load(CASES, "a.yaml", stem="other")
    assert cache.misses == 3
    assert a is not None
    assert b is not None
    assert c is not None
    assert a[0].cases[0].source.file == "a.yaml"
    assert b[0].cases[0].source.file == "b/a.yaml"
    assert c[0].cases[0].id == "other::first"


def test_another_loader_misses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "cases"
    first = CaseCache(folder, loader_fingerprint())
    first.load(CASES, "c.yaml", stem="c")
    monkeypatch.setattr(casecache, "__version__", "99.0")  # an upgraded plugin
    other = CaseCache(folder, loader_fingerprint())
    assert other.fingerprint != first.fingerprint
    other.load(CASES, "c.yaml", stem="c")
    assert (other.misses, other.hits) == (1, 0)
    again = CaseCache(folder, loader_fingerprint())
    again.load(CASES, "c.yaml", stem="c")
    assert (again.misses, again.hits) == (0, 1)


def test_fingerprint_follows_version_and_sources(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    base = loader_fingerprint()
    assert loader_fingerprint() == base
    monkeypatch.setattr(casecache, "__version__", "99.0")
    assert loader_fingerprint() != base
    monkeypatch.undo()
    copy = tmp_path / "scenario"
    copy.mkdir()
    assert loader.__file__ is not None
    for source in Path(loader.__file__).parent.glob("*.py"):
        (copy / source.name).write_bytes(source.read_bytes())
    monkeypatch.setattr(loader, "__file__", str(copy / "loader.py"))
    assert loader_fingerprint() == base
    (copy / "keys.py").write_text((copy / "keys.py").read_text() + "\n# changed\n")
    assert loader_fingerprint() != base


def test_a_bad_file_is_never_kept(cache: CaseCache) -> None:
    bad = CASES.replace("faultDuration: 1m", "faultDuration: soon")
    messages = []
    for _ in range(2):
        with pytest.raises(ScenarioError) as err:
            cache.load(bad, "bad.yaml", stem="bad")
        messages.append(str(err.value))
    assert messages[0] == messages[1]
    assert "bad.yaml:" in messages[0]
    assert cache.misses == 2
    assert not list(cache.folder.iterdir())


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other format", "empty"])
def test_a_damaged_entry_is_a_miss(cache: CaseCache, damage: str) -> None:
    expected = cache.load(CASES, "c.yaml", stem="c")
    (entry,) = cache.folder.iterdir()
    data = entry.read_bytes()
    head = len(FORMAT) + 64
    entry.write_bytes({"garbage": data[:head] + b"\x80\x05not a pickle",
                       "truncated": data[:head + 20],
                       "other format": b"tidb-ha-cases/0\n" + data[len(FORMAT):],
                       "empty": b""}[damage])
    assert cache.load(CASES, "c.yaml", stem="c") == expected
    assert cache.misses == 2
    assert cache.hits == 0
    assert cache.load(CASES, "c.yaml", stem="c") == expected  # rewritten: a hit again
    assert cache.hits == 1


def test_one_entry_per_file_and_no_temporary_left(cache: CaseCache) -> None:
    for n in range(3):
        cache.load(CASES.replace("first", f"case{n}"), "c.yaml", stem="c")
    cache.load(CASES, "d.yaml", stem="d")
    names = sorted(p.name for p in cache.folder.iterdir())
    assert len(names) == 2
    assert all(n.endswith(".pickle") for n in names)


def test_an_unwritable_cache_still_loads(tmp_path: Path) -> None:
    cache = CaseCache(tmp_path / "missing", loader_fingerprint())
    groups = cache.load(CASES, "c.yaml", stem="c")
    assert groups == load_groups(CASES, "c.yaml", stem="c")
    assert cache.load(CASES, "c.yaml", stem="c") == groups
    assert cache.misses == 2


def _every_field(value: object) -> object:
    """``value`` with every dataclass field spelled out, ``compare=False`` ones too (a
    Duration's text): what an entry must give back, beyond ``==``."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__,
                tuple((f.name, _every_field(getattr(value, f.name)))
                      for f in dataclasses.fields(value)))
    if isinstance(value, (tuple, list)):
        return tuple(_every_field(v) for v in value)
    if isinstance(value, MappingProxyType):
        return ("frozen", tuple((k, _every_field(v)) for k, v in value.items()))
    return value

