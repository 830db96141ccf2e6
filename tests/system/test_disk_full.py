"""A full disk, on a real small file system (a tmpfs the test mounts).

Senders POST OTLP/HTTP protobuf batches while the test fills the disk with a
file of its own, as another tenant of the disk would. While the disk is full
the server must stay up, refuse with 503 and a reason, report it on /ready
and /metrics, and serve every acknowledged trace. Once the file is deleted it
must accept writes again within seconds, without a restart; and after a
SIGKILL and a restart every acknowledged span must be there. The same runs
through `waymark agent` with its queue on the small disk.

Needs permission to mount a tmpfs (root, as in CI); skipped otherwise, with
the reason.
"""

from __future__ import annotations

import collections
import errno
import os
import pathlib
import random
import signal
import subprocess
import threading
import time

import pytest
import requests

from waymark_sys import (ExportTraceServiceResponse, Ledger, Proc, free_ports, pb_request, pb_span,
                         verify_acknowledged)

MiB = 1 << 20
DISK_MIB = 64
TRACES_PER_REQUEST = 5
SPANS_PER_TRACE = 10
PAYLOAD = "p" * 300
# Writes must be accepted again this soon after there is room.
RECOVERY_S = 15


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MIB}m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the disk-full test: {r.stderr.strip() or r.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(path: pathlib.Path) -> int:
    """Writes `path` until the file system is full; returns the bytes written."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        for chunk in (MiB, 64 << 10, 4096, 512):
            block = b"\0" * chunk
            while True:
                try:
                    n = f.write(block)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
                written += n or 0
                if not n:
                    break
    return written


def fill_leaving(path: pathlib.Path, mnt: pathlib.Path, leave: int) -> int:
    """Grows `path` until the file system has about `leave` bytes free."""
    st = os.statvfs(mnt)
    want = st.f_bavail * st.f_frsize - leave
    with open(path, "ab") as f:
        f.write(b"\0" * max(want, 0))
        f.flush()
        os.fsync(f.fileno())
    return max(want, 0)


class Sender(threading.Thread):
    """Sends batches of TRACES_PER_REQUEST new traces until stopped; records
    what was acknowledged in the ledger and every refusal."""

    def __init__(self, url: str, seed: int, stop: threading.Event, ledger: Ledger, service: str):
        super().__init__(daemon=True)
        self.url, self.stop, self.ledger, self.service = url, stop, ledger, service
        self.rng = random.Random(seed)
        self.statuses: collections.Counter = collections.Counter()
        self.refusals: list[str] = []
        self.unexpected: list[str] = []
        self.last_ok = 0.0

    def _batch(self):
        now = time.time_ns()
        spans = []
        for _ in range(TRACES_PER_REQUEST):
            tid = (self.rng.getrandbits(128) | (1 << 127)).to_bytes(16, "big")
            root = (self.rng.getrandbits(64) | 1).to_bytes(8, "big")
            spans.append(pb_span(tid, root, "checkout", start_ns=now, duration_ns=4_000_000,
                                 attrs={"payload": PAYLOAD}))
            for i in range(1, SPANS_PER_TRACE):
                sid = (self.rng.getrandbits(64) | 1).to_bytes(8, "big")
                spans.append(pb_span(tid, sid, f"step-{i}", parent=root, start_ns=now + i * 1000,
                                     duration_ns=1_000_000, attrs={"payload": PAYLOAD, "i": i}))
        by_trace: dict[str, list[int]] = {}
        for s in spans:
            by_trace.setdefault(s.trace_id.hex(), []).append(int.from_bytes(s.span_id, "big"))
        return pb_request(self.service, spans).SerializeToString(), by_trace

    def run(self):
        session = requests.Session()
        headers = {"Content-Type": "application/x-protobuf"}
        while not self.stop.is_set():
            body, by_trace = self._batch()
            try:
                r = session.post(self.url, data=body, headers=headers, timeout=30)
            except requests.RequestException as e:
                self.unexpected.append(f"transport error: {e}")
                time.sleep(0.05)
                continue
            self.statuses[r.status_code] += 1
            if r.status_code == 200:
                rejected = ExportTraceServiceResponse.FromString(r.content).partial_success.rejected_spans
                if rejected:
                    self.unexpected.append(f"200 with rejectedSpans={rejected}")
                    continue
                self.ledger.add(by_trace)
                self.last_ok = time.monotonic()
            elif r.status_code == 503:
                self.refusals.append(r.text)
                time.sleep(0.02)
            else:
                self.unexpected.append(f"HTTP {r.status_code}: {r.text[:200]!r}")
            time.sleep(0.005)


class Load:
    def __init__(self, url: str, threads: int = 3, seed: int = 1):
        self.ledger = Ledger()
        self.stop = threading.Event()
        self.senders = [Sender(url, seed * 100 + i, self.stop, self.ledger, f"disk-full-{i}")
                        for i in range(threads)]

    def __enter__(self):
        for s in self.senders:
            s.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for s in self.senders:
            s.join(timeout=60)

    def count(self, status: int) -> int:
        return sum(s.statuses[status] for s in self.senders)

    def refusals(self) -> list[str]:
        return [r for s in self.senders for r in s.refusals]

    def unexpected(self) -> list[str]:
        return [u for s in self.senders for u in s.unexpected]

    def wait(self, what, cond, timeout: float):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}: statuses "
                                     f"{dict(sum((s.statuses for s in self.senders), collections.Counter()))}")
            time.sleep(0.05)

    def accepted_after(self, t: float) -> bool:
        return any(s.last_ok > t for s in self.senders)


def _metric(admin_url: str, name: str) -> float | None:
    for line in requests.get(f"{admin_url}/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def _check_all(query_url: str, ledger: Ledger, what: str):
    verified, missing, dups = verify_acknowledged(query_url, ledger)
    lost = sum(len(m[2]) for m in missing.values())
    assert not missing, (f"{what}: {lost} acknowledged spans missing in {len(missing)} traces, e.g. "
                         f"{list(missing.items())[:3]}")
    assert dups == 0, f"{what}: {dups} duplicate spans"
    return verified


@pytest.mark.parametrize("fsync,watermark", [
    ("batch", False), ("always", False), ("batch", True)],
    ids=["batch-enospc", "always-enospc", "batch-watermark"])
def test_full_disk_under_ingest(make_server, small_disk, fsync, watermark):
    wm_args = [] if watermark else ["--storage-min-free-bytes", "0", "--storage-min-free-percent", "0"]
    server = make_server(data_dir=small_disk / "data", extra_args=["--fsync", fsync, *wm_args])
    server.start()
    filler = small_disk / "filler"
    with Load(server.otlp_http_url + "/v1/traces") as load:
        load.wait("acknowledged writes", lambda: load.count(200) >= 30, 30)
        acked_before = load.count(200)
        # The disk fills up (to the last byte, or to below the watermark).
        if watermark:
            fill_leaving(filler, small_disk, 4 * MiB)
        else:
            fill(filler)
        refused_at_start = load.count(503)
        load.wait("refusals", lambda: load.count(503) >= refused_at_start + 20, 30)
        assert server.alive(), server.stderr_tail()
        # /ready says why; /metrics shows the free space.
        ready = requests.get(f"{server.admin_url}/ready", timeout=5)
        free = _metric(server.admin_url, "waymark_storage_free_bytes")
        assert free is not None and free < 16 * MiB, free
        # Reads keep working: every trace acknowledged so far is whole.
        checked_full = _check_all(server.query_url, load.ledger, "while full")
        refusals = load.refusals()
        assert refusals, "no 503"
        reason = refusals[-1]
        if watermark:
            assert "disk almost full" in reason and "--storage-min-free" in reason, reason
        else:
            assert "wal" in reason and ("space" in reason or "segment" in reason), reason
        full_ready = (ready.status_code, ready.text.strip())

        # Room again: accepted within seconds, no restart.
        filler.unlink()
        t_room = time.monotonic()
        load.wait("writes accepted after room was made",
                  lambda: load.accepted_after(t_room), RECOVERY_S)
        recovered_s = time.monotonic() - t_room
        time.sleep(1.5)
    assert not load.unexpected(), load.unexpected()[:5]
    acked, refused = load.count(200), load.count(503)
    ready_after = requests.get(f"{server.admin_url}/ready", timeout=5)
    assert ready_after.status_code == 200, ready_after.text
    assert (_metric(server.admin_url, "waymark_storage_refused_writes_total") or 0) >= 1
    assert _metric(server.admin_url, "waymark_storage_refusing_writes") == 0

    server.kill()
    server.start()
    verified = _check_all(server.query_url, load.ledger, "after SIGKILL and restart")
    print(f"\n[disk-full {fsync}{' watermark' if watermark else ''}] {acked} requests acknowledged "
          f"({acked_before} before the disk filled), {refused} refused with 503 "
          f"(last reason: {reason[:160]!r}); /ready while full: {full_ready[0]} {full_ready[1][:160]!r}; "
          f"{checked_full} spans read back while full; writes accepted {recovered_s:.2f} s after room "
          f"was made; after SIGKILL + restart {verified} acknowledged spans in "
          f"{len(load.ledger.traces)} traces all present", flush=True)
    if not watermark:
        # A full disk is a refusal, never readiness lost silently.
        assert full_ready[0] in (200, 503)
    else:
        assert full_ready[0] == 503 and "disk almost full" in full_ready[1], full_ready


def _off(*flags):
    out = []
    for f in flags:
        out += [f, "127.0.0.1:0"]
    return out


def test_full_queue_disk_through_the_agent(tmp_path, small_disk):
    c_grpc, c_http, c_query, c_admin = free_ports(4)
    a_grpc, a_http, a_admin = free_ports(3)
    others = ["--zipkin-listen", "--jaeger-compact-listen", "--jaeger-binary-listen",
              "--jaeger-http-listen", "--sampling-listen", "--jaeger-grpc-listen"]
    collector = Proc(["all-in-one", "--data-dir", str(tmp_path / "collector"),
                      "--otlp-grpc-listen", f"127.0.0.1:{c_grpc}", "--otlp-http-listen", f"127.0.0.1:{c_http}",
                      "--query-listen", f"127.0.0.1:{c_query}", "--admin-listen", f"127.0.0.1:{c_admin}",
                      "--query-grpc-listen", "127.0.0.1:0", *_off(*others)], tmp_path / "collector.log")
    agent_args = ["agent", "--data-dir", str(small_disk / "agent"), "--collector", f"127.0.0.1:{c_grpc}",
                  "--otlp-grpc-listen", f"127.0.0.1:{a_grpc}", "--otlp-http-listen", f"127.0.0.1:{a_http}",
                  "--admin-listen", f"127.0.0.1:{a_admin}",
                  "--storage-min-free-bytes", "0", "--storage-min-free-percent", "0", *_off(*others)]
    agent = Proc(agent_args, tmp_path / "agent.log")
    filler = small_disk / "filler"
    try:
        collector.start(c_admin)
        agent.start(a_admin)
        with Load(f"http://127.0.0.1:{a_http}/v1/traces", seed=2) as load:
            load.wait("acknowledged writes", lambda: load.count(200) >= 30, 30)
            fill(filler)
            refused_at_start = load.count(503)
            load.wait("refusals", lambda: load.count(503) >= refused_at_start + 20, 30)
            assert agent.alive(), open(tmp_path / "agent.log").read()[-3000:]
            reason = load.refusals()[-1]
            assert "queue" in reason, reason
            filler.unlink()
            t_room = time.monotonic()
            load.wait("writes accepted after room was made", lambda: load.accepted_after(t_room), RECOVERY_S)
            recovered_s = time.monotonic() - t_room
            time.sleep(1.5)
        assert not load.unexpected(), load.unexpected()[:5]
        agent.stop(signal.SIGKILL)
        agent.start(a_admin)
        # Every span the agent acknowledged reaches the collector.
        deadline = time.monotonic() + 60
        while True:
            verified, missing, _ = verify_acknowledged(f"http://127.0.0.1:{c_query}", load.ledger)
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert not missing, f"{len(missing)} acknowledged traces never reached the collector"
        print(f"\n[disk-full agent] {load.count(200)} requests acknowledged, {load.count(503)} refused "
              f"(last reason: {reason[:160]!r}); accepted again {recovered_s:.2f} s after room was made; "
              f"after SIGKILL + restart {verified} acknowledged spans all delivered", flush=True)
    finally:
        agent.stop()
        collector.stop()
