"""Shared helpers for the Waymark system tests.

Process control (start / SIGKILL / stop / wait for /ready), OTLP request
builders (protobuf and OTLP/JSON) and a small Jaeger query client.
"""

from __future__ import annotations

import itertools
import os
import pathlib
import random
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable

import requests
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = float(os.environ.get("WAYMARK_READY_TIMEOUT", "30"))

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

ExportTraceServiceRequest = trace_service_pb2.ExportTraceServiceRequest
ExportTraceServiceResponse = trace_service_pb2.ExportTraceServiceResponse


# --------------------------------------------------------------------------
# Process control
# --------------------------------------------------------------------------

def binary_path() -> pathlib.Path:
    override = os.environ.get("WAYMARK_BIN")
    if override:
        return pathlib.Path(override)
    return REPO_ROOT / "target" / "debug" / "waymark"


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = open("/proc/sys/net/ipv4/ip_local_port_range").read().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


_port_rng = random.Random()
_handed_out: set[int] = set()


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports, chosen below the kernel's ephemeral
    range: a port handed out here cannot be taken meanwhile by a process
    that binds port 0 (as the servers do for listeners a test turns off),
    nor by an outgoing connection. Each port is handed out once per run."""
    lo, _ = _ephemeral_range()
    low = 10000 if lo > 12000 else 1024
    out: list[int] = []
    with _registry_lock:
        for _ in range(n * 200):
            if len(out) == n:
                break
            port = _port_rng.randrange(low, lo)
            if port in _handed_out:
                continue
            # Free for TCP and UDP (the Jaeger agent ports are UDP).
            ok = True
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                s = socket.socket(socket.AF_INET, kind)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                finally:
                    s.close()
            if not ok:
                continue
            _handed_out.add(port)
            out.append(port)
    if len(out) < n:
        raise RuntimeError(f"found only {len(out)} of {n} free ports below {lo}")
    return out


class ServerError(AssertionError):
    pass


# Every server started in this pytest session; conftest shows their logs
# when a test fails.
ALL_SERVERS: list["WaymarkServer"] = []
_counter = itertools.count(1)
_registry_lock = threading.Lock()


class WaymarkServer:
    """One `waymark all-in-one` process. start() may be called again after
    kill()/stop(); each start gets fresh ports and its own log files."""

    def __init__(self, data_dir: pathlib.Path, log_dir: pathlib.Path,
                 extra_args: Iterable[str] = ()):
        self.data_dir = pathlib.Path(data_dir)
        self.log_dir = pathlib.Path(log_dir)
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen | None = None
        self.generation = 0
        self.stdout_path: pathlib.Path | None = None
        self.stderr_path: pathlib.Path | None = None
        self.exited_at: float | None = None
        self.started_at: float | None = None
        self.past_logs: list[tuple[pathlib.Path, float | None]] = []
        with _registry_lock:
            ALL_SERVERS.append(self)

    # -- addresses -------------------------------------------------------
    @property
    def otlp_http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def zipkin_url(self) -> str:
        return f"http://127.0.0.1:{self.zipkin_port}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- lifecycle -------------------------------------------------------
    def start(self, wait: bool = True) -> float:
        """Start the process; if wait, block until /ready and return the
        seconds it took."""
        if self.alive():
            raise RuntimeError("server already running")
        binary = binary_path()
        if not binary.exists():
            raise ServerError(
                f"waymark binary not found at {binary}; build it with "
                f"`cargo build -p waymark` or set WAYMARK_BIN")
        (self.grpc_port, self.http_port, self.query_port, self.admin_port,
         self.zipkin_port, self.jaeger_compact_port, self.jaeger_binary_port,
         self.jaeger_http_port, self.sampling_port, self.jaeger_grpc_port) = free_ports(10)
        if self.stderr_path is not None:
            self.past_logs.append((self.stderr_path, self.exited_at))
        self.generation = next(_counter)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = self.log_dir / f"waymark-{self.generation}.stdout"
        self.stderr_path = self.log_dir / f"waymark-{self.generation}.stderr"
        args = [
            str(binary), "all-in-one",
            "--data-dir", str(self.data_dir),
            "--otlp-grpc-listen", self.grpc_target,
            "--otlp-http-listen", f"127.0.0.1:{self.http_port}",
            "--query-listen", f"127.0.0.1:{self.query_port}",
            "--admin-listen", f"127.0.0.1:{self.admin_port}",
            "--zipkin-listen", f"127.0.0.1:{self.zipkin_port}",
            "--jaeger-compact-listen", f"127.0.0.1:{self.jaeger_compact_port}",
            "--jaeger-binary-listen", f"127.0.0.1:{self.jaeger_binary_port}",
            "--jaeger-http-listen", f"127.0.0.1:{self.jaeger_http_port}",
            "--sampling-listen", f"127.0.0.1:{self.sampling_port}",
            "--jaeger-grpc-listen", f"127.0.0.1:{self.jaeger_grpc_port}",
            "--query-grpc-listen", "127.0.0.1:0",
            *self.extra_args,
        ]
        self.args = args
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err,
                                         start_new_session=True)
        self.started_at = time.time()
        self.exited_at = None
        if wait:
            return self.wait_ready()
        return 0.0

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        t0 = time.monotonic()
        deadline = t0 + timeout
        last = "no attempt"
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                self.exited_at = time.time()
                raise ServerError(
                    f"waymark exited with code {code} before becoming ready\n"
                    f"command: {' '.join(self.args)}\n"
                    f"--- stderr (tail) ---\n{self.stderr_tail()}")
            try:
                r = requests.get(self.admin_url + "/ready", timeout=1)
                if r.status_code == 200:
                    return time.monotonic() - t0
                last = f"HTTP {r.status_code}: {r.text[:200]!r}"
            except requests.RequestException as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(0.05)
        raise ServerError(
            f"waymark not ready after {timeout:.0f}s (last /ready result: {last})\n"
            f"command: {' '.join(self.args)}\n"
            f"--- stderr (tail) ---\n{self.stderr_tail()}")

    def kill(self) -> None:
        """SIGKILL the process (no chance to flush) and reap it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.exited_at = time.time()

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
            self.exited_at = time.time()
        return self.proc.returncode

    # -- diagnostics -----------------------------------------------------
    @staticmethod
    def _tail(path: pathlib.Path | None, lines: int) -> str:
        if path is None or not path.exists():
            return "<no log>"
        data = path.read_bytes()
        text = data.decode("utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:]) if text else "<empty>"

    def stderr_tail(self, lines: int = 80) -> str:
        return self._tail(self.stderr_path, lines)

    def stdout_tail(self, lines: int = 40) -> str:
        return self._tail(self.stdout_path, lines)

    def rss_bytes(self) -> int:
        return _proc_status_kb(self.pid, "VmRSS") * 1024

    def peak_rss_bytes(self) -> int:
        return _proc_status_kb(self.pid, "VmHWM") * 1024


def _proc_status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


# --------------------------------------------------------------------------
# OTLP builders
# --------------------------------------------------------------------------

def _any_value(v) -> common_pb2.AnyValue:
    if isinstance(v, bool):
        return common_pb2.AnyValue(bool_value=v)
    if isinstance(v, int):
        return common_pb2.AnyValue(int_value=v)
    if isinstance(v, float):
        return common_pb2.AnyValue(double_value=v)
    return common_pb2.AnyValue(string_value=str(v))


def kv_list(attrs: dict | None) -> list[common_pb2.KeyValue]:
    return [common_pb2.KeyValue(key=k, value=_any_value(v)) for k, v in (attrs or {}).items()]


def pb_span(trace_id: bytes, span_id: bytes, name: str, *, parent: bytes = b"",
            start_ns: int, duration_ns: int, attrs: dict | None = None,
            kind: int = trace_pb2.Span.SPAN_KIND_INTERNAL) -> trace_pb2.Span:
    return trace_pb2.Span(
        trace_id=trace_id, span_id=span_id, parent_span_id=parent, name=name,
        kind=kind, start_time_unix_nano=start_ns,
        end_time_unix_nano=start_ns + duration_ns, attributes=kv_list(attrs))


def pb_request(service: str, spans: list[trace_pb2.Span],
               scope: str = "waymark-system-tests") -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(resource_spans=[
        trace_pb2.ResourceSpans(
            resource=resource_pb2.Resource(attributes=kv_list({"service.name": service})),
            scope_spans=[trace_pb2.ScopeSpans(
                scope=common_pb2.InstrumentationScope(name=scope), spans=spans)],
        )
    ])


def json_span(trace_id_hex: str, span_id_hex: str, name: str, *, parent_hex: str = "",
              start_ns: int, duration_ns: int, attrs: dict | None = None,
              kind: int = 1) -> dict:
    span = {
        "traceId": trace_id_hex,
        "spanId": span_id_hex,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + duration_ns),
        "attributes": [
            {"key": k, "value": ({"intValue": str(v)} if isinstance(v, int) and not isinstance(v, bool)
                                 else {"boolValue": v} if isinstance(v, bool)
                                 else {"stringValue": str(v)})}
            for k, v in (attrs or {}).items()
        ],
    }
    if parent_hex:
        span["parentSpanId"] = parent_hex
    return span


def json_request(service: str, spans: list[dict]) -> dict:
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "waymark-system-tests"}, "spans": spans}],
    }]}


def post_protobuf(session: requests.Session, server: WaymarkServer,
                  req: ExportTraceServiceRequest, timeout: float = 10) -> requests.Response:
    return session.post(server.otlp_http_url + "/v1/traces", data=req.SerializeToString(),
                        headers={"Content-Type": "application/x-protobuf"}, timeout=timeout)


def parse_export_response(resp: requests.Response) -> tuple[int, str]:
    """(rejected_spans, error_message) of a 200 OTLP/HTTP response, either encoding."""
    ctype = resp.headers.get("Content-Type", "")
    if "json" in ctype:
        body = resp.json() if resp.content else {}
        ps = body.get("partialSuccess") or {}
        return int(ps.get("rejectedSpans", 0) or 0), ps.get("errorMessage", "") or ""
    msg = ExportTraceServiceResponse.FromString(resp.content)
    return msg.partial_success.rejected_spans, msg.partial_success.error_message


# --------------------------------------------------------------------------
# Query API
# --------------------------------------------------------------------------

def get_trace(session: requests.Session, server: WaymarkServer, trace_id_hex: str,
              timeout: float = 10) -> requests.Response:
    return session.get(f"{server.query_url}/api/traces/{trace_id_hex}", timeout=timeout)


def jaeger_span_ids(body: dict) -> list[int]:
    """Span ids (as ints) of every span in every trace of a Jaeger JSON body."""
    out = []
    for trace in body.get("data") or []:
        for span in trace.get("spans") or []:
            out.append(int(span["spanID"], 16))
    return out


def wait_for_spans(session: requests.Session, server: WaymarkServer, trace_id_hex: str,
                   span_ids: set[int], timeout: float = 3.0) -> tuple[int, dict | str, set[int]]:
    """Poll the trace until it contains span_ids (or timeout).
    Returns (last status, last body, ids found)."""
    deadline = time.monotonic() + timeout
    while True:
        r = get_trace(session, server, trace_id_hex)
        try:
            body = r.json()
        except ValueError:
            body = r.text
        found = set(jaeger_span_ids(body)) if r.status_code == 200 and isinstance(body, dict) else set()
        if span_ids <= found or time.monotonic() >= deadline:
            return r.status_code, body, found
        time.sleep(0.1)


# --------------------------------------------------------------------------
# Acknowledged spans, and checking them later
# --------------------------------------------------------------------------

class Ledger:
    """Acknowledged spans: trace id hex -> {span id int}; plus per-cycle counts."""

    def __init__(self):
        self.lock = threading.Lock()
        self.traces: dict[str, set[int]] = {}
        self.spans_total = 0

    def add(self, spans_by_trace: dict[str, list[int]]) -> int:
        n = 0
        with self.lock:
            for tid, ids in spans_by_trace.items():
                self.traces.setdefault(tid, set()).update(ids)
                n += len(ids)
            self.spans_total += n
        return n


def verify_acknowledged(query_url: str, ledger: "Ledger"):
    """Reads every acknowledged trace from the query API at `query_url`.
    Returns (verified span count, missing {trace: (status, missing ids)}, duplicate count)."""
    with ledger.lock:
        expected = {t: set(ids) for t, ids in ledger.traces.items()}
    local = threading.local()

    def check(item):
        tid, ids = item
        s = getattr(local, "s", None)
        if s is None:
            s = local.s = requests.Session()
        r = s.get(f"{query_url}/api/traces/{tid}", timeout=30)
        if r.status_code != 200:
            return tid, ids, r.status_code, r.text[:200], 0
        body = r.json()
        got_list = jaeger_span_ids(body)
        got = set(got_list)
        trace_ids = {int(t.get("traceID", "0"), 16) for t in body.get("data") or []}
        note = "" if trace_ids == {int(tid, 16)} else f"traceIDs in body: {sorted(map(hex, trace_ids))}"
        return tid, ids - got, 200, note, len(got_list) - len(got)

    verified, dups, missing = 0, 0, {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for tid, miss, status, note, dup in pool.map(check, expected.items()):
            dups += dup
            verified += len(expected[tid]) - len(miss)
            if miss or note:
                missing[tid] = (status, note, sorted(miss))
    return verified, missing, dups


# --------------------------------------------------------------------------
# Any waymark subcommand as a process (agent, collector, ...)
# --------------------------------------------------------------------------

def _head_and_tail(path, n=1500) -> str:
    """A log's start and end: a backtrace can push the error out of the tail."""
    text = open(path, errors="replace").read()
    return text if len(text) <= 2 * n else f"{text[:n]}\n[...]\n{text[-n:]}"


class Proc:
    """`waymark <args>` with stderr appended to `log`; start() waits for the
    admin port's /ready."""

    def __init__(self, args, log):
        self.args, self.log, self.p = args, log, None

    def start(self, admin_port, timeout=30):
        self.p = subprocess.Popen([str(binary_path()), *self.args], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"),
                                  start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.p.poll() is None, _head_and_tail(self.log)
            try:
                if requests.get(f"http://127.0.0.1:{admin_port}/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError("not ready: " + open(self.log).read()[-3000:])

    def alive(self) -> bool:
        return self.p is not None and self.p.poll() is None

    def stop(self, sig=signal.SIGTERM):
        if self.alive():
            self.p.send_signal(sig)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
