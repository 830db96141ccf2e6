"""The demo (demo/) against a real Waymark, checked through the Jaeger query API.

One module-scoped run: a `waymark all-in-one` on free loopback ports (every
`--*-listen` flag that `waymark --help` lists is passed), the six demo services
started with the same commands as demo/run.sh and the Dockerfiles, and the load
driver (demo/node/loadgen.js) for LOAD_SECONDS. Then the services are stopped
with SIGTERM (they flush their spans) and the tests read what Waymark stored.

Needs: the binary (WAYMARK_BIN, default target/debug/waymark), node 20 with
demo/node_modules and the Python venv demo/.venv (both from `bash demo/install.sh`;
DEMO_PYTHON names another interpreter with demo/requirements.txt installed), and
pytest + requests for this file (tests/demo/requirements.txt).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_DIR = REPO_ROOT / "demo"
LOAD_SECONDS = 15
LOAD_RPS = 10
PAYMENT_SLOW_MS = 300
SHOP = ("frontend", "login", "catalog", "payment")
ALL_SERVICES = SHOP + ("service-a", "service-b")


# --- helpers -------------------------------------------------------------------

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
    return Path(override).resolve() if override else REPO_ROOT / "target" / "debug" / "waymark"


def _demo_python() -> Path:
    override = os.environ.get("DEMO_PYTHON")
    return Path(override) if override else DEMO_DIR / ".venv" / "bin" / "python"


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError as e:
            return f"<cannot read {self.log}: {e}>"


@dataclass
class Demo:
    query_url: str
    started_us: int
    procs: dict[str, Proc] = field(default_factory=dict)
    load_summary: dict | None = None

    def logs(self, *names: str) -> str:
        names = names or tuple(self.procs)
        return "".join(f"\n--- {n} log ---\n{self.procs[n].tail()}" for n in names if n in self.procs)

    def get(self, path: str, **params):
        r = requests.get(self.query_url + path, params=params, timeout=10)
        r.raise_for_status()
        return r.json()

    def traces(self, service: str, operation: str | None = None, limit: int = 500) -> list[dict]:
        params = {"service": service, "limit": limit, "start": self.started_us,
                  "end": int(time.time() * 1e6) + 60_000_000}
        if operation:
            params["operation"] = operation
        return self.get("/api/traces", **params)["data"] or []


def _start(procs: dict[str, Proc], name: str, argv: list[str], env: dict, log_dir: Path) -> Proc:
    log = log_dir / f"{name}.log"
    with open(log, "wb") as out:
        popen = subprocess.Popen(argv, cwd=DEMO_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
    proc = Proc(name, popen, log)
    procs[name] = proc
    return proc


def _stop(procs: list[Proc], grace_s: float = 8.0) -> None:
    """SIGTERM to each process group, then SIGKILL whatever is left."""
    for p in procs:
        if p.popen.poll() is None:
            try:
                os.killpg(p.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:  # the group too: children a service may have left behind
            os.killpg(p.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _wait_for(what: str, check, timeout_s: float, logs) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}{logs()}", pytrace=False)


def _listen_flags(binary: Path) -> list[str]:
    out = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    return sorted(set(re.findall(r"--([a-z0-9-]+-listen)\b", out)))


# --- the demo run ----------------------------------------------------------------

@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Demo:
    binary = _waymark_bin()
    python = _demo_python()
    if not binary.is_file():
        pytest.fail(f"waymark binary not found at {binary} (cargo build -p waymark, or set WAYMARK_BIN)",
                    pytrace=False)
    if not (DEMO_DIR / "node_modules").is_dir() or not python.exists():
        pytest.fail("demo dependencies missing: run `bash demo/install.sh` "
                    f"(looked for {DEMO_DIR / 'node_modules'} and {python})", pytrace=False)

    base = tmp_path_factory.mktemp("demo")
    log_dir = base / "logs"
    log_dir.mkdir()
    procs: dict[str, Proc] = {}
    all_logs = lambda: "".join(f"\n--- {n} log ---\n{p.tail()}" for n, p in procs.items())  # noqa: E731

    try:
        # Waymark: the three ports the test talks to are chosen here, every other
        # listener gets an ephemeral port from the OS.
        flags = _listen_flags(binary)
        for needed in ("otlp-http-listen", "query-listen", "admin-listen"):
            assert needed in flags, f"`waymark --help` lists no --{needed}: {flags}"
        p_otlp, p_query, p_admin = _free_ports(3)
        chosen = {"otlp-http-listen": p_otlp, "query-listen": p_query, "admin-listen": p_admin}
        argv = [str(binary), "all-in-one", "--data-dir", str(base / "waymark-data")]
        for flag in flags:
            argv += [f"--{flag}", f"127.0.0.1:{chosen.get(flag, 0)}"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WAYMARK_", "OTEL_"))}
        waymark = _start(procs, "waymark", argv, env, log_dir)

        def ready() -> bool:
            if waymark.popen.poll() is not None:
                pytest.fail(f"waymark exited with {waymark.popen.returncode}{all_logs()}", pytrace=False)
            try:
                return requests.get(f"http://127.0.0.1:{p_admin}/ready", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        _wait_for("waymark /ready", ready, 30, all_logs)

        # The services: same entry points as demo/run.sh and demo/docker/*.Dockerfile.
        ports = dict(zip(ALL_SERVICES, _free_ports(len(ALL_SERVICES))))
        svc_env = {
            **env,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{p_otlp}",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "DEMO_BIND_HOST": "127.0.0.1",
            "FRONTEND_PORT": str(ports["frontend"]),
            "LOGIN_PORT": str(ports["login"]),
            "CATALOG_PORT": str(ports["catalog"]),
            "PAYMENT_PORT": str(ports["payment"]),
            "SERVICE_A_PORT": str(ports["service-a"]),
            "SERVICE_B_PORT": str(ports["service-b"]),
            "CATALOG_DB_PATH": str(base / "catalog.sqlite"),
            # Failures and slow charges often enough to be certain to see some.
            "PAYMENT_ERROR_RATE": "0.3",
            "PAYMENT_SLOW_RATE": "0.3",
            "PAYMENT_SLOW_MS": str(PAYMENT_SLOW_MS),
        }
        for k in list(svc_env):  # no inherited knob may change the scenario
            if re.match(r"^(FRONTEND|LOGIN|CATALOG|SERVICE_A|SERVICE_B)_(DELAY_MS|SLOW_RATE|SLOW_MS|ERROR_RATE|URL)$", k) \
                    or k.startswith("LOAD_"):
                del svc_env[k]
        commands = {
            "service-b": ["node", "node/service-b.js"],
            "service-a": ["node", "node/service-a.js"],
            "login": [str(python), "python/login.py"],
            "catalog": [str(python), "python/catalog.py"],
            "payment": ["node", "node/payment.js"],
            "frontend": ["node", "node/frontend.js"],
        }
        for name, cmd in commands.items():
            _start(procs, name, cmd, svc_env, log_dir)
        for name in commands:
            proc = procs[name]

            def up(proc=proc, port=ports[name]) -> bool:
                if proc.popen.poll() is not None:
                    pytest.fail(f"{proc.name} exited with {proc.popen.returncode}{all_logs()}",
                                pytrace=False)
                return _port_open(port)

            _wait_for(f"{name} on port {ports[name]}", up, 30, all_logs)

        started_us = int(time.time() * 1e6) - 5_000_000
        load_env = {**svc_env, "LOAD_RPS": str(LOAD_RPS), "LOAD_DURATION_S": str(LOAD_SECONDS),
                    "LOAD_REPORT_S": "0"}
        loadgen = _start(procs, "loadgen", ["node", "node/loadgen.js"], load_env, log_dir)
        try:
            loadgen.popen.wait(timeout=LOAD_SECONDS + 20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the load driver did not finish{all_logs()}", pytrace=False)
        assert loadgen.popen.returncode == 0, f"load driver failed{all_logs()}"
        summary_lines = [line for line in loadgen.tail(20000).splitlines() if line.startswith('{"summary"')]
        assert summary_lines, f"no summary from the load driver{all_logs()}"

        # SIGTERM: every service flushes its batch of spans before exiting.
        _stop([procs[n] for n in commands])

        demo = Demo(query_url=f"http://127.0.0.1:{p_query}", started_us=started_us, procs=procs,
                    load_summary=json.loads(summary_lines[-1]))
        yield demo
    finally:
        _stop(list(procs.values()))


# --- Jaeger API views --------------------------------------------------------------

def _tags(obj: dict) -> dict:
    return {t["key"]: t["value"] for t in obj.get("tags") or []}


class Trace:
    def __init__(self, data: dict):
        self.data = data
        self.id = data["traceID"]
        self.spans = data["spans"]
        self.by_id = {s["spanID"]: s for s in self.spans}
        procs = data["processes"]
        self.service_of = {s["spanID"]: procs[s["processID"]]["serviceName"] for s in self.spans}
        self.language_of = {s["spanID"]: _tags(procs[s["processID"]]).get("telemetry.sdk.language")
                            for s in self.spans}

    def services(self) -> set[str]:
        return set(self.service_of.values())

    def parent(self, span: dict) -> dict | None:
        refs = [r for r in span.get("references") or [] if r["refType"] == "CHILD_OF"]
        if not refs:
            return None
        assert refs[0]["traceID"] == self.id
        return self.by_id.get(refs[0]["spanID"])

    def find(self, service: str, operation: str) -> list[dict]:
        return [s for s in self.spans
                if self.service_of[s["spanID"]] == service and s["operationName"] == operation]

    def one(self, service: str, operation: str) -> dict:
        found = self.find(service, operation)
        assert len(found) == 1, f"{len(found)} spans {service}:{operation} in trace {self.id}: {self.describe()}"
        return found[0]

    def describe(self) -> str:
        return "; ".join(f"{self.service_of[s['spanID']]}:{s['operationName']}" for s in self.spans)


def _is_error(span: dict) -> bool:
    return _tags(span).get("error") in (True, "true")


def _exception_logs(span: dict) -> list[dict]:
    return [f for f in ({x["key"]: x["value"] for x in log["fields"]} for log in span.get("logs") or [])
            if f.get("event") == "exception"]


def _full(demo: Demo, trace_id: str) -> Trace:
    data = demo.get(f"/api/traces/{trace_id}")["data"]
    assert len(data) == 1, f"GET /api/traces/{trace_id} returned {len(data)} traces"
    return Trace(data[0])


def _eventually(what: str, produce, demo: Demo, timeout_s: float = 15.0):
    """Polls produce() until it returns something truthy (spans may still be
    on their way into storage right after the services stopped)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        last = produce()
        if last or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert last, f"{what} not found within {timeout_s:.0f} s{demo.logs()}"
    return last


# --- tests -------------------------------------------------------------------------

def test_load_driver_reached_every_endpoint(demo):
    s = demo.load_summary["summary"]
    assert s.get("checkout", {}).get("200", 0) > 0, s
    assert s.get("checkout", {}).get("502", 0) > 0, f"no failed checkout with PAYMENT_ERROR_RATE=0.3: {s}"
    assert s.get("serviceB", {}).get("200", 0) > 0, s
    assert s.get("healthy", {}).get("200", 0) > 0, s
    assert s.get("serverError", {}).get("500", 0) > 0, s
    assert demo.load_summary["sent"] >= LOAD_RPS * LOAD_SECONDS * 0.8, demo.load_summary


def test_at_least_five_services(demo):
    def services():
        found = set(demo.get("/api/services")["data"] or [])
        return found if set(ALL_SERVICES) <= found else None

    found = _eventually("all six demo services in /api/services", services, demo)
    assert len(found) >= 5


def test_checkout_trace_spans_both_languages_with_links(demo):
    def complete_checkout():
        for t in demo.traces("frontend", "GET /checkout"):
            tr = Trace(t)
            if set(SHOP) <= tr.services() and not any(_is_error(s) for s in tr.spans):
                return tr.id
        return None

    tr = _full(demo, _eventually("a successful checkout trace with all four shop services",
                                 complete_checkout, demo))
    root = tr.one("frontend", "GET /checkout")
    assert tr.parent(root) is None
    assert _tags(root).get("span.kind") == "server"

    def called_from_frontend(server_span: dict, client_op: str) -> dict:
        client = tr.parent(server_span)
        assert client is not None, f"{server_span['operationName']} has no parent: {tr.describe()}"
        assert tr.service_of[client["spanID"]] == "frontend"
        assert client["operationName"] == client_op
        assert _tags(client).get("span.kind") == "client"
        assert tr.parent(client) is root, "frontend's client span is not under GET /checkout"
        return client

    login = tr.one("login", "POST /login")
    called_from_frontend(login, "POST /login")
    assert tr.parent(tr.one("login", "verify password")) is login

    catalog_spans = tr.find("catalog", "GET /product")
    assert len(catalog_spans) >= 2, f"no fan-out to catalog: {tr.describe()}"
    clients = [called_from_frontend(s, "GET /product") for s in catalog_spans]
    assert len({c["spanID"] for c in clients}) == len(clients)
    # The catalog calls ran concurrently: the first ends after the last began.
    first_end = min(c["startTime"] + c["duration"] for c in clients)
    last_start = max(c["startTime"] for c in clients)
    assert last_start < first_end, "catalog calls did not overlap (expected a parallel fan-out)"

    # Every catalog request ran the SQLite query, as a child span of its own.
    for server in catalog_spans:
        queries = [s for s in tr.spans if tr.parent(s) is server]
        assert len(queries) == 1, f"catalog request without exactly one query span: {tr.describe()}"
        q = _tags(queries[0])
        assert q.get("db.system") == "sqlite", q
        assert "FROM products" in str(q.get("db.statement")), q
        assert queries[0]["operationName"] == "SELECT"

    payment = tr.one("payment", "POST /charge")
    called_from_frontend(payment, "POST /charge")
    assert tr.parent(tr.one("payment", "authorize card")) is payment

    languages = {tr.service_of[sid]: lang for sid, lang in tr.language_of.items()}
    assert languages == {"frontend": "nodejs", "payment": "nodejs", "login": "python",
                         "catalog": "python"}, languages


def test_payment_failure_makes_an_error_trace(demo):
    def failed_checkout():
        for t in demo.traces("frontend", "GET /checkout"):
            tr = Trace(t)
            if any(_is_error(s) for s in tr.find("payment", "authorize card")):
                return tr.id
        return None

    tr = _full(demo, _eventually("a checkout trace with a failed payment", failed_checkout, demo))
    authorize = tr.one("payment", "authorize card")
    assert _is_error(authorize)
    assert _tags(authorize).get("otel.status_code") == "ERROR"
    excs = _exception_logs(authorize)
    assert excs and "card declined" in str(excs[0].get("exception.message")), authorize.get("logs")

    charge = tr.one("payment", "POST /charge")
    assert _is_error(charge) and _tags(charge).get("http.response.status_code") in (500, "500")
    root = tr.one("frontend", "GET /checkout")
    assert _is_error(root), "the failed payment did not fail the checkout"
    assert _tags(root).get("http.response.status_code") in (502, "502")
    assert _exception_logs(root), "frontend recorded no exception for the failed payment"


def test_slow_payment_span(demo):
    def slow():
        for t in demo.traces("payment", "authorize card"):
            for s in Trace(t).find("payment", "authorize card"):
                if s["duration"] >= PAYMENT_SLOW_MS * 1000:
                    return s
        return None

    _eventually(f"an 'authorize card' span of at least {PAYMENT_SLOW_MS} ms", slow, demo)


def test_service_a_calls_service_b(demo):
    def trace_b():
        for t in demo.traces("service-a", "GET /serviceB"):
            if {"service-a", "service-b"} <= Trace(t).services():
                return t["traceID"]
        return None

    tr = _full(demo, _eventually("a service-a -> service-b trace", trace_b, demo))
    root = tr.one("service-a", "GET /serviceB")
    assert tr.parent(root) is None and not _is_error(root)
    b_server = tr.one("service-b", "GET /data")
    client = tr.parent(b_server)
    assert client is not None and tr.service_of[client["spanID"]] == "service-a"
    assert client["operationName"] == "GET /data" and _tags(client).get("span.kind") == "client"
    assert tr.parent(client) is root
    db = tr.one("service-b", "SELECT demo.items")
    assert tr.parent(db) is b_server, "service-b's database span is not under its server span"
    assert _tags(db).get("db.system.name") == "postgresql"


def test_service_a_healthy_makes_no_downstream_call(demo):
    traces = _eventually("a /healthy trace", lambda: demo.traces("service-a", "GET /healthy"), demo)
    for t in traces:
        tr = Trace(t)
        assert tr.services() == {"service-a"} and len(tr.spans) == 1, tr.describe()


def test_server_error_trace(demo):
    traces = _eventually("a /serverError trace",
                         lambda: demo.traces("service-a", "GET /serverError"), demo)
    tr = _full(demo, traces[0]["traceID"])
    root = tr.one("service-a", "GET /serverError")
    tags = _tags(root)
    assert _is_error(root) and tags.get("otel.status_code") == "ERROR", tags
    assert tags.get("http.response.status_code") in (500, "500"), tags
    excs = _exception_logs(root)
    assert excs, f"no exception log on {root}"
    assert excs[0].get("exception.type") == "Error"
    assert "simulated failure" in str(excs[0].get("exception.message"))
    assert excs[0].get("exception.stacktrace")


def test_dependency_graph(demo):
    expected = {("frontend", "login"), ("frontend", "catalog"), ("frontend", "payment"),
                ("service-a", "service-b")}

    def edges():
        end_ms = int(time.time() * 1000)
        lookback_ms = end_ms - demo.started_us // 1000 + 60_000
        data = demo.get("/api/dependencies", endTs=end_ms, lookback=lookback_ms)["data"] or []
        found = {(d["parent"], d["child"]): d["callCount"] for d in data}
        return found if expected <= set(found) else None

    found = _eventually("the four demo edges in /api/dependencies", edges, demo)
    for edge in expected:
        assert found[edge] > 0, found
    services = {s for edge in found for s in edge}
    assert len(services) >= 5, found


# --- the Dockerfiles run what run.sh runs --------------------------------------------

DOCKER_SERVICES = {
    "service-a": "node", "service-b": "node", "frontend": "node", "payment": "node",
    "loadgen": "node", "login": "python", "catalog": "python",
}


@pytest.mark.parametrize("name", sorted(DOCKER_SERVICES))
def test_dockerfile_matches_run_sh(name):
    """Static check (no Docker engine needed): each Dockerfile's CMD is the
    command demo/run.sh starts that service with, it runs as a non-root user,
    and what it copies exists."""
    dockerfile = (DEMO_DIR / "docker" / f"{name}.Dockerfile").read_text()
    run_sh = (DEMO_DIR / "run.sh").read_text()
    ext = "js" if DOCKER_SERVICES[name] == "node" else "py"
    script = f"{DOCKER_SERVICES[name]}/{name}.{ext}"
    cmd = re.findall(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert len(cmd) == 1, dockerfile
    argv = json.loads(cmd[0])
    if DOCKER_SERVICES[name] == "node":
        assert argv == ["node", script]
        assert f"start {name} node {script}\n" in run_sh
    else:
        assert argv == ["python", script]
        assert f'start {name} "$DEMO_PYTHON" {script}\n' in run_sh
    assert (DEMO_DIR / script).is_file()
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0"), "the container must not run as root"
    for line in re.findall(r"^COPY (.+)$", dockerfile, re.M):
        for src in line.split()[:-1]:
            assert (DEMO_DIR / src).exists(), f"{name}.Dockerfile copies missing {src}"
