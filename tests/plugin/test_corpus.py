"""QA's own files, unchanged: every case config found in public pingcap/tidb issues.

``tests/corpus/<issue>.yaml`` holds each config exactly as pasted in the issue
(indentation included; ``46468-N`` are the N-th case block of #46468, pasted
between prose). Each must collect and plan as QA meant -- the fault, selector,
schedule and jobs -- or fail collection with the error its mistake deserves
(#48208 pairs ``kill`` with a two-sided selector; #48701 lost its indentation).
The seeds #48303 and #48546 are in ``scenarios/seeds``.

Seen but not collected, because our copy of the issue text is cut inside the
config: #48065 (config list + iochaos_io_delay + importInto), #48649 (importInto
with a credential in cmd).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus"
SEEDS = ROOT / "scenarios" / "seeds"

ADD_INDEX_5 = [
    "  job 1: ADD INDEX (c) ON sysbench_64_7000w.sbtest1 job_type=ingest*times=5, timeout 60m*",
    "    run 1: submit at 1m, deadline 1h1m",
    "    run 5: submit when run 4 ends*",
]
WORKLOAD = ["  workload: sysbench oltp_read_write db=sysbench_64_7000w tables=64 "
            "table_size=70000000 threads=64 ignore_errors=all"]
EVERY_5M_30M = ["    window 1: 1m -> *", "    window 6: 26m -> *"]


@dataclass(frozen=True)
class Entry:
    file: str  # file name under tests/corpus (or scenarios/seeds for the seeds)
    items: tuple[str, ...] = ()  # test ids after the file's path
    plan: tuple[str, ...] = ()  # fnmatch lines of the dry-run plan
    error: str | None = None  # fnmatch line of the collection error

    @property
    def issue(self) -> str:
        return self.file.split(".")[0].split("-")[0]


CORPUS_ENTRIES = [
    Entry("48303.yaml", ("ha_tikv(random)_to_all_network_partition",), (
        *WORKLOAD,
        "  fault 1: network_partition on tikv(random)_to_all (direction=both); 3m every 5m from "
        "1m for 30m*", "    window 1: 1m -> 4m", *ADD_INDEX_5)),
    Entry("48546.yaml", ("ha_pdleader_to_pdfollower_all_network_partition",), (
        "  topology: pd=3,tikv=1,tidb=1",
        "  fault 1: network_partition on pdleader_to_pdfollower(all) (direction=both); 2m every "
        "5m from 1m for 30m*", "    window 1: 1m -> 3m", *ADD_INDEX_5)),
    Entry("47954.yaml", ("ha_tidb(ddl-owner)_to_all_network_partition",), (
        "  topology: pd=1,tikv=1,tidb=2",
        "    tidb>=2: network_partition on tidb(ddl-owner)_to_all: another TiDB must take over*",
        *WORKLOAD,
        "  fault 1: network_partition on tidb(ddl-owner)_to_all (direction=both); 3m every 5m "
        "from 1m for 30m*", *EVERY_5M_30M, *ADD_INDEX_5)),
    Entry("48861.yaml", ("ha_tidb(ddl-owner)_to_all_network_partition",), (
        "  fault 1: network_partition on tidb(ddl-owner)_to_all (direction=both); 3m every 5m*",
        "  job 1: ADD INDEX (c) ON sysbench_64_7000w.sbtest1 job_type=ingest admin_check=true "
        "count_check=false; times=5*")),
    Entry("47476.yaml", ("ha_tidb(ddl-owner)_to_all_network_partition",), (
        "  fault 1: network_partition on tidb(ddl-owner)_to_all (direction=both); 3m every 5m*",
        "  job 1: ADD INDEX (c) ON sysbench_64_7000w.sbtest1 job_type=ingest admin_check=false "
        "count_check=false; times=5*")),
    Entry("48862.yaml", ("ha_pdleader_to_pdfollower_all_network_partition",), (
        "  topology: pd=3,tikv=1,tidb=1",
        "  fault 1: network_partition on pdleader_to_pdfollower(all) (direction=both); 2m every "
        "5m from 1m for 30m*", *EVERY_5M_30M, *ADD_INDEX_5)),
    Entry("48206.yaml", ("ha_pdleader_kill",), (
        "  topology: pd=3,tikv=1,tidb=1",
        "  fault 1: kill on pd(leader); 1m every 5m from 1m for 30m*",
        "    window 1: 1m -> 2m", "    window 6: 26m -> 27m", *ADD_INDEX_5)),
    Entry("48204.yaml", ("ha_pd(leader)_io_delay(1s)",), (
        "  topology: pd=3,tikv=1,tidb=1",
        "  fault 1: io_delay on pd(leader) (volume_path=/var/lib/pd, path=/var/lib/pd/data/**/*, "
        "latency=1s, percent=100*); 2m every 5m from 1m for 30m*",
        "    as written: faultType iochaos_io_delay(volumePath:/var/lib/pd,path:/var/lib/pd/data/"
        "**/*,delay:1s,percent:100)",
        "    QA means: Chaos Mesh IOChaos latency: each IO on /var/lib/pd/data/**/* under "
        "/var/lib/pd waits 1s, for 100% of the operations",
        "    here: a cgroup IO limit of 1 IOPS on the disk behind the node's data directory*",
        *EVERY_5M_30M, *ADD_INDEX_5)),
    Entry("47125.yaml", ("ha_tidb_ddl_owner_kill",), (
        "  dist task: on (tidbGlobalVariables beforeCase)",
        "  before the case: SET GLOBAL tidb_enable_dist_task='on'  [[]*47125.yaml:10[]]",
        "  fault 1: kill on tidb(ddl-owner); 1m every 5m from 1m for 30m*", *EVERY_5M_30M,
        *ADD_INDEX_5)),
    Entry("47684.yaml", ("ha_tikv_random_kill",), (
        "  topology: pd=1,tikv=3,tidb=1", "  workload: none",
        "  fault 1: kill on tikv(random); 1m every 5m from 1m for 20m*",
        "    window 4: 16m -> 17m",
        "  job 1: IMPORT INTO importtest.user_data1 as written (cmd, run in database importtest): "
        "import into user_data1 from 's3://brie/lightning-mhy-100G-csv/sysbench.user_data1.000001"
        "*.csv?access-key=xxxxxx&secret-access-key=xxxxxx&endpoint=*' WITH DETACHED,skip_rows=1; "
        "times=1, timeout 120m each*",
        "    before (in database importtest): CREATE TABLE `user_data1` ( `uid` bigint(20) *",
        "    after each run: crc32Checksum must be 3582177512 = BIT_XOR(CAST(CRC32(CONCAT_WS(*",
        "    run 1: submit at 1m, deadline 2h1m")),
    Entry("48064.yaml", ("config_ha_pdleader_to_all_network_partition::"
                         "ha_pdleader_to_all_network_partition",), (
        "48064::config_ha_pdleader_to_all_network_partition::ha_pdleader_to_all_network_partition"
        "  [[]*48064.yaml:14[]]",
        *WORKLOAD,
        "  fault 1: network_partition on pdleader_to_all (direction=both); 2m every 5m from 1m "
        "for 30m  [[]*48064.yaml:17[]]", *EVERY_5M_30M, *ADD_INDEX_5)),
    Entry("46468-1.yaml", ("ha_tidb_ddl_owner_kill",), (
        "  workload: none", "  fault 1: kill on tidb(ddl-owner); 1m every 5m from 5m for 30m*",
        "    window 1: 5m -> 6m", "  jobs: none")),
    Entry("46468-2.yaml", ("ha_pdleader_kill",), (
        "  fault 1: kill on pd(leader); 1m every 5m from 5m for 30m*", "  jobs: none")),
    Entry("46468-3.yaml", ("ha_tikv_random_kill",), (
        "  fault 1: kill on tikv(random); 1m every 5m from 5m for 30m*", "  jobs: none")),
    Entry("48208.yaml", error=(
        "*48208.yaml:15: selector pdleader_to_pdfollower(all): SOURCE_to_TARGET only applies to "
        "network faults (*), not kill: kill acts on nodes, not on the links between them*")),
    Entry("48701.yaml", error=(
        "*48701.yaml:4: unknown key 'warmUpTime' in the case file -- warmUpTime belongs to a "
        "case: this file's indentation looks lost (a flattened paste?)*")),
]


def _path(entry: Entry) -> Path:
    return (SEEDS if entry.file in ("48303.yaml", "48546.yaml") else CORPUS) / entry.file


def test_every_corpus_file_has_an_entry() -> None:
    files = {p.name for p in CORPUS.glob("*.yaml")}
    assert files == {e.file for e in CORPUS_ENTRIES} - {"48303.yaml", "48546.yaml"}


@pytest.mark.parametrize("entry", CORPUS_ENTRIES, ids=lambda e: e.file.removesuffix(".yaml"))
def test_qa_file_collects_and_plans_as_qa_means(pytester: pytest.Pytester, entry: Entry) -> None:
    shutil.copy(_path(entry), pytester.path / entry.file)
    result = pytester.runpytest("--ha-dry-run", "-v", "-p", "no:randomly", entry.file)
    if entry.error is not None:
        assert result.ret == pytest.ExitCode.INTERRUPTED
        result.stdout.fnmatch_lines(["*ERROR collecting*", entry.error])
        assert "Traceback" not in result.stdout.str()
        return
    result.assert_outcomes(passed=len(entry.items))
    result.stdout.fnmatch_lines([f"{entry.file}::{item} PASSED*" for item in entry.items])
    result.stdout.fnmatch_lines(["*= tidb-ha plan =*", *entry.plan])
