"""Shared test set-up: pytester for the plugin tests, isolated from the caller's env."""

from __future__ import annotations

import os

import pytest

# Imported here, in the outer run, before any in-process inner run: pytester takes
# ``sys.modules`` back after each inner run, so a PyYAML first imported inside one would be
# imported afresh by the next, while its C extension (``yaml._yaml``, initialised once per
# process) keeps building nodes of the first copy's classes, and every ``isinstance`` check on
# a composed node fails ("cannot be read as cases"). The plugin imports PyYAML lazily, only
# when a run reads YAML, so which test imported it first depended on the test order.
import yaml  # noqa: F401

pytest_plugins = ["pytester"]

#: What every inner pytest run loads: this plugin and pytest-timeout (a dependency whose
#: ``timeout`` marks the plugin sets). Nothing else: see the ``pytester`` fixture.
INNER_PLUGINS = ("tidb_ha", "timeout")


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester whose inner runs see only our plugin, whatever else is installed.

    Companion plugins installed next to ours (pytest-randomly reorders and reseeds,
    pytest-html rewrites the summary, xdist/rerunfailures add options) would otherwise
    load into every inner run by their entry points and change what the inner run
    prints. So entry-point autoload is off and the plugins an inner run needs are named
    with ``-p``; a test that wants a companion adds ``-p xdist`` (or ``-p randomly`` ...)
    to its own arguments. The outer run's PYTEST_ADDOPTS / PYTEST_TIDB_HA_* settings are
    dropped too. In-process and subprocess runs (and hand-made ``python -m pytest``
    subprocesses, which inherit the environment) all go through these variables.
    """
    for name in list(os.environ):
        if name.startswith("PYTEST_TIDB_HA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("PYTEST_ADDOPTS", " ".join(f"-p {p}" for p in INNER_PLUGINS))
    return pytester
