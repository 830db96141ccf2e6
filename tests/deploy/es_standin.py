"""A stand-in Elasticsearch cluster for the deployment tests: a small HTTP
(or HTTPS) server answering the requests Waymark's Elasticsearch backend,
`waymark es-cleaner` and `waymark es-rollover` make, as Elasticsearch 8's
REST API documents them. It keeps indices with their aliases and creation
times, so the index jobs can be run against it and their effect checked.

Endpoints: GET / (version), PUT /_index_template/<name>, PUT /<index>,
POST /_bulk, POST /<indices>/_search (the services aggregation),
GET /_cat/indices/<pattern>, DELETE /<index>[,<index>...],
HEAD and GET /_alias/<alias>[,<alias>...], POST /<alias>/_rollover,
POST /_aliases, GET /<index>/_settings/index.creation_date, and the
lifecycle policies: PUT /_ilm/policy/<name> (Elasticsearch) and
PUT /_plugins/_ism/policies/<name> (OpenSearch), recorded.

Documents by id, as adaptive sampling keeps its state in
`<prefix>waymark-sampling`: PUT /<index>/_doc/<id> (with if_seq_no and
if_primary_term: 409 unless they are the document's), PUT
/<index>/_create/<id> (409 if it exists), GET /<index>/_doc/<id> (with
_seq_no and _primary_term; 404 {"found": false} when absent), POST
/<index>/_search with a bool of term and range clauses, sort and
search_after, and POST /<index>/_delete_by_query. Every document written is
also kept in `writes`, in order.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import pathlib
import re
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit


class StandInCluster:
    def __init__(self, port: int, *, username: str | None = None, password: str | None = None,
                 api_key: str | None = None, bearer_token: str | None = None,
                 tls: tuple[pathlib.Path, pathlib.Path] | None = None,
                 client_ca: pathlib.Path | None = None, distribution: str = "elasticsearch"):
        """tls: (certificate, key) to serve HTTPS; client_ca: then also ask
        every client for a certificate this CA signed (the handshake fails
        without one). distribution "opensearch" answers GET / as OpenSearch
        2 does."""
        self.port = port
        self.scheme = "https" if tls else "http"
        self.lock = threading.Lock()
        # index -> {"aliases": {alias: {"is_write_index": bool}}, "created": ms, "docs": n}
        self.indices: dict[str, dict] = {}
        self.templates: dict[str, dict] = {}
        self.docs: list[tuple[str, dict]] = []
        self.requests: list[tuple[str, str]] = []
        self.rollover_conditions_met = True
        self.distribution = distribution
        # Lifecycle policies put: name -> body (ILM on Elasticsearch, ISM on OpenSearch).
        self.ilm_policies: dict[str, dict] = {}
        self.ism_policies: dict[str, dict] = {}
        # Documents by id: index -> id -> {"source": ..., "seq_no": n}; the
        # sequence number counts writes per index, the primary term stays 1.
        self.by_id: dict[str, dict[str, dict]] = {}
        self.seq_no: dict[str, int] = {}
        self.writes: list[tuple[str, str, dict]] = []
        accepted = set()
        if username is not None:
            accepted.add("Basic " + base64.b64encode(f"{username}:{password or ''}".encode()).decode())
        if api_key is not None:
            accepted.add("ApiKey " + api_key)
        if bearer_token is not None:
            accepted.add("Bearer " + bearer_token)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _send(self, status: int, obj=None, head: bool = False) -> None:
                data = b"" if obj is None else json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if not head:
                    self.wfile.write(data)

            def _handle(self, method: str) -> None:
                body = self._body() if method in ("PUT", "POST", "DELETE") else b""
                url = urlsplit(self.path)
                path = unquote(url.path)
                with outer.lock:
                    outer.requests.append((method, self.path))
                if accepted and self.headers.get("Authorization") not in accepted:
                    return self._send(401, {"error": {"type": "security_exception",
                                                      "reason": "unable to authenticate user"},
                                            "status": 401}, head=method == "HEAD")
                with outer.lock:
                    status, obj = outer.answer(method, path, body, url.query)
                self._send(status, obj, head=method == "HEAD")

            def do_GET(self):
                self._handle("GET")

            def do_HEAD(self):
                self._handle("HEAD")

            def do_PUT(self):
                self._handle("PUT")

            def do_POST(self):
                self._handle("POST")

            def do_DELETE(self):
                self._handle("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]))
            if client_ca is not None:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(cafile=str(client_ca))
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ----------------------------------------------------------------------

    def add_index(self, name: str, *, created_ms: int | None = None, aliases: dict | None = None,
                  docs: int = 0) -> None:
        with self.lock:
            self.indices[name] = {"aliases": aliases or {},
                                  "created": created_ms if created_ms is not None else int(time.time() * 1000),
                                  "docs": docs}

    def holders(self, alias: str) -> list[str]:
        return sorted(i for i, v in self.indices.items() if alias in v["aliases"])

    def docs_of(self, index: str) -> dict[str, dict]:
        """The documents written by id into index: id -> source."""
        with self.lock:
            return {i: d["source"] for i, d in self.by_id.get(index, {}).items()}

    @staticmethod
    def _matches(doc: dict, query: dict) -> bool:
        """The query clauses adaptive sampling's state uses: match_all, and
        bool must/filter of term and range (gt, gte, lt, lte)."""
        if not query or "match_all" in query:
            return True
        if "bool" in query:
            b = query["bool"]
            return all(StandInCluster._matches(doc, q) for q in b.get("must", []) + b.get("filter", []))
        if "term" in query:
            (field, want), = query["term"].items()
            want = want.get("value") if isinstance(want, dict) else want
            return doc.get(field) == want
        if "range" in query:
            (field, bounds), = query["range"].items()
            v = doc.get(field)
            if v is None:
                return False
            ops = {"gt": v.__gt__, "gte": v.__ge__, "lt": v.__lt__, "lte": v.__le__}
            return all(ops[k](b) for k, b in bounds.items())
        raise AssertionError(f"stand-in: query not understood: {query}")

    def _by_id_answer(self, method: str, parts: list[str], body: bytes, params: dict):
        index, op = parts[0], parts[1]
        docs = self.by_id.setdefault(index, {})
        if op == "_search":
            q = json.loads(body or b"{}")
            hits = [(i, d["source"]) for i, d in docs.items() if self._matches(d["source"], q.get("query", {}))]
            keys = []
            for s in q.get("sort", []):
                (field, order), = s.items() if isinstance(s, dict) else ((s, "asc"),)
                order = order.get("order", "asc") if isinstance(order, dict) else order
                assert order == "asc", f"stand-in sorts ascending only: {s}"
                keys.append(field)

            def sort_values(hit):
                return [hit[0] if k == "_id" else hit[1].get(k) for k in keys]
            hits.sort(key=sort_values)
            if "search_after" in q:
                hits = [h for h in hits if sort_values(h) > q["search_after"]]
            hits = hits[:q.get("size", 10)]
            return 200, {"hits": {"total": {"value": len(hits)}, "hits": [
                dict({"_index": index, "_id": i, "_source": src}, **({"sort": sort_values((i, src))} if keys else {}))
                for i, src in hits]}}
        if op == "_delete_by_query":
            q = json.loads(body or b"{}")
            gone = [i for i, d in docs.items() if self._matches(d["source"], q.get("query", {}))]
            for i in gone:
                del docs[i]
            return 200, {"deleted": len(gone), "version_conflicts": 0, "failures": []}
        doc_id = parts[2]
        have = docs.get(doc_id)
        if method == "GET":
            if have is None:
                return 404, {"_index": index, "_id": doc_id, "found": False}
            return 200, {"_index": index, "_id": doc_id, "_seq_no": have["seq_no"], "_primary_term": 1,
                         "found": True, "_source": have["source"]}
        conflict = (409, {"error": {"type": "version_conflict_engine_exception",
                                    "reason": f"[{doc_id}]: version conflict"}, "status": 409})
        if op == "_create" and have is not None:
            return conflict
        if "if_seq_no" in params or "if_primary_term" in params:
            if have is None or str(have["seq_no"]) != params.get("if_seq_no") or \
                    params.get("if_primary_term") != "1":
                return conflict
        seq = self.seq_no[index] = self.seq_no.get(index, -1) + 1
        source = json.loads(body or b"{}")
        docs[doc_id] = {"source": source, "seq_no": seq}
        self.writes.append((index, doc_id, source))
        self.indices.setdefault(index, {"aliases": {}, "created": int(time.time() * 1000), "docs": 0})
        self.indices[index]["docs"] = len(docs)
        return (200 if have is not None else 201), {"_index": index, "_id": doc_id, "_seq_no": seq,
                                                    "_primary_term": 1,
                                                    "result": "updated" if have is not None else "created"}

    def answer(self, method: str, path: str, body: bytes, query: str = ""):
        not_found = (404, {"error": {"type": "index_not_found_exception", "reason": path}, "status": 404})
        parts = [p for p in path.split("/") if p]
        params = dict(parse_qsl(query))
        if len(parts) >= 2 and not parts[0].startswith("_") and (
                (len(parts) == 3 and method in ("GET", "PUT") and parts[1] in ("_doc", "_create"))
                or (len(parts) == 2 and method == "POST" and parts[1] == "_delete_by_query")
                or (len(parts) == 2 and parts[1] == "_search"
                    and (parts[0] in self.by_id or parts[0].endswith("waymark-sampling")))):
            return self._by_id_answer(method, parts, body, params)
        if method == "GET" and not parts:
            if self.distribution == "opensearch":
                return 200, {"name": "stand-in", "version": {"distribution": "opensearch", "number": "2.17.1"},
                             "tagline": "The OpenSearch Project: https://opensearch.org/"}
            return 200, {"name": "stand-in", "version": {"number": "8.15.2"},
                         "tagline": "You Know, for Search"}
        if method == "PUT" and len(parts) == 3 and parts[:2] == ["_ilm", "policy"]:
            if self.distribution == "opensearch":
                return 400, {"error": {"type": "invalid_index_name_exception", "reason": "no ILM here"}}
            self.ilm_policies[parts[2]] = json.loads(body or b"{}")
            return 200, {"acknowledged": True}
        if method == "PUT" and len(parts) == 4 and parts[:3] == ["_plugins", "_ism", "policies"]:
            if self.distribution != "opensearch":
                return 400, {"error": {"type": "invalid_index_name_exception", "reason": "no ISM here"}}
            self.ism_policies[parts[3]] = json.loads(body or b"{}")
            return 201, {"_id": parts[3], "policy": self.ism_policies[parts[3]]}
        if method == "PUT" and len(parts) == 2 and parts[0] in ("_index_template", "_template"):
            self.templates[parts[1]] = json.loads(body or b"{}")
            return 200, {"acknowledged": True}
        if method == "PUT" and len(parts) == 1:
            if parts[0] in self.indices:
                return 400, {"error": {"type": "resource_already_exists_exception", "reason": parts[0]}}
            spec = json.loads(body or b"{}")
            self.indices[parts[0]] = {"aliases": spec.get("aliases", {}),
                                      "created": int(time.time() * 1000), "docs": 0}
            return 200, {"acknowledged": True, "index": parts[0]}
        if method == "POST" and parts and parts[0] == "_bulk":
            lines = [json.loads(x) for x in body.decode().splitlines() if x.strip()]
            items = []
            for action, doc in zip(lines[::2], lines[1::2]):
                meta = action.get("index") or action.get("create")
                index = meta["_index"]
                writers = [i for i in self.holders(index)] if index not in self.indices else [index]
                target = writers[-1] if writers else index
                self.indices.setdefault(target, {"aliases": {}, "created": int(time.time() * 1000), "docs": 0})
                self.indices[target]["docs"] += 1
                self.docs.append((target, doc))
                items.append({"index": {"_index": target, "_id": meta.get("_id"), "status": 201}})
            return 200, {"took": 1, "errors": False, "items": items}
        if parts and parts[-1] == "_search":
            q = json.loads(body or b"{}")
            if "services" in q.get("aggs", {}):
                names = sorted({d.get("serviceName") for i, d in self.docs if "-service-" in i})
                return 200, {"hits": {"hits": []}, "aggregations": {"services": {
                    "buckets": [{"key": n, "doc_count": 1} for n in names if n]}}}
            return 200, {"hits": {"total": {"value": 0}, "hits": []}}
        if method == "GET" and parts[:2] == ["_cat", "indices"]:
            pattern = parts[2] if len(parts) > 2 else "*"
            return 200, [{"index": i, "docs.count": str(v["docs"])} for i, v in sorted(self.indices.items())
                         if any(fnmatch.fnmatchcase(i, p) for p in pattern.split(","))]
        if method == "DELETE" and len(parts) == 1:
            names = parts[0].split(",")
            if any(n not in self.indices for n in names):
                return not_found
            for n in names:
                del self.indices[n]
            return 200, {"acknowledged": True}
        if parts and parts[0] == "_alias" and method in ("HEAD", "GET"):
            aliases = parts[1].split(",") if len(parts) > 1 else []
            out = {}
            for alias in aliases:
                for i in self.holders(alias):
                    out.setdefault(i, {"aliases": {}})["aliases"][alias] = self.indices[i]["aliases"][alias]
            if not out:
                return 404, {"error": f"alias [{','.join(aliases)}] missing", "status": 404}
            return 200, (None if method == "HEAD" else out)
        if method == "POST" and len(parts) == 2 and parts[1] == "_rollover":
            alias = parts[0]
            writers = [i for i in self.holders(alias)
                       if self.indices[i]["aliases"][alias].get("is_write_index", True)]
            if not writers:
                return 400, {"error": {"type": "illegal_argument_exception",
                                       "reason": f"rollover target [{alias}] does not exist"}}
            old = writers[-1]
            if not self.rollover_conditions_met:
                return 200, {"rolled_over": False, "old_index": old, "new_index": old, "dry_run": False}
            m = re.match(r"^(.*-)(\d{6})$", old)
            assert m, f"rollover of an index not numbered: {old}"
            new = f"{m.group(1)}{int(m.group(2)) + 1:06d}"
            self.indices[old]["aliases"][alias] = {"is_write_index": False}
            self.indices[new] = {"aliases": {alias: {"is_write_index": True}},
                                 "created": int(time.time() * 1000), "docs": 0}
            return 200, {"rolled_over": True, "old_index": old, "new_index": new, "dry_run": False}
        if method == "POST" and parts == ["_aliases"]:
            for action in json.loads(body)["actions"]:
                (op, spec), = action.items()
                if spec["index"] not in self.indices:
                    return not_found
                if op == "add":
                    self.indices[spec["index"]]["aliases"][spec["alias"]] = {}
                elif op == "remove":
                    self.indices[spec["index"]]["aliases"].pop(spec["alias"], None)
            return 200, {"acknowledged": True}
        if method == "GET" and len(parts) == 3 and parts[1] == "_settings":
            if parts[0] not in self.indices:
                return not_found
            return 200, {parts[0]: {"settings": {"index": {
                "creation_date": str(self.indices[parts[0]]["created"])}}}}
        return 404, {"error": {"type": "not_found", "reason": f"{method} {path}"}, "status": 404}


def make_ca_and_server_cert(d: pathlib.Path, name: str = "ca") -> tuple[pathlib.Path, pathlib.Path, pathlib.Path]:
    """A CA and a server certificate it signs for 127.0.0.1 and localhost,
    made with the openssl command: (ca.crt, server.crt, server.key)."""
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = d / f"{name}.key", d / f"{name}.crt"
    key, csr, crt = d / f"{name}-server.key", d / f"{name}-server.csr", d / f"{name}-server.crt"
    ext = d / f"{name}-ext.cnf"
    ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        out = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"openssl {' '.join(args)}:\n{out.stderr}"

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt),
        "-days", "2", "-subj", f"/CN=Waymark test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(crt), "-days", "2", "-extfile", str(ext))
    return ca_crt, crt, key


def make_client_cert(d: pathlib.Path, ca: str = "ca", name: str = "client") -> tuple[pathlib.Path, pathlib.Path]:
    """A client certificate signed by the CA make_ca_and_server_cert made
    under the name ca, for clusters that ask for one: (client.crt, client.key)."""
    key, csr, crt = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.crt"
    ext = d / f"{name}-ext.cnf"
    ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=clientAuth\n")
    for args in (["req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
                  "-subj", "/CN=waymark"],
                 ["x509", "-req", "-in", str(csr), "-CA", str(d / f"{ca}.crt"), "-CAkey", str(d / f"{ca}.key"),
                  "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext)]):
        out = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"openssl {' '.join(args)}:\n{out.stderr}"
    return crt, key
