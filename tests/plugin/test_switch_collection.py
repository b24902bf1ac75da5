"""DXF needs fast reorg: a case asking for DXF with a txn backfill fails collection.

Real TiDB answers ADD INDEX with 8200 (``ErrUnsupportedDistTask``) when
``tidb_enable_dist_task=ON`` and ``tidb_ddl_enable_fast_reorg=OFF``
(``pkg/ddl/reorg_util.go initJobReorgMetaFromVariables``; reference §9): a case
that asks for both explicitly can never run, so it is a collection error at the
job's line -- before any container starts.
"""

from __future__ import annotations

import textwrap

import pytest

CASES = {
    "job_level": ("""
        cases:
          - name: a
            ddl:
              addIndex:
                - {db: d, table: t, index_col_name: c, timeout: 1m,
                   job_type: txn, distTask: on}
        """, "job_level.yaml:5: *job_type: txn*distTask: on*8200*"),
    "case_level": ("""
        cases:
          - name: a
            distTask: on
            ddl:
              addIndex:
                - {db: d, table: t, index_col_name: c, timeout: 1m, job_type: txn}
        """, "case_level.yaml:6: *job_type: txn*distTask: on*8200*"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_dist_task_with_txn_backfill_is_a_collection_error(pytester: pytest.Pytester,
                                                            name: str) -> None:
    text, expected = CASES[name]
    pytester.makefile(".yaml", **{name: textwrap.dedent(text).lstrip("\n")})
    result = pytester.runpytest("-q", "--ha-dry-run")
    result.stdout.fnmatch_lines([expected])
    result.assert_outcomes(errors=1)


def test_txn_backfill_without_dist_task_collects(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", ok=textwrap.dedent("""
        cases:
          - name: a
            ddl:
              addIndex:
                - {db: d, table: t, index_col_name: c, timeout: 1m, job_type: txn}
    """))
    result = pytester.runpytest("-q", "--ha-dry-run")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*job_type=txn*dist task off (txn backfill)*"])
