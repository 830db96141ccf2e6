"""Fixtures for the Waymark end-to-end tests.

* ``waymark``: one `waymark all-in-one` process for the whole session, in a
  fresh temporary data dir, on free loopback ports.  The binary is
  ``target/debug/waymark`` unless the env var WAYMARK_BIN names another.
* ``sent``: runs one OpenTelemetry client (parametrized over all clients) against
  that server, once per session, and returns the JSON document it printed
  (what it sent).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent.parent
CLIENTS_DIR = E2E_DIR / "clients"
READY_TIMEOUT_S = 30.0
CLIENT_TIMEOUT_S = 120.0


@dataclass
class Client:
    name: str
    argv: list[str]
    port_attr: str  # which Waymark port its OTLP endpoint uses


CLIENTS = {
    "py-grpc": Client("py-grpc", [sys.executable, str(CLIENTS_DIR / "py_grpc.py")], "otlp_grpc_port"),
    "py-http": Client("py-http", [sys.executable, str(CLIENTS_DIR / "py_http.py")], "otlp_http_port"),
    "js-http": Client("js-http", ["node", str(CLIENTS_DIR / "js_http.mjs")], "otlp_http_port"),
}


@dataclass
class Waymark:
    otlp_grpc_port: int
    otlp_http_port: int
    query_port: int
    admin_port: int
    zipkin_port: int
    jaeger_compact_port: int
    jaeger_binary_port: int
    jaeger_http_port: int
    sampling_port: int
    jaeger_grpc_port: int
    data_dir: Path
    log_path: Path
    process: subprocess.Popen

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def log_tail(self, max_chars: int = 8000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as e:
            return f"<cannot read {self.log_path}: {e}>"
        return text[-max_chars:]


_SERVER: Waymark | None = None  # for the failure report hooks below


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _waymark_bin() -> Path:
    override = os.environ.get("WAYMARK_BIN")
    return Path(override) if override else REPO_ROOT / "target" / "debug" / "waymark"


@pytest.fixture(scope="session")
def waymark(tmp_path_factory):
    global _SERVER
    binary = _waymark_bin()
    if not binary.is_file():
        pytest.fail(f"waymark binary not found at {binary} (build it with `cargo build -p waymark` "
                    f"or set WAYMARK_BIN)", pytrace=False)

    base = tmp_path_factory.mktemp("waymark")
    data_dir = base / "data"
    data_dir.mkdir()
    log_path = base / "waymark.stderr.log"
    (p_grpc, p_http, p_query, p_admin, p_zipkin, p_jc, p_jb, p_jh, p_sampling,
     p_jgrpc) = _free_ports(10)
    argv = [
        str(binary), "all-in-one",
        "--data-dir", str(data_dir),
        "--otlp-grpc-listen", f"127.0.0.1:{p_grpc}",
        "--otlp-http-listen", f"127.0.0.1:{p_http}",
        "--query-listen", f"127.0.0.1:{p_query}",
        "--admin-listen", f"127.0.0.1:{p_admin}",
        "--zipkin-listen", f"127.0.0.1:{p_zipkin}",
        "--jaeger-compact-listen", f"127.0.0.1:{p_jc}",
        "--jaeger-binary-listen", f"127.0.0.1:{p_jb}",
        "--jaeger-http-listen", f"127.0.0.1:{p_jh}",
        "--sampling-listen", f"127.0.0.1:{p_sampling}",
        "--jaeger-grpc-listen", f"127.0.0.1:{p_jgrpc}",
        "--query-grpc-listen", "127.0.0.1:0",
    ]
    log_file = open(log_path, "wb")
    proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=base)
    server = Waymark(p_grpc, p_http, p_query, p_admin, p_zipkin, p_jc, p_jb, p_jh, p_sampling, p_jgrpc,
                     data_dir, log_path, proc)
    _SERVER = server
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = "no answer yet"
        while True:
            if proc.poll() is not None:
                pytest.fail(f"waymark exited with code {proc.returncode} before becoming ready\n"
                            f"command: {' '.join(argv)}\n--- output ---\n{server.log_tail()}",
                            pytrace=False)
            try:
                r = requests.get(f"{server.admin_url}/ready", timeout=2)
                if r.status_code == 200:
                    break
                last = f"HTTP {r.status_code}: {r.text[:200]}"
            except requests.RequestException as e:
                last = repr(e)
            if time.monotonic() > deadline:
                pytest.fail(f"waymark not ready after {READY_TIMEOUT_S:.0f}s (last /ready: {last})\n"
                            f"command: {' '.join(argv)}\n--- output ---\n{server.log_tail()}",
                            pytrace=False)
            time.sleep(0.2)

        yield server

        if proc.poll() is not None:
            pytest.fail(f"waymark died during the tests with code {proc.returncode}\n"
                        f"--- output ---\n{server.log_tail()}", pytrace=False)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        log_file.close()
        _SERVER = None


_SENT_CACHE: dict[str, dict] = {}


@pytest.fixture(scope="session", params=list(CLIENTS))
def sent(request, waymark):
    """Runs one client against the server (once per session) and returns its document."""
    name = request.param
    if name not in _SENT_CACHE:
        _SENT_CACHE[name] = run_client(CLIENTS[name], waymark)
    return _SENT_CACHE[name]


def run_client(client: Client, server: Waymark) -> dict:
    if client.argv[0] == "node":
        if shutil.which("node") is None:
            pytest.fail("node is not installed", pytrace=False)
        if not (E2E_DIR / "node_modules").is_dir():
            pytest.fail("tests/e2e/node_modules is missing: run `npm ci` in tests/e2e", pytrace=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{getattr(server, client.port_attr)}"
    proc = subprocess.run(client.argv, cwd=E2E_DIR, env=env, capture_output=True,
                          timeout=CLIENT_TIMEOUT_S, text=True)
    if proc.returncode != 0:
        pytest.fail(f"client {client.name} failed (exit {proc.returncode})\n--- stderr ---\n"
                    f"{proc.stderr[-6000:]}\n--- stdout ---\n{proc.stdout[-3000:]}\n"
                    f"--- waymark output ---\n{server.log_tail(4000)}", pytrace=False)
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        pytest.fail(f"client {client.name} printed no JSON document ({e}):\n{proc.stdout[-3000:]}",
                    pytrace=False)
    doc["_stderr"] = proc.stderr
    return doc


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _SERVER is not None:
        report.sections.append(("waymark output (tail)", _SERVER.log_tail(4000)))
