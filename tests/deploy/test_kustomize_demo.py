"""The demo manifests (deploy/kustomize/demo): built by the kustomize inside
kubectl (`kubectl kustomize`, the same code as `kubectl apply -k`), every
object validated against Kubernetes' schemas, wired to the images the
demo Dockerfiles build and to the Waymark chart's collector Service, and
finally run: each Deployment's container starts with its Dockerfile's
command and the environment the manifests give it, sending to a Waymark
all-in-one started from the chart, and the /serverError trace of service-a
is found the way docs/kubernetes.md tells a user to find it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse

import pytest
import requests

import deploy_support as ds

DOCKER_DIR = ds.REPO_ROOT / "demo" / "docker"
SERVICES = ("service-a", "service-b", "frontend", "login", "catalog", "payment")
WORKLOADS = SERVICES + ("loadgen",)
OTLP_ENDPOINT = "http://waymark-collector.tracing.svc.cluster.local:4318"


def _dockerfile(name: str) -> dict:
    """What a demo Dockerfile says: image tag from its header comment, CMD,
    ENV, EXPOSE, USER and the uid it creates."""
    text = (DOCKER_DIR / f"{name}.Dockerfile").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    env = {}
    for line in joined.splitlines():
        if line.startswith("ENV "):
            env.update(dict(re.findall(r"(\w+)=(\S+)", line[4:])))
    tag = re.search(r"docker build .* -t (\S+) demo", text).group(1)
    user = re.search(r"^USER (\S+)", text, re.M).group(1)
    uid = re.search(r"--uid (\d+)", text)
    expose = re.search(r"^EXPOSE (\d+)", text, re.M)
    return {
        "tag": tag,
        "cmd": json.loads(re.search(r"^CMD (\[.*\])", text, re.M).group(1)),
        "env": env,
        "expose": int(expose.group(1)) if expose else None,
        "user": user,
        # node:20 images run as user node, uid 1000
        "uid": int(uid.group(1)) if uid and user != "node" else 1000,
    }


@pytest.fixture(scope="module")
def builds():
    return {
        "default": ds.kustomize(ds.DEMO_DIR),
        "local": ds.kustomize(ds.DEMO_DIR / "overlays" / "local"),
        "cloud": ds.kustomize(ds.DEMO_DIR / "overlays" / "cloud"),
        "base": ds.kustomize(ds.DEMO_DIR / "base"),
    }


def _get(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _env(docs, deployment) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom
    ConfigMaps first, then env entries."""
    c = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {}
    for src in c.get("envFrom", []):
        env.update(_get(docs, "ConfigMap", src["configMapRef"]["name"])["data"])
    for e in c.get("env", []):
        env[e["name"]] = e["value"]
    return env


def test_default_is_the_local_overlay(builds):
    assert builds["default"] == builds["local"]


@pytest.mark.parametrize("variant", ["default", "cloud", "base"])
def test_every_object_is_valid_for_kubernetes(builds, variant):
    for doc in builds[variant]:
        ds.validate_k8s(doc)


@pytest.mark.parametrize("variant", ["default", "cloud"])
def test_objects_and_namespace(builds, variant):
    docs = builds[variant]
    assert _get(docs, "Namespace", "demo")
    assert sorted(d["metadata"]["name"] for d in docs if d["kind"] == "Deployment") == sorted(WORKLOADS)
    assert sorted(d["metadata"]["name"] for d in docs if d["kind"] == "Service") == sorted(SERVICES)
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == "demo", d["metadata"]["name"]
        assert d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "waymark-demo"


@pytest.mark.parametrize("variant", ["default", "cloud"])
def test_images_ports_and_users_match_the_dockerfiles(builds, variant):
    docs = builds[variant]
    for name in WORKLOADS:
        df = _dockerfile(name)
        dep = _get(docs, "Deployment", name)
        pod = dep["spec"]["template"]["spec"]
        [c] = pod["containers"]
        image = c["image"]
        if variant == "cloud":
            assert image == f"registry.example.com/{df['tag']}:0.1.0"
        else:
            assert image == f"{df['tag']}:latest"
            assert c["imagePullPolicy"] == "IfNotPresent"
        # runAsNonRoot needs a numeric user; it is the image's own.
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == df["uid"]
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
        env = {**df["env"], **_env(docs, dep)}
        if name in SERVICES:
            [port] = c["ports"]
            assert port["containerPort"] == df["expose"]
            port_var = name.upper().replace("-", "_") + "_PORT"
            assert env[port_var] == str(df["expose"])
            assert env["DEMO_BIND_HOST"] == "0.0.0.0"
            svc = _get(docs, "Service", name)
            assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
            assert svc["spec"]["ports"][0]["port"] == df["expose"]
            assert c["readinessProbe"]["tcpSocket"]["port"] == "http"
        if name == "catalog":
            assert env["CATALOG_DB_PATH"].startswith("/tmp/")


@pytest.mark.parametrize("variant", ["default", "cloud"])
def test_every_url_names_a_service_port(builds, variant):
    docs = builds[variant]
    chart = ds.render({})
    for name in WORKLOADS:
        dep = _get(docs, "Deployment", name)
        env = {**_dockerfile(name)["env"], **_env(docs, dep)}
        for key, value in env.items():
            if not key.endswith(("_URL", "_ENDPOINT")):
                continue
            u = urllib.parse.urlsplit(value)
            if key == "OTEL_EXPORTER_OTLP_ENDPOINT":
                # The chart's collector Service for release waymark in namespace tracing.
                assert value == OTLP_ENDPOINT
                svc_name, ns = u.hostname.split(".")[:2]
                assert ns == ds.NAMESPACE
                svc = chart.get("Service", svc_name)
                [p] = [p for p in svc["spec"]["ports"] if p["port"] == u.port]
                assert p["name"] == "otlp-http"
            else:
                svc = _get(docs, "Service", u.hostname)
                assert u.port in [p["port"] for p in svc["spec"]["ports"]], f"{name} {key}={value}"


def test_local_overlay(builds):
    docs = builds["local"]
    assert _get(docs, "Service", "frontend")["spec"]["type"] == "NodePort"
    for d in docs:
        if d["kind"] == "Deployment":
            assert d["spec"]["replicas"] == 1


def test_cloud_overlay(builds):
    docs = builds["cloud"]
    assert _get(docs, "Service", "frontend")["spec"]["type"] == "LoadBalancer"
    assert _get(docs, "Deployment", "frontend")["spec"]["replicas"] == 2
    assert _get(docs, "Deployment", "catalog")["spec"]["replicas"] == 2
    assert _env(docs, _get(docs, "Deployment", "loadgen"))["LOAD_RPS"] == "20"
    for d in docs:
        if d["kind"] == "Deployment":
            res = d["spec"]["template"]["spec"]["containers"][0]["resources"]
            assert res["limits"]["memory"] == "512Mi"
            assert "imagePullPolicy" not in d["spec"]["template"]["spec"]["containers"][0]


# --------------------------------------------------------------------------
# The demo, run from its manifests
# --------------------------------------------------------------------------

URL_RE = re.compile(r"^http://([a-z0-9.-]+):(\d+)$")


def _demo_python() -> str:
    p = os.environ.get("DEMO_PYTHON") or str(ds.REPO_ROOT / "demo" / ".venv" / "bin" / "python")
    return p


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


def test_demo_runs_from_its_manifests(builds, cluster, tmp_path):
    """docs/kubernetes.md's walkthrough on this machine: Waymark from the
    chart (embedded, all-in-one), the demo from its manifests, one request
    to service-a's /serverError, and its trace found through the query API."""
    python = _demo_python()
    if not (ds.REPO_ROOT / "demo" / "node_modules").is_dir() or not os.path.exists(python):
        pytest.fail("demo dependencies missing: run `bash demo/install.sh` or set DEMO_PYTHON "
                    f"(looked for demo/node_modules and {python})")
    if not shutil.which("node"):
        pytest.fail("node is not installed")

    chart = ds.render({})
    fc = cluster(chart.docs)
    sts = chart.get("StatefulSet", "waymark")
    waymark = fc.start(sts, ds.long_running_containers(sts)[0])
    ds.check_probes(waymark)

    docs = builds["default"]
    local = {name: port for name, port in zip(SERVICES, ds.free_ports(len(SERVICES)))}

    def resolve(url: str) -> str:
        m = URL_RE.match(url)
        assert m, url
        host, port = m.group(1), int(m.group(2))
        if host.endswith(".svc.cluster.local") or ".svc" in host:
            return f"http://127.0.0.1:{fc.resolve_service(host, port)}"
        svc = _get(docs, "Service", host)
        assert port == svc["spec"]["ports"][0]["port"]
        return f"http://127.0.0.1:{local[host]}"

    procs: dict[str, subprocess.Popen] = {}
    logs = tmp_path / "logs"
    logs.mkdir()

    def tail(name: str) -> str:
        return (logs / f"{name}.log").read_text(errors="replace")[-3000:]

    def start(name: str, extra: dict[str, str] | None = None) -> None:
        df = _dockerfile(name)
        dep = _get(docs, "Deployment", name)
        env = {**df["env"], **_env(docs, dep), **(extra or {})}
        for key, value in list(env.items()):
            if URL_RE.match(value):
                env[key] = resolve(value)
        if name in SERVICES:
            port_var = name.upper().replace("-", "_") + "_PORT"
            env[port_var] = str(local[name])
            env["DEMO_BIND_HOST"] = "127.0.0.1"
        if "CATALOG_DB_PATH" in env:
            env["CATALOG_DB_PATH"] = str(tmp_path / "tmp" / "catalog.sqlite")
            (tmp_path / "tmp").mkdir(exist_ok=True)
        env["PATH"] = os.environ["PATH"]
        cmd = list(df["cmd"])
        if cmd[0] == "python":
            cmd[0] = python
        with open(logs / f"{name}.log", "wb") as out:
            procs[name] = subprocess.Popen(cmd, cwd=ds.REPO_ROOT / "demo", env=env, stdout=out,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           start_new_session=True)

    try:
        for name in SERVICES:
            start(name)
        deadline = time.monotonic() + 40
        for name in SERVICES:
            while not _port_open(local[name]):
                assert procs[name].poll() is None, f"{name} exited\n{tail(name)}"
                assert time.monotonic() < deadline, f"{name} not listening\n{tail(name)}"
                time.sleep(0.1)
        # What a user does in docs/kubernetes.md: ask service-a for an error.
        r = requests.get(f"http://127.0.0.1:{local['service-a']}/serverError", timeout=10)
        assert r.status_code == 500
        # The load driver, as deployed, for a few seconds.
        start("loadgen", {"LOAD_DURATION_S": "4", "LOAD_REPORT_S": "0"})
        procs["loadgen"].wait(timeout=40)
        assert procs["loadgen"].returncode == 0, tail("loadgen")
        summary = [ln for ln in tail("loadgen").splitlines() if ln.startswith('{"summary"')]
        assert summary, tail("loadgen")
        # {kind: {outcome: count}}: checkouts went through the frontend's peers.
        counts = json.loads(summary[-1])["summary"]
        assert counts.get("checkout", {}).get("200", 0) > 0, counts
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for name, p in procs.items():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)

    query = fc.resolve_service("waymark-query.tracing.svc", 16686)
    base = f"http://127.0.0.1:{query}"
    deadline = time.monotonic() + 20
    while True:
        data = requests.get(f"{base}/api/traces", params={"service": "service-a", "tags": json.dumps(
            {"error": "true"}), "limit": 50, "lookback": "1h"}, timeout=10).json()["data"] or []
        hits = [t for t in data if any(s["operationName"].endswith("/serverError") for s in t["spans"])]
        if hits or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert hits, f"no /serverError trace of service-a; traces: {[t['spans'][0]['operationName'] for t in data]}"
    services = requests.get(f"{base}/api/services", timeout=10).json()["data"]
    assert {"service-a", "service-b", "frontend", "login", "catalog", "payment"} <= set(services), services
