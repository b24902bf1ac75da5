"""Shared test set-up: pytester for the plugin tests, isolated from the caller's env."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester without the outer run's PYTEST_ADDOPTS / PYTEST_TIDB_HA_* settings."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    for name in list(os.environ):
        if name.startswith("PYTEST_TIDB_HA_"):
            monkeypatch.delenv(name)
    return pytester
