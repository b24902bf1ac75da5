"""Jobs and verdicts: submit ADD INDEX / IMPORT INTO, watch them, judge them, explain failures.

Pure logic: :mod:`.catalog` (sensible vs bug errors), :mod:`.model` (observations),
:mod:`.verdict` (``judge``; the Verdict record is :mod:`pytest_tidb_ha.verdicts`); the
windows come from :mod:`pytest_tidb_ha.scenario.timing` and ``scenario.floors``.
I/O edges: :mod:`.statement` (the blocking statement's thread), :mod:`.submit`,
:mod:`.watch` (the watcher thread), :mod:`.diagnostics` (the bundle).
Public API: :mod:`.assertions` (re-exported by ``pytest_tidb_ha``), the ``tidb``
fixture (:mod:`.fixtures`, :mod:`.facade`) and the case runner
(:mod:`pytest_tidb_ha.runner`), which share one :class:`.session.JobSession`. See docs/jobs.md and docs/contracts.md.
"""
