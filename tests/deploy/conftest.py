"""Fixtures of the deployment tests (tests/deploy).

* `cluster` – a FakeCluster over a fresh directory; every process it
  started is stopped at teardown, and a failing test gets their log tails.

Binary: $WAYMARK_BIN or <repo>/target/debug/waymark.
"""

from __future__ import annotations

import shutil

import pytest

import deploy_support as ds

_CLUSTERS: list[ds.FakeCluster] = []


@pytest.fixture
def cluster():
    if not ds.waymark_bin().exists():
        pytest.fail(f"waymark binary not found at {ds.waymark_bin()}; "
                    f"build it with `cargo build -p waymark` or set WAYMARK_BIN")

    def make(docs):
        c = ds.FakeCluster(docs=docs, root=ds.make_root())
        _CLUSTERS.append(c)
        return c

    yield make
    while _CLUSTERS:
        c = _CLUSTERS.pop()
        c.stop_all()
        shutil.rmtree(c.root, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for c in _CLUSTERS:
        for rc in c.running:
            report.sections.append((f"{rc.workload['metadata']['name']}/{rc.name} log (tail)",
                                    rc.log_tail(3000)))
