"""pytest-tidb-ha: TiDB high-availability regression cases as ordinary pytest runs."""

from __future__ import annotations

__version__ = "0.1.0"
from .jobs.assertions import assert_cancellable, assert_job_converges, assert_jobs_converge

__all__ = ["__version__", "assert_cancellable", "assert_job_converges", "assert_jobs_converge"]
