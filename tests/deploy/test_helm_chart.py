"""The Helm chart rendered in every mode by Helm's own engine
(helm-python-sdk), each manifest validated against Kubernetes' API schemas
(kubernetes-validate, strict), and the wiring between the objects checked:
Services reach declared container ports, probes ask the admin port, the
security settings are the ones the issue asks for."""

from __future__ import annotations

import json

import pytest
import yaml

import deploy_support as ds

SAMPLING = {
    "default_strategy": {"type": "probabilistic", "param": 0.5},
    "service_strategies": [{"service": "checkout", "type": "ratelimiting", "param": 20}],
}

CASES = {
    "allInOne-defaults": {},
    "allInOne-everything": {
        "ingress": {"enabled": True, "className": "nginx",
                    "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "16m"},
                    "tls": [{"secretName": "waymark-tls", "hosts": ["waymark.example.com"]}]},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "otlp": {"corsAllowedOrigins": ["https://shop.example.com", "https://admin.example.com"]},
        "extraArgs": ["--config=/etc/waymark/none.yaml"],
        "extraEnv": [{"name": "RUST_BACKTRACE", "value": "1"}],
        "storage": {"embedded": {"retention": "3d", "fsync": "always",
                                 "persistence": {"storageClassName": "fast", "size": "50Gi",
                                                 "annotations": {"a": "b"}}}},
        "allInOne": {"nodeSelector": {"disk": "ssd"},
                     "tolerations": [{"key": "tracing", "operator": "Exists"}],
                     "podAnnotations": {"x": "y"}, "podLabels": {"team": "obs"}},
        "imagePullSecrets": [{"name": "regcred"}],
        "service": {"collector": {"type": "LoadBalancer"}, "query": {"type": "NodePort"}},
        "sampling": {"strategies": SAMPLING,
                     "adaptive": {"enabled": True, "targetSamplesPerSecond": 2.5, "lookback": "10m"}},
    },
    "allInOne-ephemeral": {"storage": {"embedded": {"persistence": {"enabled": False}}},
                           "serviceAccount": {"create": False, "name": "existing"}},
    "distributed-defaults": {"mode": "distributed"},
    "distributed-everything": {
        "mode": "distributed",
        "ingress": {"enabled": True},
        "serviceMonitor": {"enabled": True},
        "sampling": {"existingConfigMap": "my-strategies",
                     "adaptive": {"enabled": True, "minSamplesPerSecond": 0, "calculationInterval": "30s"}},
        "agent": {"hostPorts": True, "queue": {"hostPath": "/var/lib/waymark-agent"},
                  "forwardGzip": True, "tolerations": [{"operator": "Exists"}]},
        "podDisruptionBudget": {"maxUnavailable": 0},
        "ports": {"admin": 15269, "queryAdmin": 15270},
    },
    "distributed-sampling-no-agent": {
        "mode": "distributed", "sampling": {"strategies": SAMPLING},
        "agent": {"enabled": False}, "podDisruptionBudget": {"enabled": False},
    },
    "distributed-own-collectors": {
        "mode": "distributed",
        "agent": {"collectors": ["collector-a.tracing.svc:4317", "collector-b.tracing.svc:4317"]},
    },
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    values = CASES[request.param]
    return request.param, values, ds.render(values)


def store_workload(r: ds.Rendered, values: dict) -> dict:
    if values.get("mode") == "distributed":
        return r.get("StatefulSet", "waymark-collector")
    return r.get("StatefulSet", "waymark")


def test_every_manifest_is_valid_for_kubernetes(case):
    name, values, r = case
    assert r.docs, name
    for doc in r.docs:
        if doc["kind"] == "ServiceMonitor":
            continue  # a custom resource: checked in test_service_monitor
        ds.validate_k8s(doc)
        assert doc["metadata"]["namespace"] == ds.NAMESPACE
        assert doc["metadata"]["labels"]["app.kubernetes.io/instance"] == ds.RELEASE


def test_helm_lint_strict(case):
    name, values, _ = case
    report = ds.helm_lint(values, strict=True, kube_version="v" + ds.K8S_VERSIONS[0])
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems


def test_objects_per_mode(case):
    name, values, r = case
    kinds = sorted(r.kinds())
    distributed = values.get("mode") == "distributed"
    assert ("Service", "waymark-collector") in kinds
    assert ("Service", "waymark-query") in kinds
    assert ("Service", "waymark-headless") in kinds
    assert not r.all("Deployment"), "the embedded store allows no Deployment (no shared volume)"
    assert not r.all("HorizontalPodAutoscaler"), "no autoscaling with the embedded store"
    if distributed:
        assert not r.all("StatefulSet", "waymark")
        sts = r.get("StatefulSet", "waymark-collector")
        assert sts["spec"]["replicas"] == 1
        agent_on = values.get("agent", {}).get("enabled", True)
        assert bool(r.all("DaemonSet", "waymark-agent")) == agent_on
        assert bool(r.all("Service", "waymark-agent")) == agent_on
        pdb_on = values.get("podDisruptionBudget", {}).get("enabled", True)
        assert bool(r.all("PodDisruptionBudget")) == pdb_on
    else:
        sts = r.get("StatefulSet", "waymark")
        assert sts["spec"]["replicas"] == 1
        assert not r.all("DaemonSet") and not r.all("PodDisruptionBudget")
    assert bool(r.all("Ingress")) == values.get("ingress", {}).get("enabled", False)
    assert bool(r.all("ServiceMonitor")) == values.get("serviceMonitor", {}).get("enabled", False)
    sa_create = values.get("serviceAccount", {}).get("create", True)
    assert bool(r.all("ServiceAccount")) == sa_create
    sa_name = "waymark" if sa_create else values["serviceAccount"]["name"]
    for wl in r.workloads():
        assert ds.pod_spec(wl)["serviceAccountName"] == sa_name
        assert ds.pod_spec(wl)["automountServiceAccountToken"] is False


def test_store_has_a_persistent_volume_claim(case):
    name, values, r = case
    sts = store_workload(r, values)
    persistence = ds.merged_values(values)["storage"]["embedded"]["persistence"]
    claims = sts["spec"].get("volumeClaimTemplates", [])
    vols = {v["name"]: v for v in ds.pod_spec(sts).get("volumes", [])}
    if persistence["enabled"]:
        assert [c["metadata"]["name"] for c in claims] == ["data"]
        spec = claims[0]["spec"]
        assert spec["resources"]["requests"]["storage"] == persistence["size"]
        assert spec["accessModes"] == persistence["accessModes"]
        assert spec.get("storageClassName", "") == persistence["storageClassName"]
        assert "data" not in vols
    else:
        assert not claims
        assert "emptyDir" in vols["data"]
    writer = ds.long_running_containers(sts)[0]
    assert {"name": "data", "mountPath": "/var/lib/waymark"} in writer["volumeMounts"]
    assert "--data-dir=/var/lib/waymark" in writer["args"]


def test_security_context(case):
    name, values, r = case
    for wl in r.workloads():
        pod = ds.pod_spec(wl)["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 10001
        assert pod["fsGroup"] == 10001
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in ds.long_running_containers(wl):
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            res = c["resources"]
            assert res["requests"]["cpu"] and res["requests"]["memory"] and res["limits"]["memory"]


def test_probes_ask_the_admin_port_the_binary_serves(case):
    """Liveness /health, readiness and startup /ready, on the container port
    whose number is the one --admin-listen binds; startup allows at least 10
    minutes for the WAL replay and liveness waits for it."""
    name, values, r = case
    for wl in r.workloads():
        for c in ds.long_running_containers(wl):
            admin = int(ds.flag_values(c["args"])["admin-listen"].rsplit(":", 1)[1])
            for kind, path in (("startupProbe", "/ready"), ("readinessProbe", "/ready"),
                               ("livenessProbe", "/health")):
                probe = c[kind]
                assert probe["httpGet"]["path"] == path
                assert ds.container_port(c, probe["httpGet"]["port"])["containerPort"] == admin, \
                    f"{wl['metadata']['name']}/{c['name']} {kind}"
            s = c["startupProbe"]
            assert s["periodSeconds"] * s["failureThreshold"] >= 600
            live = c["livenessProbe"]
            assert live["periodSeconds"] * live["failureThreshold"] >= 60
            assert live["timeoutSeconds"] >= 3


def test_every_service_port_reaches_a_declared_container_port(case):
    name, values, r = case
    for svc in r.all("Service"):
        targets = [wl for wl in r.workloads() if ds.selects(svc["spec"]["selector"], ds.pod_labels(wl))]
        assert len(targets) == 1, f"Service {svc['metadata']['name']} selects {len(targets)} workloads"
        for sp in svc["spec"]["ports"]:
            hits = []
            for c in ds.long_running_containers(targets[0]):
                for cp in c.get("ports", []):
                    if cp["name"] == sp["targetPort"]:
                        hits.append(cp)
            assert len(hits) == 1, f"{svc['metadata']['name']}:{sp['name']} -> {sp['targetPort']}"
            assert hits[0]["protocol"] == sp["protocol"]
            assert hits[0]["containerPort"] == sp["port"], "Services keep Waymark's port numbers"


def test_services_cover_every_waymark_port(case):
    name, values, r = case
    v = ds.merged_values(values)["ports"]
    coll = {p["name"]: (p["port"], p["protocol"]) for p in r.get("Service", "waymark-collector")["spec"]["ports"]}
    assert coll == {
        "otlp-grpc": (v["otlpGrpc"], "TCP"), "otlp-http": (v["otlpHttp"], "TCP"),
        "zipkin": (v["zipkin"], "TCP"), "jaeger-compact": (v["jaegerCompact"], "UDP"),
        "jaeger-binary": (v["jaegerBinary"], "UDP"), "sampling": (v["sampling"], "TCP"),
        "jaeger-grpc": (v["jaegerGrpc"], "TCP"), "jaeger-http": (v["jaegerHttp"], "TCP"),
        "admin": (v["admin"], "TCP"),
    }
    query = {p["name"]: p["port"] for p in r.get("Service", "waymark-query")["spec"]["ports"]}
    assert query["query-http"] == v["queryHttp"] and query["query-grpc"] == v["queryGrpc"]
    if values.get("mode") == "distributed":
        assert query["admin"] == v["queryAdmin"]
        if r.all("Service", "waymark-agent"):
            agent = r.get("Service", "waymark-agent")
            assert agent["spec"]["internalTrafficPolicy"] == "Local"
            assert {p["name"] for p in agent["spec"]["ports"]} == set(coll)
    else:
        assert "admin" not in query, "one pod, one admin port: scraped once through the collector Service"


def test_agents_forward_to_the_headless_collector_service(case):
    name, values, r = case
    coll = r.all("StatefulSet", "waymark-collector")
    ds.check_collector_headless_service(r, values, coll[0] if coll else None)


def test_pod_containers_never_share_a_port(case):
    name, values, r = case
    for wl in r.workloads():
        seen = {}
        for c in ds.long_running_containers(wl):
            for p in c.get("ports", []):
                key = (p["containerPort"], p["protocol"])
                assert key not in seen, f"{wl['metadata']['name']}: {key} in {seen.get(key)} and {c['name']}"
                seen[key] = c["name"]


def test_distributed_pod_layout(case):
    """The collector (store writer) and the query container are two
    ordinary containers of one pod, started together: the query container
    mounts the volume read-only and waits, not ready, until the collector
    has created the store, and its startup probe allows twice the startup
    budget (the wait, then its own opening of the store)."""
    name, values, r = case
    if values.get("mode") != "distributed":
        pytest.skip("distributed mode only")
    sts = r.get("StatefulSet", "waymark-collector")
    spec = ds.pod_spec(sts)
    assert "initContainers" not in spec
    collector, query = spec["containers"]
    assert collector["name"] == "collector" and collector["args"][0] == "collector"
    assert query["name"] == "query" and query["args"][0] == "query"
    mounts = {m["name"]: m for m in query["volumeMounts"]}
    assert mounts["data"]["readOnly"] is True and mounts["data"]["mountPath"] == "/var/lib/waymark"
    assert "--data-dir=/var/lib/waymark" in query["args"]
    cs, qs = collector["startupProbe"], query["startupProbe"]
    assert qs["periodSeconds"] == cs["periodSeconds"]
    assert qs["failureThreshold"] == 2 * cs["failureThreshold"]
    if r.all("DaemonSet"):
        agent = ds.pod_spec(r.get("DaemonSet", "waymark-agent"))["containers"][0]
        flags = ds.flag_values(agent["args"])
        own = values.get("agent", {}).get("collectors")
        if own:
            assert flags["collector"] == ",".join(own)
            assert "sampling-collector" not in flags
        else:
            v = ds.merged_values(values)["ports"]
            assert flags["collector"] == f"waymark-collector-headless.tracing.svc:{v['otlpGrpc']}"
            assert flags["sampling-collector"] == f"waymark-collector.tracing.svc:{v['jaegerGrpc']}"
        hostports = [p.get("hostPort") for p in agent["ports"] if p["name"] != "admin"]
        if values.get("agent", {}).get("hostPorts"):
            assert hostports == [p["containerPort"] for p in agent["ports"] if p["name"] != "admin"]
        else:
            assert not any(hostports)
        vol = next(v for v in ds.pod_spec(r.get("DaemonSet", "waymark-agent"))["volumes"] if v["name"] == "queue")
        hp = values.get("agent", {}).get("queue", {}).get("hostPath")
        assert (vol["hostPath"]["path"] == hp) if hp else ("emptyDir" in vol)
    pdbs = r.all("PodDisruptionBudget")
    if pdbs:
        assert ds.selects(pdbs[0]["spec"]["selector"]["matchLabels"], ds.pod_labels(sts))
        assert pdbs[0]["spec"]["maxUnavailable"] == values.get("podDisruptionBudget", {}).get("maxUnavailable", 1)


def test_sampling_strategies_mounted_and_passed(case):
    name, values, r = case
    sampling = values.get("sampling", {})
    for wl in r.workloads():
        vols = {v["name"]: v for v in ds.pod_spec(wl).get("volumes", [])}
        for c in ds.long_running_containers(wl):
            ingests = c["args"][0] != "query"
            has_flag = "--sampling-strategies-file=/etc/waymark/sampling/strategies.json" in c["args"]
            assert has_flag == bool(sampling and ingests), (wl["metadata"]["name"], c["name"])
            if has_flag:
                m = next(m for m in c["volumeMounts"] if m["name"] == "sampling")
                assert m["mountPath"] == "/etc/waymark/sampling" and m["readOnly"]
                assert "subPath" not in m, "a subPath mount never sees ConfigMap updates"
                want = sampling.get("existingConfigMap") or "waymark-sampling"
                assert vols["sampling"]["configMap"]["name"] == want
    if sampling.get("strategies"):
        cm = r.get("ConfigMap", "waymark-sampling")
        assert json.loads(cm["data"]["strategies.json"]) == sampling["strategies"]
    else:
        assert not r.all("ConfigMap")


def test_values_reach_the_flags(case):
    name, values, r = case
    v = ds.merged_values(values)
    emb = v["storage"]["embedded"]
    writer = ds.long_running_containers(store_workload(r, values))[0]
    flags = ds.flag_values(writer["args"])
    assert flags["fsync"] == emb["fsync"]
    assert flags["retention"] == emb["retention"]
    assert flags["head-max-age"] == emb["headMaxAge"]
    assert flags["head-max-spans"] == str(emb["headMaxSpans"])
    assert flags["head-max-bytes"] == str(emb["headMaxBytes"])
    assert flags["zstd-level"] == str(emb["zstdLevel"])
    assert flags["max-request-bytes"] == str(v["limits"]["maxRequestBytes"])
    assert flags["max-spans-per-request"] == str(v["limits"]["maxSpansPerRequest"])
    assert flags["max-attributes-per-span"] == str(v["limits"]["maxAttributesPerSpan"])
    assert flags["max-string-bytes"] == str(v["limits"]["maxStringBytes"])
    assert flags["queue-spans"] == str(v["pipeline"]["queueSpans"])
    assert flags["max-batch-spans"] == str(v["pipeline"]["maxBatchSpans"])
    assert flags["queue-max-wait"] == v["pipeline"]["queueMaxWait"]
    assert flags["log-level"] == v["logLevel"]
    adaptive = v["sampling"]["adaptive"]
    assert flags["sampling-adaptive"] == str(adaptive["enabled"]).lower()
    for key, flag in (("targetSamplesPerSecond", "target-samples-per-second"),
                      ("deltaTolerance", "delta-tolerance"),
                      ("initialSamplingProbability", "initial-sampling-probability"),
                      ("minSamplingProbability", "min-sampling-probability"),
                      ("minSamplesPerSecond", "min-samples-per-second"),
                      ("maxIncrease", "max-increase")):
        assert float(flags[f"adaptive-{flag}"]) == adaptive[key], key
    assert flags["adaptive-calculation-interval"] == adaptive["calculationInterval"]
    assert flags["adaptive-lookback"] == adaptive["lookback"]
    # Only the store's writer runs adaptive sampling.
    for wl in r.workloads():
        for c in ds.long_running_containers(wl):
            if c is not writer and c["args"][0] != writer["args"][0]:
                assert not [a for a in c["args"] if "adaptive" in a], (wl["metadata"]["name"], c["name"])
    if v["otlp"]["corsAllowedOrigins"]:
        assert flags["cors-allowed-origins"] == ",".join(v["otlp"]["corsAllowedOrigins"])
    else:
        assert "cors-allowed-origins" not in flags
    for wl in r.workloads():
        for c in ds.long_running_containers(wl):
            assert c["image"] == "waymark:0.1.0"
            assert c["args"][-len(v["extraArgs"]) or len(c["args"]):] == v["extraArgs"]
            assert c.get("env", []) == v["extraEnv"]


def test_ingress_routes_to_the_ui(case):
    name, values, r = case
    if not r.all("Ingress"):
        pytest.skip("no ingress in this case")
    ing = r.get("Ingress", "waymark")
    v = ds.merged_values(values)["ingress"]
    assert ing["spec"].get("ingressClassName", "") == v["className"]
    assert ing["spec"].get("tls", []) == v["tls"]
    for rule, host in zip(ing["spec"]["rules"], v["hosts"]):
        assert rule["host"] == host["host"]
        for p in rule["http"]["paths"]:
            assert p["backend"]["service"] == {"name": "waymark-query", "port": {"name": "query-http"}}


def test_service_monitor(case):
    """The one custom resource: checked by hand against the fields
    prometheus-operator's monitoring.coreos.com/v1 ServiceMonitor defines."""
    name, values, r = case
    if not r.all("ServiceMonitor"):
        pytest.skip("no ServiceMonitor in this case")
    sm = r.get("ServiceMonitor", "waymark")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(sm["spec"]) == {"namespaceSelector", "selector", "endpoints"}
    for k, want in (values["serviceMonitor"].get("labels") or {}).items():
        assert sm["metadata"]["labels"][k] == want
    [ep] = sm["spec"]["endpoints"]
    assert set(ep) == {"port", "path", "interval", "scrapeTimeout"}
    assert ep["path"] == "/metrics" and ep["port"] == "admin"
    sel = sm["spec"]["selector"]
    matched = []
    for svc in r.all("Service"):
        labels = svc["metadata"]["labels"]
        if not ds.selects(sel["matchLabels"], labels):
            continue
        if not all(labels.get(e["key"]) in e["values"] for e in sel["matchExpressions"]):
            continue
        if any(p["name"] == "admin" for p in svc["spec"]["ports"]):
            matched.append(svc["metadata"]["name"])
    # Every admin listener once: one per process.
    procs = sum(len(ds.long_running_containers(wl)) for wl in r.workloads())
    assert len(matched) == procs, matched


def test_notes_print_the_port_forward_command(case):
    name, values, r = case
    qport = ds.merged_values(values)["ports"]["queryHttp"]
    assert f"kubectl --namespace tracing port-forward svc/waymark-query 16686:{qport}" in r.notes
    assert "http://localhost:16686" in r.notes


def test_release_names():
    """Resource names follow the release: the collector Service the demo
    sends to is <release>-collector for release "waymark"."""
    r = ds.render({}, release="tracing-prod")
    assert ("Service", "tracing-prod-waymark-collector") in r.kinds()
    r = ds.render({"fullnameOverride": "wm"}, release="x")
    assert ("Service", "wm-collector") in r.kinds() and ("StatefulSet", "wm") in r.kinds()
    assert yaml.safe_load(ds.render({}).files["waymark/templates/services.yaml"].split("---")[0])[
        "metadata"]["name"] == "waymark-collector"


def test_chart_kube_version_is_the_oldest_version_tested():
    """Chart.yaml's kubeVersion is the oldest Kubernetes the manifests are
    validated against (K8S_VERSIONS); Helm refuses older clusters."""
    chart = yaml.safe_load((ds.CHART_DIR / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == f">={ds.K8S_VERSIONS[0]}-0" == ">=1.22.0-0"
    assert chart["apiVersion"] == "v2"


def test_no_native_sidecars(case):
    """Init containers with restartPolicy Always (native sidecars) need
    Kubernetes 1.29; the chart supports older clusters and uses none."""
    name, values, r = case
    for wl in r.workloads():
        for c in ds.pod_spec(wl).get("initContainers", []):
            assert "restartPolicy" not in c, (wl["metadata"]["name"], c["name"])


def test_old_kubernetes_schemas_are_really_checked():
    """The schemas of the oldest version tested come from an older
    kubernetes-validate; a field that version lacks is refused, so the
    check is not vacuous."""
    sts = ds.render({"mode": "distributed"}).get("StatefulSet", "waymark-collector")
    ds.validate_k8s(sts)
    sidecar = json.loads(json.dumps(sts))
    spec = ds.pod_spec(sidecar)
    spec["initContainers"] = [dict(spec["containers"].pop(0), restartPolicy="Always")]
    with pytest.raises(AssertionError, match="not valid for Kubernetes 1.22.0.*restartPolicy"):
        ds.validate_k8s(sidecar, versions=(ds.K8S_VERSIONS[0],))
    ds.validate_k8s(sidecar, versions=("1.29.0",))
