"""Jobs and verdicts: submit ADD INDEX / IMPORT INTO, watch them, judge them, explain failures.

Pure logic: :mod:`.catalog` (sensible vs bug errors), :mod:`.model` (observations),
:mod:`.verdict` (``judge``), :mod:`.timing` (poll interval, stall window).
I/O edges: :mod:`.statement` (the blocking statement's thread), :mod:`.submit`,
:mod:`.watch` (the watcher thread), :mod:`.diagnostics` (the bundle).
Public API: :mod:`.assertions` (re-exported by ``pytest_tidb_ha``), the ``tidb``
fixture (:mod:`.fixtures`, :mod:`pytest_tidb_ha.facade`), the case runner
(:mod:`pytest_tidb_ha.runner`). See docs/jobs.md and docs/contracts.md.
"""
