"""Shared fixtures. With CI=true a skipped test is a failure: nothing passes quietly.

A strict xfail is not a skip: it runs, pins a known gap, and fails (XPASS) once the gap closes.
"""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    if ci and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {report.longrepr}"


@pytest.fixture(scope="session")
def pg_cluster():  # type: ignore[no-untyped-def]
    """One throwaway PostgreSQL cluster for the whole run (tests/pgcluster.py)."""
    from pgcluster import PgCluster  # noqa: PLC0415 - only runs that need it start a server

    cluster = PgCluster()
    cluster.init()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster) -> str:  # type: ignore[no-untyped-def]
    """A fresh, empty database in the test cluster."""
    return str(pg_cluster.create_database())
