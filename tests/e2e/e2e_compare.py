"""Expected renderings of what a client sent, and field-by-field comparisons.

A client document (see clients/py_common.py) lists every span exactly as it
went over the wire.  From it this module derives what the Jaeger-compatible
query API (``/api/traces``) and the api_v3 OTLP JSON (``/api/v3/traces``) must
return, and compares the server's answer against it, collecting *every*
difference (with the span and field it concerns) before failing.
"""

from __future__ import annotations

import json

JS_SAFE_INT = 2**53  # Jaeger JSON renders int64 tags outside +-2^53 as strings

SPAN_KIND_JAEGER = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
STATUS_JAEGER = {1: "OK", 2: "ERROR"}


class Mismatches:
    """Collects differences; ``raise_if_any`` fails with all of them at once."""

    def __init__(self, what: str):
        self.what = what
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")

    def expect_eq(self, where: str, actual, expected) -> bool:
        if not same_json(actual, expected):
            self.add(where, f"expected {expected!r}, got {actual!r}")
            return False
        return True

    def raise_if_any(self) -> None:
        __tracebackhide__ = True
        if self.items:
            shown = self.items[:80]
            more = len(self.items) - len(shown)
            text = "\n  - ".join(shown)
            extra = f"\n  ... and {more} more" if more > 0 else ""
            raise AssertionError(
                f"{self.what}: {len(self.items)} mismatch(es):\n  - {text}{extra}"
            )


def same_json(a, b) -> bool:
    """Equality of decoded JSON values that does not confuse bool with int
    (True == 1 in Python) nor a string with a number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def span_label(span: dict) -> str:
    return f"span {span['span_id']} {span['name']!r}"


# ---------------------------------------------------------------------------
# typed attribute (client document) -> plain value / JSON text / OTLP JSON
# ---------------------------------------------------------------------------

def plain_value(attr: dict):
    """The attribute as a plain JSON value (what Jaeger puts inside the JSON
    string it renders for arrays and maps)."""
    t, v = attr["type"], attr["value"]
    if t == "array":
        return [plain_value(x) for x in v]
    if t == "kvlist":
        return {kv["key"]: plain_value(kv) for kv in v}
    return v


def compact_json(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def jaeger_tag(attr: dict) -> dict:
    """Jaeger JSON tag for one OTLP attribute (contract in the task brief)."""
    t, v = attr["type"], attr["value"]
    if t == "string":
        return {"key": attr["key"], "type": "string", "value": v}
    if t == "bool":
        return {"key": attr["key"], "type": "bool", "value": v}
    if t == "int":
        return {"key": attr["key"], "type": "int64",
                "value": v if -JS_SAFE_INT <= v <= JS_SAFE_INT else str(v)}
    if t == "double":
        return {"key": attr["key"], "type": "float64", "value": v}
    if t == "bytes":
        return {"key": attr["key"], "type": "binary", "value": v}
    if t in ("array", "kvlist"):
        return {"key": attr["key"], "type": "string", "value": compact_json(plain_value(attr))}
    raise ValueError(f"unknown attribute type {t!r}")


def otlp_json_value(attr: dict) -> dict:
    """api_v3 (OTLP/JSON) AnyValue for one attribute."""
    t, v = attr["type"], attr["value"]
    if t == "string":
        return {"stringValue": v}
    if t == "bool":
        return {"boolValue": v}
    if t == "int":
        return {"intValue": str(v)}
    if t == "double":
        return {"doubleValue": v}
    if t == "bytes":
        return {"bytesValue": v}
    if t == "array":
        return {"arrayValue": {"values": [otlp_json_value(x) for x in v]}}
    if t == "kvlist":
        return {"kvlistValue": {"values": [{"key": kv["key"], "value": otlp_json_value(kv)}
                                           for kv in v]}}
    raise ValueError(f"unknown attribute type {t!r}")


# ---------------------------------------------------------------------------
# Jaeger JSON (/api/traces)
# ---------------------------------------------------------------------------

def expected_jaeger_tags(span: dict) -> list[dict]:
    tags = [jaeger_tag(a) for a in span["attributes"]]
    if span["scope"]["name"]:
        tags.append({"key": "otel.scope.name", "type": "string", "value": span["scope"]["name"]})
    if span["scope"]["version"]:
        tags.append({"key": "otel.scope.version", "type": "string",
                     "value": span["scope"]["version"]})
    if span["kind"] in SPAN_KIND_JAEGER:
        tags.append({"key": "span.kind", "type": "string", "value": SPAN_KIND_JAEGER[span["kind"]]})
    code = span["status"]["code"]
    if code in STATUS_JAEGER:
        tags.append({"key": "otel.status_code", "type": "string", "value": STATUS_JAEGER[code]})
    if span["status"]["message"]:
        tags.append({"key": "otel.status_description", "type": "string",
                     "value": span["status"]["message"]})
    if code == 2:
        tags.append({"key": "error", "type": "bool", "value": True})
    if span["trace_state"]:
        tags.append({"key": "w3c.tracestate", "type": "string", "value": span["trace_state"]})
    return tags


def expected_jaeger_span(span: dict) -> dict:
    refs = []
    if span["parent_span_id"]:
        refs.append({"refType": "CHILD_OF", "traceID": span["trace_id"],
                     "spanID": span["parent_span_id"]})
    for link in span["links"]:
        refs.append({"refType": "FOLLOWS_FROM", "traceID": link["trace_id"],
                     "spanID": link["span_id"]})
    service = ""
    process_tags = []
    for a in span["resource"]:
        if a["key"] == "service.name":
            service = a["value"]
        else:
            process_tags.append(jaeger_tag(a))
    return {
        "traceID": span["trace_id"],
        "spanID": span["span_id"],
        "operationName": span["name"],
        "references": refs,
        "startTime": span["start_ns"] // 1000,
        "duration": (span["end_ns"] - span["start_ns"]) // 1000,
        "tags": expected_jaeger_tags(span),
        "logs": [
            {"timestamp": e["time_ns"] // 1000,
             "fields": [{"key": "event", "type": "string", "value": e["name"]}]
             + [jaeger_tag(a) for a in e["attributes"]]}
            for e in span["events"]
        ],
        "process": {"serviceName": service, "tags": process_tags},
    }


def compare_tag_lists(mm: Mismatches, where: str, actual, expected: list[dict]) -> None:
    """Tags are compared as a set keyed by tag key (order is not part of the
    contract); each tag must have exactly key/type/value with the right JSON type."""
    if not isinstance(actual, list):
        mm.add(where, f"expected a list of tags, got {actual!r}")
        return
    by_key: dict[str, dict] = {}
    for i, tag in enumerate(actual):
        if not isinstance(tag, dict) or "key" not in tag:
            mm.add(f"{where}[{i}]", f"malformed tag {tag!r}")
            continue
        if tag["key"] in by_key:
            mm.add(where, f"duplicate tag {tag['key']!r}: {by_key[tag['key']]!r} and {tag!r}")
        by_key[tag["key"]] = tag
    exp_by_key = {t["key"]: t for t in expected}
    for key, exp in exp_by_key.items():
        got = by_key.get(key)
        if got is None:
            mm.add(f"{where}[{key!r}]", f"missing; expected {exp!r}")
        elif not same_json(got, exp):
            mm.add(f"{where}[{key!r}]", f"expected {exp!r}, got {got!r}")
    for key in by_key.keys() - exp_by_key.keys():
        mm.add(f"{where}[{key!r}]", f"unexpected tag {by_key[key]!r}")


def compare_jaeger_trace(mm: Mismatches, trace: dict, trace_id: str, sent: list[dict]) -> None:
    """Compare one trace object of the Jaeger JSON envelope with the spans sent."""
    where = f"trace {trace_id}"
    if not isinstance(trace, dict):
        mm.add(where, f"expected a trace object, got {trace!r}")
        return
    sent_flags = {s["span_id"]: s.get("flags", 0) for s in sent}
    mm.expect_eq(f"{where}.traceID", trace.get("traceID"), trace_id)
    if "warnings" not in trace:
        mm.add(f"{where}.warnings", "key missing")
    elif trace["warnings"] not in (None, []):
        mm.add(f"{where}.warnings", f"expected null or [], got {trace['warnings']!r}")
    processes = trace.get("processes")
    if not isinstance(processes, dict):
        mm.add(f"{where}.processes", f"expected an object, got {processes!r}")
        processes = {}
    spans = trace.get("spans")
    if not isinstance(spans, list):
        mm.add(f"{where}.spans", f"expected a list, got {spans!r}")
        return

    by_id: dict[str, dict] = {}
    for s in spans:
        sid = s.get("spanID") if isinstance(s, dict) else None
        if sid in by_id:
            mm.add(f"{where}.spans", f"span {sid} returned twice")
        by_id[sid] = s
    sent_ids = {s["span_id"] for s in sent}
    for sid in by_id.keys() - sent_ids:
        mm.add(f"{where}.spans", f"unexpected span {sid!r} (not sent): {by_id[sid]!r}")

    for s in sent:
        sw = f"{where} {span_label(s)}"
        got = by_id.get(s["span_id"])
        if got is None:
            mm.add(sw, "missing from the response")
            continue
        exp = expected_jaeger_span(s)
        for field in ("traceID", "spanID", "operationName", "startTime", "duration"):
            mm.expect_eq(f"{sw}.{field}", got.get(field, "<missing>"), exp[field])
        for field in ("startTime", "duration"):
            if isinstance(got.get(field), float):
                mm.add(f"{sw}.{field}", f"must be an integer number of microseconds, got {got[field]!r}")

        refs = got.get("references")
        if not isinstance(refs, list):
            mm.add(f"{sw}.references", f"expected a list, got {refs!r}")
        else:
            key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
            if sorted(map(key, refs)) != sorted(map(key, exp["references"])):
                mm.add(f"{sw}.references", f"expected {exp['references']!r}, got {refs!r}")

        compare_tag_lists(mm, f"{sw}.tags", got.get("tags"), exp["tags"])

        logs = got.get("logs")
        if not isinstance(logs, list):
            mm.add(f"{sw}.logs", f"expected a list, got {logs!r}")
        else:
            if len(logs) != len(exp["logs"]):
                mm.add(f"{sw}.logs", f"expected {len(exp['logs'])} logs, got {len(logs)}: {logs!r}")
            for i, (gl, el) in enumerate(zip(logs, exp["logs"])):
                lw = f"{sw}.logs[{i}] ({el['fields'][0]['value']!r})"
                mm.expect_eq(f"{lw}.timestamp", gl.get("timestamp", "<missing>"), el["timestamp"])
                fields = gl.get("fields")
                if not isinstance(fields, list) or not fields:
                    mm.add(f"{lw}.fields", f"expected a non-empty list, got {fields!r}")
                    continue
                mm.expect_eq(f"{lw}.fields[0]", fields[0], el["fields"][0])
                compare_tag_lists(mm, f"{lw}.fields[1:]", fields[1:], el["fields"][1:])

        pid = got.get("processID")
        proc = processes.get(pid) if isinstance(pid, str) else None
        if proc is None:
            mm.add(f"{sw}.processID", f"{pid!r} is not a key of processes {sorted(processes)!r}")
        else:
            mm.expect_eq(f"{sw} process {pid}.serviceName", proc.get("serviceName"),
                         exp["process"]["serviceName"])
            compare_tag_lists(mm, f"{sw} process {pid}.tags", proc.get("tags"),
                              exp["process"]["tags"])

        if "warnings" not in got:
            mm.add(f"{sw}.warnings", "key missing")
        elif got["warnings"] not in (None, []):
            mm.add(f"{sw}.warnings", f"expected null or [], got {got['warnings']!r}")
        # Jaeger's flags are the W3C trace flags: the low 8 bits of OTLP's
        # span flags (which also carry "parent is remote" bits above them),
        # left out when zero.
        want_flags = sent_flags.get(got.get("spanID"), 0) & 0xFF
        if want_flags == 0:
            if got.get("flags", 0) != 0:
                mm.add(f"{sw}.flags", f"expected absent or 0, got {got['flags']!r}")
        elif got.get("flags") != want_flags:
            mm.add(f"{sw}.flags", f"expected {want_flags}, got {got.get('flags')!r}")

    referenced = {s.get("processID") for s in spans if isinstance(s, dict)}
    for pid in set(processes) - referenced:
        mm.add(f"{where}.processes[{pid!r}]", f"not referenced by any span: {processes[pid]!r}")


def check_envelope(mm: Mismatches, body, where: str, keys=("data", "total", "limit", "offset", "errors")):
    if not isinstance(body, dict):
        mm.add(where, f"expected a JSON object, got {body!r}")
        return False
    for k in keys:
        if k not in body:
            mm.add(f"{where}.{k}", "key missing")
    for k in ("total", "limit", "offset"):
        if k in keys and k in body and (isinstance(body[k], bool) or not isinstance(body[k], int)):
            mm.add(f"{where}.{k}", f"expected an integer, got {body[k]!r}")
    if "errors" in keys and body.get("errors") not in (None, []):
        mm.add(f"{where}.errors", f"expected null or [], got {body.get('errors')!r}")
    return True


# ---------------------------------------------------------------------------
# api_v3 OTLP JSON (/api/v3/traces)
# ---------------------------------------------------------------------------

def _proto_default(obj: dict, key: str, default):
    """proto3 JSON may omit a field holding its default value."""
    return obj.get(key, default) if isinstance(obj, dict) else default


def compare_otlp_value(mm: Mismatches, where: str, got, exp: dict) -> None:
    if not isinstance(got, dict) or len(got) != 1:
        mm.add(where, f"expected {exp!r}, got {got!r}")
        return
    (gk, gv), = got.items()
    (ek, ev), = exp.items()
    if gk != ek:
        mm.add(where, f"expected {exp!r}, got {got!r}")
    elif ek in ("arrayValue", "kvlistValue"):
        gvals = gv.get("values") if isinstance(gv, dict) else None
        if not isinstance(gvals, list) or len(gvals) != len(ev["values"]):
            mm.add(where, f"expected {exp!r}, got {got!r}")
            return
        for i, (g, e) in enumerate(zip(gvals, ev["values"])):
            if ek == "arrayValue":
                compare_otlp_value(mm, f"{where}[{i}]", g, e)
            else:
                mm.expect_eq(f"{where}[{i}].key", g.get("key") if isinstance(g, dict) else g, e["key"])
                compare_otlp_value(mm, f"{where}[{i}].value",
                                   g.get("value") if isinstance(g, dict) else None, e["value"])
    elif not same_json(gv, ev):
        mm.add(where, f"expected {exp!r}, got {got!r}")


def compare_otlp_attributes(mm: Mismatches, where: str, got, sent_attrs: list[dict]) -> None:
    got = [] if got is None else got
    if not isinstance(got, list):
        mm.add(where, f"expected a list, got {got!r}")
        return
    by_key = {}
    for kv in got:
        k = kv.get("key") if isinstance(kv, dict) else None
        if k in by_key:
            mm.add(where, f"duplicate attribute {k!r}")
        by_key[k] = kv
    exp_keys = {a["key"] for a in sent_attrs}
    for a in sent_attrs:
        kv = by_key.get(a["key"])
        if kv is None:
            mm.add(f"{where}[{a['key']!r}]", f"missing; expected {otlp_json_value(a)!r}")
        else:
            compare_otlp_value(mm, f"{where}[{a['key']!r}]", kv.get("value"), otlp_json_value(a))
    for k in by_key.keys() - exp_keys:
        mm.add(f"{where}[{k!r}]", f"unexpected attribute {by_key[k]!r}")


def compare_v3_trace(mm: Mismatches, body, trace_id: str, sent: list[dict]) -> None:
    where = f"api_v3 trace {trace_id}"
    result = body.get("result") if isinstance(body, dict) else None
    if not isinstance(result, dict):
        mm.add(where, f"expected {{'result': {{...}}}}, got {body!r}")
        return
    rss = result.get("resourceSpans")
    if not isinstance(rss, list):
        mm.add(f"{where}.result.resourceSpans", f"expected a list, got {rss!r}")
        return
    flat: dict[str, tuple] = {}
    for ri, rs in enumerate(rss):
        resource = _proto_default(rs, "resource", {})
        for si, ss in enumerate(_proto_default(rs, "scopeSpans", [])):
            scope = _proto_default(ss, "scope", {})
            for sp in _proto_default(ss, "spans", []):
                sid = sp.get("spanId")
                if sid in flat:
                    mm.add(where, f"span {sid} returned twice")
                flat[sid] = (resource, scope, sp, f"resourceSpans[{ri}].scopeSpans[{si}]")
    for sid in flat.keys() - {s["span_id"] for s in sent}:
        mm.add(where, f"unexpected span {sid!r} (not sent)")

    for s in sent:
        sw = f"{where} {span_label(s)}"
        if s["span_id"] not in flat:
            mm.add(sw, "missing from the response")
            continue
        resource, scope, sp, loc = flat[s["span_id"]]
        compare_otlp_attributes(mm, f"{sw} ({loc}).resource.attributes",
                                _proto_default(resource, "attributes", []), s["resource"])
        mm.expect_eq(f"{sw} ({loc}).scope.name", _proto_default(scope, "name", ""), s["scope"]["name"])
        mm.expect_eq(f"{sw} ({loc}).scope.version", _proto_default(scope, "version", ""),
                     s["scope"]["version"])

        mm.expect_eq(f"{sw}.traceId", sp.get("traceId"), s["trace_id"])
        mm.expect_eq(f"{sw}.spanId", sp.get("spanId"), s["span_id"])
        mm.expect_eq(f"{sw}.parentSpanId", _proto_default(sp, "parentSpanId", ""), s["parent_span_id"])
        mm.expect_eq(f"{sw}.traceState", _proto_default(sp, "traceState", ""), s["trace_state"])
        mm.expect_eq(f"{sw}.name", sp.get("name"), s["name"])
        mm.expect_eq(f"{sw}.kind", _proto_default(sp, "kind", 0), s["kind"])
        mm.expect_eq(f"{sw}.startTimeUnixNano", sp.get("startTimeUnixNano"), str(s["start_ns"]))
        mm.expect_eq(f"{sw}.endTimeUnixNano", sp.get("endTimeUnixNano"), str(s["end_ns"]))
        compare_otlp_attributes(mm, f"{sw}.attributes", _proto_default(sp, "attributes", []),
                                s["attributes"])

        events = _proto_default(sp, "events", [])
        if not isinstance(events, list) or len(events) != len(s["events"]):
            mm.add(f"{sw}.events", f"expected {len(s['events'])} events, got {events!r}")
        else:
            for i, (ge, ee) in enumerate(zip(events, s["events"])):
                ew = f"{sw}.events[{i}] ({ee['name']!r})"
                mm.expect_eq(f"{ew}.timeUnixNano", ge.get("timeUnixNano"), str(ee["time_ns"]))
                mm.expect_eq(f"{ew}.name", _proto_default(ge, "name", ""), ee["name"])
                compare_otlp_attributes(mm, f"{ew}.attributes",
                                        _proto_default(ge, "attributes", []), ee["attributes"])

        links = _proto_default(sp, "links", [])
        if not isinstance(links, list) or len(links) != len(s["links"]):
            mm.add(f"{sw}.links", f"expected {len(s['links'])} links, got {links!r}")
        else:
            for i, (gl, el) in enumerate(zip(links, s["links"])):
                lw = f"{sw}.links[{i}]"
                mm.expect_eq(f"{lw}.traceId", gl.get("traceId"), el["trace_id"])
                mm.expect_eq(f"{lw}.spanId", gl.get("spanId"), el["span_id"])
                mm.expect_eq(f"{lw}.traceState", _proto_default(gl, "traceState", ""), el["trace_state"])
                compare_otlp_attributes(mm, f"{lw}.attributes",
                                        _proto_default(gl, "attributes", []), el["attributes"])

        status = _proto_default(sp, "status", {})
        mm.expect_eq(f"{sw}.status.code", _proto_default(status, "code", 0), s["status"]["code"])
        mm.expect_eq(f"{sw}.status.message", _proto_default(status, "message", ""),
                     s["status"]["message"])
