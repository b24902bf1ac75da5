"""The corpus files are QA's own case files, read by tests/unit/test_corpus.py.

They must not run as cases when the suite collects ``tests/`` (each would start a
cluster, two are QA's mistakes), so pytest does not collect them here.
"""

collect_ignore_glob = ["*.yaml"]
