"""Fixtures for the Waymark system tests.

* `make_server(data_dir=None, extra_args=())` – function-scoped factory of
  WaymarkServer objects (not yet started); every server is stopped at teardown.
* On any failing test, the stderr/stdout tails of the servers that were alive
  or exited during that test are attached to the report.

Binary: $WAYMARK_BIN or <repo>/target/debug/waymark.
"""

from __future__ import annotations

import time

import pytest

import waymark_sys
from waymark_sys import WaymarkServer


@pytest.fixture
def make_server(tmp_path):
    created: list[WaymarkServer] = []

    def factory(data_dir=None, extra_args=()):
        n = len(created)
        srv = WaymarkServer(data_dir or tmp_path / f"data{n}", tmp_path / f"logs{n}", extra_args)
        created.append(srv)
        return srv

    yield factory
    for srv in created:
        srv.stop()


@pytest.fixture(scope="module")
def module_server_factory(tmp_path_factory):
    """Same as make_server, but the servers live for the whole module."""
    created: list[WaymarkServer] = []

    def factory(extra_args=()):
        base = tmp_path_factory.mktemp("waymark")
        srv = WaymarkServer(base / "data", base / "logs", extra_args)
        created.append(srv)
        return srv

    yield factory
    for srv in created:
        srv.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item._waymark_t0 = time.time()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    t0 = getattr(item, "_waymark_t0", 0.0)
    for srv in waymark_sys.ALL_SERVERS:
        logs = list(srv.past_logs) + [(srv.stderr_path, srv.exited_at)]
        for path, exited_at in logs:
            if path is None:
                continue
            still_running = path == srv.stderr_path and srv.alive()
            if not still_running and (exited_at is None or exited_at < t0):
                continue
            state = "running" if still_running else "exited"
            report.sections.append(
                (f"waymark {path.name} ({state}, tail)", WaymarkServer._tail(path, 60)))
            if path == srv.stderr_path:
                report.sections.append(
                    (f"waymark {srv.stdout_path.name} (tail)", srv.stdout_tail(30)))
