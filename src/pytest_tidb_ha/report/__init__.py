"""What a run tells its reader: terminal summary, JUnit properties, artifacts, picture.

Reads only the per-test :class:`~pytest_tidb_ha.record.HARecord` (timeline events and
verdicts); knows nothing of how the events were produced. Pure renderers
(``derive``, ``summary``, ``junit``, ``github``, ``picture``, ``html``) are kept apart
from the I/O edges (``artifacts``, ``hooks``, ``progress``). See docs/reports.md.
"""
