"""Crash safety: every span acknowledged over OTLP/HTTP survives SIGKILL.

Each cycle: several sender threads POST protobuf ExportTraceServiceRequests to
/v1/traces; an HTTP 200 (with no rejected spans) is an acknowledgement and the
batch's span ids are recorded. After a random (seeded) delay the server gets
SIGKILL, is restarted on the same data dir, and every span acknowledged so far
(this cycle and all earlier ones) must be returned by GET /api/traces/{id}.

Env: WAYMARK_CRASH_CYCLES (default 5), WAYMARK_CRASH_SEED (default random),
WAYMARK_CRASH_THREADS (default 4). Run with -s to see the per-cycle lines.
"""

from __future__ import annotations

import os
import random
import threading
import time

import requests

from waymark_sys import (ExportTraceServiceResponse, Ledger, WaymarkServer, pb_request,
                         pb_span, verify_acknowledged)

CYCLES = int(os.environ.get("WAYMARK_CRASH_CYCLES", "5"))
THREADS = int(os.environ.get("WAYMARK_CRASH_THREADS", "4"))
KILL_DELAY_MS = (150, 2500)
SPANS_PER_NEW_TRACE = 20
SPANS_PER_APPEND = 5
APPENDS_PER_LONG_TRACE = 25
PAYLOAD = "x" * 256


class Sender(threading.Thread):
    def __init__(self, url: str, seed: str, stop: threading.Event, ledger: Ledger, service: str):
        super().__init__(daemon=True)
        self.url = url
        self.rng = random.Random(seed)
        self.stop = stop
        self.ledger = ledger
        self.service = service
        self.acked_spans = 0
        self.acked_requests = 0
        self.failed_requests = 0          # transport errors (expected around the kill)
        self.unexpected: list[str] = []   # HTTP non-200 (other than 429/503) or rejected spans
        self.long_trace = None
        self.long_trace_left = 0

    def _tid(self) -> bytes:
        # high 64 bits non-zero so Jaeger's hex form is always 32 chars
        return (self.rng.getrandbits(128) | (1 << 127)).to_bytes(16, "big")

    def _sid(self) -> bytes:
        return (self.rng.getrandbits(64) | 1).to_bytes(8, "big")

    def _batch(self):
        now = time.time_ns()
        spans = []
        tid = self._tid()
        root = self._sid()
        spans.append(pb_span(tid, root, "root", start_ns=now, duration_ns=5_000_000,
                             attrs={"payload": PAYLOAD, "i": 0}))
        for i in range(1, SPANS_PER_NEW_TRACE):
            spans.append(pb_span(tid, self._sid(), f"child-{i}", parent=root,
                                 start_ns=now + i * 1000, duration_ns=1_000_000,
                                 attrs={"payload": PAYLOAD, "i": i}))
        # a trace that keeps growing across many requests (and across kills)
        if self.long_trace_left == 0:
            self.long_trace = (self._tid(), self._sid())
            self.long_trace_left = APPENDS_PER_LONG_TRACE
        self.long_trace_left -= 1
        ltid, lroot = self.long_trace
        for i in range(SPANS_PER_APPEND):
            spans.append(pb_span(ltid, self._sid(), f"append-{i}", parent=lroot,
                                 start_ns=now + i, duration_ns=2_000, attrs={"payload": PAYLOAD}))
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
                r = session.post(self.url, data=body, headers=headers, timeout=10)
            except requests.RequestException:
                self.failed_requests += 1
                session.close()
                session = requests.Session()
                time.sleep(0.01)
                continue
            if r.status_code != 200:
                if r.status_code not in (429, 503):
                    self.unexpected.append(f"HTTP {r.status_code}: {r.text[:200]!r}")
                continue
            try:
                if "json" in r.headers.get("Content-Type", ""):
                    rejected = int(((r.json() or {}).get("partialSuccess") or {}).get("rejectedSpans", 0) or 0)
                else:
                    rejected = ExportTraceServiceResponse.FromString(r.content).partial_success.rejected_spans
            except Exception as e:  # noqa: BLE001 - report any undecodable ack
                self.unexpected.append(f"undecodable 200 response ({e}): {r.content[:100]!r}")
                continue
            if rejected:
                self.unexpected.append(f"200 with rejectedSpans={rejected} for valid spans")
                continue
            self.acked_spans += self.ledger.add(by_trace)
            self.acked_requests += 1


def test_acknowledged_spans_survive_sigkill(make_server, tmp_path):
    seed = int(os.environ.get("WAYMARK_CRASH_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    print(f"\n[crash] seed={seed} cycles={CYCLES} threads={THREADS} "
          f"(reproduce with WAYMARK_CRASH_SEED={seed})", flush=True)

    server = make_server(data_dir=tmp_path / "data")
    ready_s = server.start()
    print(f"[crash] initial start ready in {ready_s * 1000:.0f} ms", flush=True)
    ledger = Ledger()
    history = []

    for cycle in range(1, CYCLES + 1):
        t_cycle = time.monotonic()
        delay_ms = rng.uniform(*KILL_DELAY_MS)
        stop = threading.Event()
        senders = [Sender(server.otlp_http_url + "/v1/traces", f"{seed}-{cycle}-{i}", stop, ledger,
                          f"crash-svc-{i}") for i in range(THREADS)]
        t0 = time.monotonic()
        for s in senders:
            s.start()
        time.sleep(delay_ms / 1000)
        server.kill()
        killed_ms = (time.monotonic() - t0) * 1000
        stop.set()
        for s in senders:
            s.join(timeout=30)
            assert not s.is_alive(), "sender thread did not stop"

        acked = sum(s.acked_spans for s in senders)
        acked_reqs = sum(s.acked_requests for s in senders)
        failed = sum(s.failed_requests for s in senders)
        unexpected = [u for s in senders for u in s.unexpected]

        ready_s = server.start()
        verified, missing, dups = verify_acknowledged(server.query_url, ledger)
        took = time.monotonic() - t_cycle
        line = (f"[crash] cycle {cycle}/{CYCLES}: acknowledged {acked} spans in {acked_reqs} requests, "
                f"killed after {killed_ms:.0f} ms (planned {delay_ms:.0f}), {failed} transport errors, "
                f"restart ready in {ready_s * 1000:.0f} ms, verified {verified}/{ledger.spans_total} "
                f"acknowledged spans in {len(ledger.traces)} traces"
                f"{f', {dups} duplicate spans' if dups else ''}, cycle took {took:.1f} s")
        print(line, flush=True)
        history.append(line)

        assert not unexpected, (
            f"cycle {cycle}: unexpected responses while the server was up "
            f"({len(unexpected)}), first: {unexpected[:5]}")
        if missing:
            lost = sum(len(m[2]) for m in missing.values())
            sample = list(missing.items())[:10]
            detail = "\n".join(
                f"  trace {tid}: HTTP {st} {note} missing {len(ids)} span(s), e.g. "
                f"{[format(i, '016x') for i in ids[:5]]}"
                for tid, (st, note, ids) in sample)
            raise AssertionError(
                f"cycle {cycle} (seed {seed}): {lost} acknowledged span(s) lost in "
                f"{len(missing)} trace(s) after SIGKILL + restart\n{detail}\n"
                f"history:\n" + "\n".join(history))

    assert ledger.spans_total > 0, "no span was ever acknowledged; the test proved nothing"
