"""The chart with storage.type elasticsearch: every variant (allInOne and
distributed; a password from a Secret, an API key from a Secret, the CA
from a ConfigMap, aliases with the rollover jobs, the index cleaner,
adaptive sampling) rendered by Helm's engine and validated against Kubernetes' schemas; every
flag it renders is one the binary's subcommand accepts; the rendered
containers run against the real binary with --es-urls moved to a stand-in
cluster (es_standin.py), the Secret's value delivered as the kubelet would
(environment or file) and the ConfigMap's key as a file; the probes answer
as the kubelet expects; the index jobs exit 0 and do their work; and
adaptive sampling keeps its state in the stand-in's sampling index."""

from __future__ import annotations

import functools
import json
import re
import secrets
import subprocess
import time

import jsonschema
import pytest
import requests

import deploy_support as ds
from es_standin import StandInCluster, make_ca_and_server_cert, make_client_cert

SCHEMA = json.loads((ds.CHART_DIR / "values.schema.json").read_text())
URL = "https://elasticsearch-master.elastic.svc:9200"
PASSWORD = {"name": "es-credentials", "key": "password"}
API_KEY = {"name": "es-api-key", "key": "api-key"}
CA = {"name": "es-ca", "key": "ca.crt"}
TOKEN = {"name": "es-token", "key": "token"}
CLIENT_CERT = {"name": "es-client-cert"}


def es(**kw) -> dict:
    return {"type": "elasticsearch", "elasticsearch": {"urls": [URL], **kw}}


CASES = {
    "allInOne-password-ca": {
        "storage": es(username="elastic", passwordSecret=PASSWORD, caConfigMap=CA),
    },
    "allInOne-api-key-cleaner": {
        "storage": es(apiKeySecret=API_KEY, indexPrefix="prod", spanRollover="hour",
                      serviceRollover="hour", tagsAsFieldsAll=True, gzip=True, shards=3, replicas=2),
        "esIndexCleaner": {"enabled": True, "numberOfDays": 3, "schedule": "@daily"},
        "sampling": {"strategies": {"default_strategy": {"type": "probabilistic", "param": 0.5}}},
    },
    "distributed-password-ca-cleaner": {
        "mode": "distributed",
        "storage": es(username="elastic", passwordSecret=PASSWORD, caConfigMap=CA,
                      maxSpanAge="168h", timeout="10s"),
        "collector": {"replicas": 3},
        "query": {"replicas": 2, "nodeSelector": {"pool": "query"}},
        "esIndexCleaner": {"enabled": True},
        "extraEnv": [{"name": "RUST_BACKTRACE", "value": "1"}],
    },
    "distributed-aliases-hpa": {
        "mode": "distributed",
        "storage": es(apiKeySecret=API_KEY, caConfigMap=CA, useAliases=True, createIndexTemplates=False),
        "collector": {"autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 12,
                                      "targetCPUUtilizationPercentage": 60}},
        "esRollover": {"enabled": True, "maxAge": "12h", "lookback": "7d"},
        "serviceMonitor": {"enabled": True},
        "ingress": {"enabled": True},
    },
    "allInOne-bearer-client-cert-delete-expired": {
        "storage": {"type": "elasticsearch", "embedded": {"retention": "3d"},
                    "elasticsearch": {"urls": [URL], "bearerTokenSecret": TOKEN, "clientCertSecret": CLIENT_CERT,
                                      "caConfigMap": CA, "deleteExpiredIndices": True}},
    },
    "distributed-password-client-cert-keys": {
        "mode": "distributed",
        "storage": es(username="elastic", passwordSecret=PASSWORD, useAliases=True,
                      clientCertSecret={"name": "corp-client", "certKey": "client.pem", "keyKey": "client-key.pem"}),
        "esRollover": {"enabled": True},
    },
    "distributed-delete-expired": {
        "mode": "distributed",
        "storage": es(apiKeySecret=API_KEY, deleteExpiredIndices=True),
        "collector": {"replicas": 2},
    },
    "distributed-ilm-policy": {
        "mode": "distributed",
        "storage": es(apiKeySecret=API_KEY, caConfigMap=CA, useAliases=True, indexPrefix="prod"),
        "esRollover": {"policy": {"enabled": True, "name": "traces-ilm", "rolloverAfter": "12h",
                                  "deleteAfter": "14d"}},
    },
    "allInOne-ism-policy": {
        "storage": es(username="admin", passwordSecret=PASSWORD, useAliases=True),
        "esRollover": {"policy": {"enabled": True, "distribution": "opensearch"}},
    },
    "distributed-adaptive": {
        "mode": "distributed",
        "storage": es(apiKeySecret=API_KEY, indexPrefix="prod"),
        "collector": {"replicas": 2},
        "sampling": {"adaptive": {"enabled": True, "calculationInterval": "30s", "lookback": "2m"}},
    },
    "allInOne-adaptive": {
        "storage": es(),
        "sampling": {"adaptive": {"enabled": True}},
    },
    "distributed-skip-verify": {
        "mode": "distributed",
        "storage": es(tlsSkipVerify=True),
        "agent": {"enabled": False},
        "serviceAccount": {"create": False, "name": "tracing"},
    },
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    values = CASES[request.param]
    return request.param, values, ds.render(values)


def _pods(r: ds.Rendered) -> list[dict]:
    return [d for d in r.docs if d["kind"] in ("StatefulSet", "Deployment", "DaemonSet", "Job", "CronJob")]


def _containers(r: ds.Rendered):
    """Every container, init containers (the policy step of the rollover
    init hook) included."""
    for wl in _pods(r):
        spec = ds.pod_spec(wl)
        for c in spec.get("initContainers", []) + spec["containers"]:
            yield wl, c


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------

def test_every_manifest_is_valid_for_kubernetes(case):
    name, values, r = case
    for doc in r.docs:
        if doc["kind"] == "ServiceMonitor":
            continue
        if doc["kind"] == "HorizontalPodAutoscaler":
            # autoscaling/v2 from 1.23; on 1.22 the chart renders v2beta2
            # (.Capabilities), whose spec is the same.
            assert doc["apiVersion"] == "autoscaling/v2"
            ds.validate_k8s(doc, versions=(ds.K8S_VERSIONS[1],))
            ds.validate_k8s(dict(doc, apiVersion="autoscaling/v2beta2"), versions=(ds.K8S_VERSIONS[0],))
            continue
        ds.validate_k8s(doc)
        assert doc["metadata"]["namespace"] == ds.NAMESPACE


def test_helm_lint_strict(case):
    name, values, _ = case
    report = ds.helm_lint(values, strict=True, kube_version="v" + ds.K8S_VERSIONS[0])
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems


def test_objects_per_mode(case):
    """No PersistentVolumeClaim and no data volume: nothing is stored in
    the pod. Distributed: collectors and query are Deployments of their
    own, scaled by replicas or the HorizontalPodAutoscaler."""
    name, values, r = case
    v = ds.merged_values(values)
    for wl in _pods(r):
        assert not wl["spec"].get("volumeClaimTemplates"), wl["metadata"]["name"]
        vols = {x["name"] for x in ds.pod_spec(wl).get("volumes", [])}
        if wl["kind"] != "DaemonSet":
            assert "data" not in vols, wl["metadata"]["name"]
            for c in ds.pod_spec(wl)["containers"]:
                assert not any(a.startswith("--data-dir") for a in c["args"])
                assert "data" not in {m["name"] for m in c.get("volumeMounts", [])}
    if v["mode"] == "distributed":
        assert not r.all("StatefulSet")
        coll = r.get("Deployment", "waymark-collector")
        query = r.get("Deployment", "waymark-query")
        [cc] = ds.pod_spec(coll)["containers"]
        [qc] = ds.pod_spec(query)["containers"]
        assert cc["args"][0] == "collector" and qc["args"][0] == "query"
        auto = v["collector"]["autoscaling"]
        if auto["enabled"]:
            assert "replicas" not in coll["spec"]
            hpa = r.get("HorizontalPodAutoscaler", "waymark-collector")
            assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                     "name": "waymark-collector"}
            assert hpa["spec"]["minReplicas"] == auto["minReplicas"]
            assert hpa["spec"]["maxReplicas"] == auto["maxReplicas"]
            assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == \
                auto["targetCPUUtilizationPercentage"]
        else:
            assert coll["spec"]["replicas"] == v["collector"]["replicas"]
            assert not r.all("HorizontalPodAutoscaler")
        assert query["spec"]["replicas"] == v["query"]["replicas"]
        assert ds.pod_spec(query).get("nodeSelector", {}) == v["query"]["nodeSelector"]
        assert bool(r.all("DaemonSet")) == v["agent"]["enabled"]
        pdb = r.all("PodDisruptionBudget")
        if pdb:
            assert ds.selects(pdb[0]["spec"]["selector"]["matchLabels"], ds.pod_labels(coll))
    else:
        sts = r.get("StatefulSet", "waymark")
        assert sts["spec"]["replicas"] == 1
        assert not r.all("Deployment") and not r.all("HorizontalPodAutoscaler")
    assert "elasticsearch" in r.notes.lower() and URL in r.notes


def test_security_context_and_resources(case):
    name, values, r = case
    for wl, c in _containers(r):
        pod = ds.pod_spec(wl)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsUser"] == 10001
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]


def test_services_reach_the_right_pods(case):
    name, values, r = case
    for svc in r.all("Service"):
        targets = [wl for wl in r.workloads() if ds.selects(svc["spec"]["selector"], ds.pod_labels(wl))]
        assert len(targets) == 1, f"Service {svc['metadata']['name']} selects {len(targets)} workloads"
        for sp in svc["spec"]["ports"]:
            hits = [cp for c in ds.long_running_containers(targets[0]) for cp in c.get("ports", [])
                    if cp["name"] == sp["targetPort"]]
            assert len(hits) == 1 and hits[0]["containerPort"] == sp["port"], sp
    if values.get("mode") == "distributed":
        q = r.get("Service", "waymark-query")
        assert ds.selects(q["spec"]["selector"], ds.pod_labels(r.get("Deployment", "waymark-query")))
        c = r.get("Service", "waymark-collector")
        assert ds.selects(c["spec"]["selector"], ds.pod_labels(r.get("Deployment", "waymark-collector")))


def test_agents_forward_to_the_headless_collector_service(case):
    """Distributed: the collector Deployment's pods behind a headless
    Service the agents resolve to every collector."""
    name, values, r = case
    coll = r.all("Deployment", "waymark-collector")
    ds.check_collector_headless_service(r, values, coll[0] if coll else None)


def test_probes_ask_the_admin_port(case):
    name, values, r = case
    for wl in r.workloads():
        for c in ds.long_running_containers(wl):
            admin = int(ds.flag_values(c["args"])["admin-listen"].rsplit(":", 1)[1])
            for kind, path in (("startupProbe", "/ready"), ("readinessProbe", "/ready"),
                               ("livenessProbe", "/health")):
                assert c[kind]["httpGet"]["path"] == path
                assert ds.container_port(c, c[kind]["httpGet"]["port"])["containerPort"] == admin


@functools.lru_cache(maxsize=None)
def _accepted_flags(*sub: str) -> frozenset[str]:
    out = subprocess.run([str(ds.waymark_bin()), *sub, "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return frozenset(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)", out.stdout, re.M))


def _subcommand(args: list[str]) -> tuple[str, ...]:
    return tuple(args[:2]) if args[0] == "es-rollover" else (args[0],)


def test_every_rendered_flag_is_accepted_by_the_binary(case):
    """Each flag of each container (workloads and jobs) is one its
    subcommand's --help lists: the chart templates nothing the binary
    does not accept."""
    if not ds.waymark_bin().exists():
        pytest.fail(f"waymark binary not found at {ds.waymark_bin()}")
    name, values, r = case
    for wl, c in _containers(r):
        accepted = _accepted_flags(*_subcommand(c["args"]))
        for a in c["args"]:
            if a.startswith("--"):
                assert a.split("=", 1)[0] in accepted, (wl["metadata"]["name"], a)


def test_values_reach_the_es_flags(case):
    name, values, r = case
    v = ds.merged_values(values)
    e = v["storage"]["elasticsearch"]
    want = {
        "storage-backend": "elasticsearch", "es-urls": ",".join(e["urls"]),
        "es-tls-skip-verify": str(e["tlsSkipVerify"]).lower(),
        "es-index-date-separator": e["indexDateSeparator"],
        "es-span-rollover": e["spanRollover"], "es-service-rollover": e["serviceRollover"],
        "es-use-aliases": str(e["useAliases"]).lower(),
        "es-tags-as-fields-all": str(e["tagsAsFieldsAll"]).lower(),
        "es-create-index-templates": str(e["createIndexTemplates"]).lower(),
        "es-shards": str(e["shards"]), "es-replicas": str(e["replicas"]),
        "es-max-span-age": e["maxSpanAge"], "es-timeout": e["timeout"], "es-gzip": str(e["gzip"]).lower(),
    }
    if e["indexPrefix"]:
        want["es-index-prefix"] = e["indexPrefix"]
    if e["username"]:
        want["es-username"] = e["username"]
    seen = 0
    for wl, c in _containers(r):
        flags = ds.flag_values(c["args"])
        if c["args"][0] == "agent":
            assert not [a for a in c["args"] if a.startswith("--es-") or a.startswith("--storage-backend")]
            assert not [x for x in c.get("env", []) if x["name"].startswith("WAYMARK_ES_")]
            continue
        seen += 1
        for k, val in want.items():
            assert flags.get(k) == val, (wl["metadata"]["name"], k, flags.get(k), val)
        if not e["indexPrefix"]:
            assert "es-index-prefix" not in flags
        # Only the store's writers (all-in-one, collectors) delete expired
        # indices, at the chart's retention.
        if c["args"][0] in ("all-in-one", "collector"):
            assert flags["es-delete-expired-indices"] == str(e["deleteExpiredIndices"]).lower()
            if e["deleteExpiredIndices"]:
                assert flags["retention"] == v["storage"]["embedded"]["retention"]
            else:
                assert "retention" not in flags
        else:
            assert "es-delete-expired-indices" not in flags and "retention" not in flags
        assert "es-password" not in flags, "the password never appears in the arguments"
        assert flags["log-level"] == v["logLevel"]
    assert seen >= 1 + (v["mode"] == "distributed")


def test_secret_references_are_the_values_given(case):
    """Kubernetes only notices a wrong Secret name or key when the pod
    starts (CreateContainerConfigError), so the chart must pass exactly
    what was given: the secretKeyRef of WAYMARK_ES_PASSWORD and the API
    key's Secret volume carry the values' name and key, in every container
    that talks to the cluster."""
    name, values, r = case
    e = ds.merged_values(values)["storage"]["elasticsearch"]
    for wl, c in _containers(r):
        if c["args"][0] == "agent":
            continue
        env = {x["name"]: x for x in c.get("env", [])}
        if e["passwordSecret"]:
            assert env["WAYMARK_ES_PASSWORD"]["valueFrom"] == {"secretKeyRef": e["passwordSecret"]}
        else:
            assert "WAYMARK_ES_PASSWORD" not in env
        vols = {x["name"]: x for x in ds.pod_spec(wl).get("volumes", [])}
        mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
        flags = ds.flag_values(c["args"])
        cc = e["clientCertSecret"]
        if cc["name"]:
            vol = vols["es-client-cert"]["secret"]
            assert vol["secretName"] == cc["name"]
            assert vol["items"] == [{"key": cc["certKey"], "path": cc["certKey"]},
                                    {"key": cc["keyKey"], "path": cc["keyKey"]}]
            m = mounts["es-client-cert"]
            assert m["readOnly"] is True
            assert flags["es-client-cert-file"] == f"{m['mountPath']}/{cc['certKey']}"
            assert flags["es-client-key-file"] == f"{m['mountPath']}/{cc['keyKey']}"
        else:
            assert "es-client-cert" not in vols
            assert "es-client-cert-file" not in flags and "es-client-key-file" not in flags
        for key, flag, vol_name, kind in (("apiKeySecret", "es-api-key-file", "es-api-key", "secret"),
                                          ("bearerTokenSecret", "es-bearer-token-file", "es-bearer-token", "secret"),
                                          ("caConfigMap", "es-ca-file", "es-ca", "configMap")):
            ref = e[key]
            if not ref:
                assert flag not in flags and vol_name not in vols
                continue
            vol = vols[vol_name][kind]
            assert vol.get("secretName", vol.get("name")) == ref["name"]
            assert vol["items"] == [{"key": ref["key"], "path": ref["key"]}]
            # The flag names the file the mount puts there.
            m = mounts[vol_name]
            assert m["readOnly"] is True
            assert flags[flag] == f"{m['mountPath']}/{ref['key']}", (wl["metadata"]["name"], flag)


def test_index_jobs(case):
    name, values, r = case
    v = ds.merged_values(values)
    e = v["storage"]["elasticsearch"]
    cron = {c["metadata"]["name"]: c for c in r.all("CronJob")}
    want = set()
    if v["esIndexCleaner"]["enabled"]:
        want.add("waymark-es-index-cleaner")
        job = cron["waymark-es-index-cleaner"]
        assert job["spec"]["schedule"] == v["esIndexCleaner"]["schedule"]
        [c] = ds.pod_spec(job)["containers"]
        assert c["args"][:2] == ["es-cleaner", str(v["esIndexCleaner"]["numberOfDays"])]
    if v["esRollover"]["enabled"]:
        want.add("waymark-es-rollover")
        [c] = ds.pod_spec(cron["waymark-es-rollover"])["containers"]
        assert c["args"][:3] == ["es-rollover", "rollover", f"--max-age={v['esRollover']['maxAge']}"]
        if v["esRollover"]["lookback"]:
            want.add("waymark-es-lookback")
            [c] = ds.pod_spec(cron["waymark-es-lookback"])["containers"]
            assert c["args"][:3] == ["es-rollover", "lookback", f"--older-than={v['esRollover']['lookback']}"]
    assert set(cron) == want
    for job in cron.values():
        assert job["spec"]["concurrencyPolicy"] == "Forbid"
        assert ds.pod_spec(job)["restartPolicy"] == "OnFailure"
    init = r.all("Job", "waymark-es-rollover-init")
    assert bool(init) == e["useAliases"]
    pol = v["esRollover"]["policy"]
    if init:
        ann = init[0]["metadata"]["annotations"]
        assert ann["helm.sh/hook"] == "pre-install,pre-upgrade"
        [c] = ds.pod_spec(init[0])["containers"]
        assert c["args"][:2] == ["es-rollover", "init"]
        # The lifecycle policy goes in first (an init container), then init
        # names it in the templates on Elasticsearch; on OpenSearch the ISM
        # policy attaches itself by its index patterns.
        before = ds.pod_spec(init[0]).get("initContainers", [])
        if pol["enabled"]:
            [p] = before
            assert p["args"][:5] == ["es-rollover", "policy", f"--name={pol['name']}",
                                     f"--rollover-after={pol['rolloverAfter']}",
                                     f"--delete-after={pol['deleteAfter']}"]
            assert p.get("volumeMounts") == c.get("volumeMounts")
            assert p.get("env") == c.get("env")
            ilm = [a for a in c["args"] if a.startswith("--ilm-policy")]
            assert ilm == ([f"--ilm-policy={pol['name']}"] if pol["distribution"] == "elasticsearch" else [])
            assert not cron.get("waymark-es-rollover") and not cron.get("waymark-es-lookback")
        else:
            assert not before
            assert not [a for a in c["args"] if a.startswith("--ilm-policy")]
        # The hook runs before the chart's ServiceAccount exists.
        assert "serviceAccountName" not in ds.pod_spec(init[0]) or not v["serviceAccount"]["create"]


def test_adaptive_flags_on_the_writers_only(case):
    """Adaptive sampling runs in the store's writers (all-in-one, the
    collector Deployment) with the values' flags, with Elasticsearch as
    with the embedded store; query, agents and jobs get none. The NOTES
    name the sampling index when it is on."""
    name, values, r = case
    v = ds.merged_values(values)
    a = v["sampling"]["adaptive"]
    writers = 0
    for wl, c in _containers(r):
        flags = ds.flag_values(c["args"])
        if c["args"][0] in ("all-in-one", "collector"):
            writers += 1
            assert flags["sampling-adaptive"] == str(a["enabled"]).lower()
            assert flags["adaptive-calculation-interval"] == a["calculationInterval"]
            assert flags["adaptive-lookback"] == a["lookback"]
        else:
            assert not [x for x in c["args"] if "adaptive" in x], (wl["metadata"]["name"], c["args"][0])
    assert writers == 1
    prefix = v["storage"]["elasticsearch"]["indexPrefix"]
    index = (prefix.rstrip("-") + "-" if prefix else "") + "waymark-sampling"
    assert (index in r.notes) == a["enabled"], r.notes


def test_service_monitor_finds_every_admin_port(case):
    name, values, r = case
    if not r.all("ServiceMonitor"):
        pytest.skip("no ServiceMonitor in this case")
    sm = r.get("ServiceMonitor", "waymark")
    allowed = sm["spec"]["selector"]["matchExpressions"][0]["values"]
    scraped = {s["metadata"]["name"] for s in r.all("Service")
               if s["metadata"]["labels"]["app.kubernetes.io/component"] in allowed
               and any(p["name"] == "admin" for p in s["spec"]["ports"])}
    assert scraped == {"waymark-collector", "waymark-query", "waymark-agent"}


# --------------------------------------------------------------------------
# Values the chart refuses
# --------------------------------------------------------------------------

GOOD = [
    {"storage": es()},
    {"storage": es(username="elastic", passwordSecret=PASSWORD, caConfigMap=CA)},
    {"storage": {"type": "elasticsearch", "elasticsearch": {"urls": ["http://a:9200", "https://b.example:443/es"]}}},
    {"mode": "distributed", "storage": es(), "collector": {"replicas": 4}},
    {"mode": "distributed", "storage": es(useAliases=True), "collector": {"autoscaling": {"enabled": True}},
     "esRollover": {"enabled": True, "lookback": "72h", "schedule": "*/30 * * * *"}},
]

GOOD += [
    {"storage": es(), "sampling": {"adaptive": {"enabled": True}}},
    {"mode": "distributed", "storage": es(useAliases=True), "collector": {"autoscaling": {"enabled": True}},
     "sampling": {"adaptive": {"enabled": True, "targetSamplesPerSecond": 2}}},
    {"storage": es(useAliases=True), "esRollover": {"policy": {"enabled": True}}},
    {"storage": es(useAliases=True), "esRollover": {"policy": {"enabled": True, "distribution": "opensearch",
                                                               "rolloverAfter": "6h", "deleteAfter": "30d"}}},
]

BAD_SCHEMA = [
    ({"storage": {"type": "mongo"}}, "/storage/type"),
    ({"storage": {"type": "elasticsearch"}}, "/storage/elasticsearch/urls"),
    ({"storage": es(username="u", passwordSecret={"name": "es-credentials"})},
     "/storage/elasticsearch/passwordSecret': missing property 'key'"),
    ({"storage": es(caConfigMap={"key": "ca.crt"})}, "/storage/elasticsearch/caConfigMap': missing property 'name'"),
    ({"storage": es(apiKeySecret={"name": "Bad_Name", "key": "k"})}, "/storage/elasticsearch/apiKeySecret/name"),
    ({"storage": {"type": "elasticsearch", "elasticsearch": {"urls": ["es:9200"]}}}, "/storage/elasticsearch/urls/0"),
    ({"storage": {"type": "elasticsearch", "elasticsearch": {"urls": ["ftp://es:21"]}}},
     "/storage/elasticsearch/urls/0"),
    ({"storage": {"type": "elasticsearch", "elasticsearch": {"urls": "http://es:9200"}}},
     "/storage/elasticsearch/urls"),
    ({"storage": es(passwordSecret=PASSWORD)}, "/storage/elasticsearch/username"),
    ({"storage": es(username="u", passwordSecret=PASSWORD, apiKeySecret=API_KEY)},
     "/storage/elasticsearch/apiKeySecret"),
    ({"storage": es(spanRollover="week")}, "/storage/elasticsearch/spanRollover"),
    ({"storage": es(tlsSkipVerify="yes")}, "/storage/elasticsearch/tlsSkipVerify"),
    ({"storage": es(shards=0)}, "/storage/elasticsearch/shards"),
    ({"storage": es(maxSpanAge="3 days")}, "/storage/elasticsearch/maxSpanAge"),
    ({"storage": es(indexPrefix="Prod")}, "/storage/elasticsearch/indexPrefix"),
    ({"storage": es(user="x")}, "user"),
    ({"storage": es(), "esIndexCleaner": {"numberOfDays": 0}}, "/esIndexCleaner/numberOfDays"),
    ({"storage": es(), "esIndexCleaner": {"schedule": "daily"}}, "/esIndexCleaner/schedule"),
    ({"storage": es(), "esRollover": {"maxAge": "1 day"}}, "/esRollover/maxAge"),
    ({"storage": es(), "collector": {"autoscaling": {"maxReplicas": 0}}}, "/collector/autoscaling/maxReplicas"),
    ({"storage": es(bearerTokenSecret={"name": "es-token"})},
     "/storage/elasticsearch/bearerTokenSecret': missing property 'key'"),
    ({"storage": es(apiKeySecret=API_KEY, bearerTokenSecret=TOKEN)}, "/storage/elasticsearch/bearerTokenSecret"),
    ({"storage": es(username="u", passwordSecret=PASSWORD, bearerTokenSecret=TOKEN)},
     "/storage/elasticsearch/bearerTokenSecret"),
    ({"storage": es(username="u", bearerTokenSecret=TOKEN)}, "/storage/elasticsearch/username"),
    ({"storage": es(username="u", apiKeySecret=API_KEY)}, "/storage/elasticsearch/username"),
    ({"storage": es(clientCertSecret={"name": "c", "certKey": ""})}, "/storage/elasticsearch/clientCertSecret/certKey"),
    ({"storage": es(clientCertSecret={"name": "Bad_Name"})}, "/storage/elasticsearch/clientCertSecret/name"),
    ({"storage": es(clientCertSecret={"name": "c", "cert": "x"})}, "cert"),
    ({"storage": es(deleteExpiredIndices="yes")}, "/storage/elasticsearch/deleteExpiredIndices"),
    ({"storage": es(useAliases=True, deleteExpiredIndices=True)}, "/storage/elasticsearch/deleteExpiredIndices"),
    ({"storage": es(useAliases=True), "esRollover": {"enabled": True, "policy": {"enabled": True}}},
     "/esRollover/enabled"),
    ({"storage": es(), "esRollover": {"policy": {"enabled": True}}}, "/storage/elasticsearch/useAliases"),
    ({"esRollover": {"policy": {"enabled": True}}}, "/storage/type"),
    ({"storage": es(useAliases=True), "esRollover": {"policy": {"enabled": True, "distribution": "solr"}}},
     "/esRollover/policy/distribution"),
    ({"storage": es(useAliases=True), "esRollover": {"policy": {"enabled": True, "rolloverAfter": "1 day"}}},
     "/esRollover/policy/rolloverAfter"),
    ({"storage": es(useAliases=True), "esRollover": {"policy": {"enabled": True, "deleteAfter": "2w"}}},
     "/esRollover/policy/deleteAfter"),
    ({"storage": es(useAliases=True), "esRollover": {"policy": {"enabled": True, "name": "Bad Name"}}},
     "/esRollover/policy/name"),
    ({"storage": es(useAliases=True), "esRollover": {"policy": {"enabled": True, "phases": {}}}}, "phases"),
    # Embedded keeps refusing what it always did.
    ({"mode": "distributed", "collector": {"autoscaling": {"enabled": True}}}, "/collector/autoscaling/enabled"),
    ({"mode": "distributed", "collector": {"replicas": 2}}, "/collector/replicas"),
]

BAD_TEMPLATE = [
    ({"storage": es(), "esRollover": {"enabled": True}}, "esRollover.enabled needs storage.elasticsearch.useAliases"),
    ({"storage": es(useAliases=True), "esIndexCleaner": {"enabled": True}}, "esIndexCleaner deletes dated indices"),
    ({"esIndexCleaner": {"enabled": True}}, "the index jobs are for storage.type elasticsearch"),
    ({"storage": es(), "collector": {"autoscaling": {"enabled": True}}}, "applies to mode distributed"),
    ({"storage": es(), "extraArgs": ["--es-shards=2"]}, "extraArgs: --es-shards is already set by the chart"),
    ({"storage": es(useAliases=True), "esRollover": {"policy": {"enabled": True, "rolloverAfter": "7d",
                                                               "deleteAfter": "1d"}}},
     'esRollover.policy.deleteAfter "1d" is shorter than rolloverAfter "7d"'),
    ({"storage": es(useAliases=True), "extraArgs": ["--ilm-policy=x"], "esRollover": {"policy": {"enabled": True}}},
     "extraArgs: --ilm-policy is already set by the chart"),
]


def _ids(cases):
    return [json.dumps(c[0] if isinstance(c, tuple) else c)[:70] for c in cases]


@pytest.mark.parametrize("values", GOOD, ids=_ids(GOOD))
def test_good_values(values):
    jsonschema.Draft7Validator(SCHEMA).validate(ds.merged_values(values))
    assert ds.render(values).docs


@pytest.mark.parametrize("values,where", BAD_SCHEMA, ids=_ids(BAD_SCHEMA))
def test_bad_values_fail_the_install(values, where):
    import helm_python
    assert list(jsonschema.Draft7Validator(SCHEMA).iter_errors(ds.merged_values(values)))
    with pytest.raises(helm_python.HelmValuesError) as e:
        ds.render(values)
    assert where in str(e.value), str(e.value)


@pytest.mark.parametrize("values,message", BAD_TEMPLATE, ids=_ids(BAD_TEMPLATE))
def test_template_refusals(values, message):
    import helm_python
    with pytest.raises(helm_python.HelmRenderError) as e:
        ds.render(values)
    assert message in str(e.value)


@pytest.mark.parametrize("values,message", [
    ({"storage": {"type": "mongo"}}, 'storage.type must be embedded or elasticsearch, not "mongo"'),
    ({"storage": {"type": "elasticsearch"}}, "storage.elasticsearch.urls: give the URLs"),
    ({"storage": {"type": "elasticsearch", "elasticsearch": {"urls": ["es:9200"]}}},
     '"es:9200" is not an http:// or https:// URL'),
    ({"storage": es(username="u", passwordSecret={"name": "es-credentials"})},
     "storage.elasticsearch.passwordSecret needs both name and key"),
    ({"storage": es(passwordSecret=PASSWORD)}, "passwordSecret needs storage.elasticsearch.username"),
    ({"storage": es(username="u", passwordSecret=PASSWORD, apiKeySecret=API_KEY)},
     "give one of passwordSecret (with username), apiKeySecret and bearerTokenSecret, "
     "not passwordSecret and apiKeySecret"),
    ({"storage": es(apiKeySecret=API_KEY, bearerTokenSecret=TOKEN)},
     "not apiKeySecret and bearerTokenSecret; Waymark refuses two kinds of credentials"),
    ({"storage": es(username="u", bearerTokenSecret=TOKEN)},
     "storage.elasticsearch.username is for basic auth (passwordSecret)"),
    ({"storage": es(bearerTokenSecret={"key": "token"})}, "storage.elasticsearch.bearerTokenSecret needs both name and key"),
    ({"storage": es(clientCertSecret={"name": "c", "keyKey": ""})},
     "storage.elasticsearch.clientCertSecret needs certKey and keyKey"),
    ({"storage": es(clientCertSecret={"name": "c", "keyKey": "tls.crt"})},
     "certKey and keyKey must be different keys"),
    ({"storage": es(useAliases=True, deleteExpiredIndices=True)},
     "storage.elasticsearch.deleteExpiredIndices deletes dated indices"),
    ({"storage": es(useAliases=True), "esRollover": {"enabled": True, "policy": {"enabled": True}}},
     "esRollover.policy.enabled and esRollover.enabled: choose one"),
    ({"storage": es(), "esRollover": {"policy": {"enabled": True}}},
     "esRollover.policy.enabled needs storage.elasticsearch.useAliases: true"),
    ({"esRollover": {"policy": {"enabled": True}}}, "the index jobs are for storage.type elasticsearch"),
    ({"storage": es(useAliases=True), "esRollover": {"policy": {"enabled": True, "distribution": "solr"}}},
     'esRollover.policy.distribution must be elasticsearch or opensearch, not "solr"'),
])
def test_template_checks_without_the_schema(tmp_path, values, message):
    """`helm install --skip-schema-validation` still meets these."""
    import shutil

    import helm_python
    chart = tmp_path / "waymark"
    shutil.copytree(ds.CHART_DIR, chart)
    (chart / "values.schema.json").unlink()
    with pytest.raises(helm_python.HelmRenderError) as e:
        ds.render(values, chart_dir=chart)
    assert message in str(e.value)


def test_schema_defaults_keep_tls_verification_on():
    props = SCHEMA["properties"]["storage"]["properties"]["elasticsearch"]["properties"]
    assert props["tlsSkipVerify"]["default"] is False
    assert ds.default_values()["storage"]["elasticsearch"]["tlsSkipVerify"] is False
    for ref in ("passwordSecret", "apiKeySecret", "bearerTokenSecret", "caConfigMap"):
        assert props[ref]["then"]["required"] == ["name", "key"]
    assert props["clientCertSecret"]["then"]["required"] == ["name", "certKey", "keyKey"]
    cc = ds.default_values()["storage"]["elasticsearch"]["clientCertSecret"]
    assert cc == {"name": "", "certKey": "tls.crt", "keyKey": "tls.key"}


# --------------------------------------------------------------------------
# Running the rendered containers
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    good = make_ca_and_server_cert(d, "good")
    other = make_ca_and_server_cert(d, "other")
    client = make_client_cert(d, "good")
    return {"ca": good[0].read_text(), "cert": good[1], "key": good[2], "other_ca": other[0].read_text(),
            "ca_path": good[0], "client_cert": client[0].read_text(), "client_key": client[1].read_text()}


@pytest.fixture
def standins():
    made: list[StandInCluster] = []

    def make(**kw) -> StandInCluster:
        port, = ds.free_ports(1)
        s = StandInCluster(port, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def _otlp(service: str, name: str) -> dict:
    now = time.time_ns()
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": [{
            "traceId": secrets.token_hex(16), "spanId": secrets.token_hex(8), "name": name, "kind": 2,
            "startTimeUnixNano": str(now - 2_000_000), "endTimeUnixNano": str(now)}]}]}]}


def _wait_services(port: int, want: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        r = requests.get(f"http://127.0.0.1:{port}/api/services", timeout=5)
        if r.status_code == 200 and want in (r.json().get("data") or []):
            return
        last = (r.status_code, r.text[:200])
        time.sleep(0.2)
    raise AssertionError(f"service {want} not listed by the query API: {last}")


def _assert_root_fs_untouched(fc: ds.FakeCluster) -> None:
    """Nothing was written outside the volumes (the root filesystem is
    read-only; with Elasticsearch the pods have no data volume)."""
    assert not (fc.root / "image-root").exists(), list((fc.root / "image-root").rglob("*"))


def test_all_in_one_with_password_secret_and_ca(cluster, standins, pki):
    """All-in-one over HTTPS with the CA from the ConfigMap and the password
    from the Secret (WAYMARK_ES_PASSWORD through secretKeyRef). Started
    before the cluster is up, it stays alive and not ready; once the
    cluster answers, every probe passes and spans arrive in the cluster."""
    r = ds.render({"storage": es(username="elastic", passwordSecret=PASSWORD, caConfigMap=CA)})
    sts = r.get("StatefulSet", "waymark")
    [c] = ds.long_running_containers(sts)
    port, = ds.free_ports(1)
    fc = cluster(r.docs)
    fc.secrets = {"es-credentials": {"password": "s3cret-from-the-secret"}}
    fc.config_maps = {"es-ca": {"ca.crt": pki["ca"]}}
    fc.es_url = f"https://127.0.0.1:{port}"
    rc = fc.start(sts, c)
    admin = rc.local_port("admin")
    ds.wait_http(f"http://127.0.0.1:{admin}/health", 200, proc=rc)
    assert requests.get(f"http://127.0.0.1:{admin}/ready", timeout=5).status_code == 503
    deadline = time.monotonic() + 10
    while "elasticsearch not available yet" not in rc.log_tail() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "elasticsearch not available yet" in rc.log_tail()

    s = StandInCluster(port, username="elastic", password="s3cret-from-the-secret",
                       tls=(pki["cert"], pki["key"]))
    try:
        ds.check_probes(rc)
        otlp = fc.resolve_service("waymark-collector.tracing.svc", 4318)
        got = requests.post(f"http://127.0.0.1:{otlp}/v1/traces", json=_otlp("checkout", "GET /cart"), timeout=10)
        assert got.status_code == 200, got.text
        _wait_services(fc.resolve_service("waymark-query.tracing.svc", 16686), "checkout")
        assert any("-span-" in i for i, _ in s.docs)
        assert any(p.startswith("/_index_template/") for m, p in s.requests if m == "PUT")
        _assert_root_fs_untouched(fc)
    finally:
        s.close()


def test_bearer_token_client_cert_and_expired_indices(cluster, standins, pki):
    """A cluster that asks for a client certificate and a bearer token:
    all-in-one with the token and the certificate from their Secrets
    (mounted files, a kubernetes.io/tls Secret's keys) and the CA from its
    ConfigMap gets ready and stores spans; with deleteExpiredIndices it
    deletes the dated indices older than the chart's retention (3d) at
    start-up and keeps the newer ones."""
    values = {"storage": {"type": "elasticsearch", "embedded": {"retention": "3d"},
                          "elasticsearch": {"urls": [URL], "bearerTokenSecret": TOKEN,
                                            "clientCertSecret": CLIENT_CERT, "caConfigMap": CA,
                                            "deleteExpiredIndices": True}}}
    r = ds.render(values)
    s = standins(bearer_token="t0ken-from-the-secret", tls=(pki["cert"], pki["key"]), client_ca=pki["ca_path"])
    old = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 5 * 86400))
    recent = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 1 * 86400))
    for kind in ("span", "service"):
        s.add_index(f"jaeger-{kind}-{old}", docs=3)
        s.add_index(f"jaeger-{kind}-{recent}", docs=3)
    fc = cluster(r.docs)
    fc.secrets = {"es-token": {"token": "t0ken-from-the-secret\n"},
                  "es-client-cert": {"tls.crt": pki["client_cert"], "tls.key": pki["client_key"]}}
    fc.config_maps = {"es-ca": {"ca.crt": pki["ca"]}}
    fc.es_url = s.url
    sts = r.get("StatefulSet", "waymark")
    rc = fc.start(sts, ds.long_running_containers(sts)[0])
    ds.check_probes(rc)
    otlp = fc.resolve_service("waymark-collector.tracing.svc", 4318)
    got = requests.post(f"http://127.0.0.1:{otlp}/v1/traces", json=_otlp("ledger", "POST /entry"), timeout=10)
    assert got.status_code == 200, got.text
    _wait_services(fc.resolve_service("waymark-query.tracing.svc", 16686), "ledger")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and f"jaeger-span-{old}" in s.indices:
        time.sleep(0.2)
    assert f"jaeger-span-{old}" not in s.indices and f"jaeger-service-{old}" not in s.indices, rc.log_tail()
    assert f"jaeger-span-{recent}" in s.indices and f"jaeger-service-{recent}" in s.indices
    _assert_root_fs_untouched(fc)


def test_client_certificate_is_required_by_the_cluster(cluster, standins, pki):
    """The same cluster without the client certificate: the handshake
    fails and the pod stays not ready, so the certificate the chart mounts
    is what lets it in."""
    r = ds.render({"storage": es(caConfigMap=CA)})
    s = standins(tls=(pki["cert"], pki["key"]), client_ca=pki["ca_path"])
    fc = cluster(r.docs)
    fc.config_maps = {"es-ca": {"ca.crt": pki["ca"]}}
    fc.es_url = s.url
    sts = r.get("StatefulSet", "waymark")
    rc = fc.start(sts, ds.long_running_containers(sts)[0])
    admin = rc.local_port("admin")
    ds.wait_http(f"http://127.0.0.1:{admin}/health", 200, proc=rc)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "elasticsearch not available yet" not in rc.log_tail():
        time.sleep(0.1)
    assert "elasticsearch not available yet" in rc.log_tail()
    assert requests.get(f"http://127.0.0.1:{admin}/ready", timeout=5).status_code == 503


def test_jobs_and_collectors_with_client_cert_under_custom_keys(cluster, standins, pki):
    """A client certificate Secret with keys of its own (certKey, keyKey)
    and a password: the rollover init hook, the collector and the rollover
    CronJob all get through a cluster that requires the certificate."""
    values = {"mode": "distributed",
              "storage": es(username="elastic", passwordSecret=PASSWORD, caConfigMap=CA, useAliases=True,
                            clientCertSecret={"name": "corp-client", "certKey": "client.pem",
                                              "keyKey": "client-key.pem"}),
              "esRollover": {"enabled": True}}
    r = ds.render(values)
    s = standins(username="elastic", password="pw", tls=(pki["cert"], pki["key"]), client_ca=pki["ca_path"])
    fc = cluster(r.docs)
    fc.secrets = {"es-credentials": {"password": "pw"},
                  "corp-client": {"client.pem": pki["client_cert"], "client-key.pem": pki["client_key"]}}
    fc.config_maps = {"es-ca": {"ca.crt": pki["ca"]}}
    fc.es_url = s.url
    code, out = fc.run_job(r.get("Job", "waymark-es-rollover-init"))
    assert code == 0, out
    assert s.holders("jaeger-span-write") == ["jaeger-span-000001"]
    coll = r.get("Deployment", "waymark-collector")
    ds.check_probes(fc.start(coll, ds.pod_spec(coll)["containers"][0]))
    code, out = fc.run_job(r.get("CronJob", "waymark-es-rollover"))
    assert code == 0, out
    assert "jaeger-span-000002" in s.holders("jaeger-span-write")


def test_distributed_with_api_key_end_to_end(cluster, standins):
    """Collector and query Deployments and an agent, the API key from its
    Secret mounted as a file: a span sent to the agent reaches the cluster
    through the collector and is listed by the query Deployment."""
    values = {"mode": "distributed", "storage": es(apiKeySecret=API_KEY, indexPrefix="prod")}
    r = ds.render(values)
    key = "aWQ6c2VjcmV0LWtleQ=="
    s = standins(api_key=key)
    fc = cluster(r.docs)
    fc.secrets = {"es-api-key": {"api-key": key + "\n"}}
    fc.es_url = s.url
    coll = r.get("Deployment", "waymark-collector")
    query = r.get("Deployment", "waymark-query")
    c = fc.start(coll, ds.pod_spec(coll)["containers"][0])
    q = fc.start(query, ds.pod_spec(query)["containers"][0])
    ds.check_probes(c)
    ds.check_probes(q)
    agent_ds = r.get("DaemonSet", "waymark-agent")
    a = fc.start(agent_ds, ds.pod_spec(agent_ds)["containers"][0])
    ds.check_probes(a)
    port = fc.resolve_service("waymark-agent.tracing.svc", 4318)
    got = requests.post(f"http://127.0.0.1:{port}/v1/traces", json=_otlp("payment", "POST /pay"), timeout=10)
    assert got.status_code == 200, got.text
    _wait_services(fc.resolve_service("waymark-query.tracing.svc", 16686), "payment", timeout=30)
    assert all(i.startswith("prod-jaeger-") for i, _ in s.docs), s.docs
    _assert_root_fs_untouched(fc)
    assert c.alive() and q.alive()


def test_agent_spreads_over_the_collector_pods(cluster, standins):
    """Two collector pods behind the headless Service: the agent's
    --collector name resolves to both (the stand-in DNS gives one address
    per running pod), spans reach the cluster, and when one collector pod
    goes away the agent carries on with the other."""
    values = {"mode": "distributed", "storage": es(), "collector": {"replicas": 2}}
    r = ds.render(values)
    s = standins()
    fc = cluster(r.docs)
    fc.es_url = s.url
    coll = r.get("Deployment", "waymark-collector")
    pods = []
    for i in range(2):
        pod = dict(coll, metadata=dict(coll["metadata"], name=f"waymark-collector-{i}"))
        pods.append(fc.start(pod, ds.pod_spec(pod)["containers"][0]))
    for p in pods:
        ds.check_probes(p)
    agent_ds = r.get("DaemonSet", "waymark-agent")
    a = fc.start(agent_ds, ds.pod_spec(agent_ds)["containers"][0])
    ds.check_probes(a)
    targets = ds.flag_values(a.args)["collector"].split(",")
    assert sorted(targets) == sorted(f"127.0.0.1:{p.local_port('otlp-grpc')}" for p in pods)
    port = fc.resolve_service("waymark-agent.tracing.svc", 4318)

    def send_and_wait(service: str) -> None:
        got = requests.post(f"http://127.0.0.1:{port}/v1/traces", json=_otlp(service, "GET /"), timeout=10)
        assert got.status_code == 200, got.text
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with s.lock:
                if any(d.get("process", {}).get("serviceName") == service for _, d in s.docs):
                    return
            time.sleep(0.2)
        raise AssertionError(f"no span of {service} reached the cluster\n{a.log_tail()}")

    def received(p: ds.RunningContainer) -> float:
        text = requests.get(f"http://127.0.0.1:{p.local_port('admin')}/metrics", timeout=5).text
        return sum(float(ln.split()[-1]) for ln in text.splitlines()
                   if ln.startswith("waymark_spans_received_total"))

    send_and_wait("before")
    # Stop the collector the agent is talking to: it moves to the other.
    [used] = [p for p in pods if received(p) > 0]
    [other] = [p for p in pods if p is not used]
    used.stop()
    send_and_wait("after")
    assert received(other) > 0 and a.alive() and other.alive()


LEASE = "lease-adaptive-sampling-leader"


def test_adaptive_sampling_state_in_the_cluster(cluster, standins):
    """Adaptive sampling with two collector pods on one cluster: each
    writes its throughput to <prefix>waymark-sampling every interval
    (refresh=wait_for, one document per collector and interval), exactly
    one takes the lease and computes the probabilities document, the other
    reads it, and both sampling ports answer the same per-operation
    strategy for an operation that passed through only one of them."""
    adaptive = {"enabled": True, "calculationInterval": "1s", "lookback": "2s",
                "initialSamplingProbability": 0.02, "minSamplesPerSecond": 0.25}
    values = {"mode": "distributed", "storage": es(indexPrefix="prod"), "collector": {"replicas": 2},
              "sampling": {"adaptive": adaptive}}
    r = ds.render(values)
    assert "prod-waymark-sampling" in r.notes
    s = standins()
    fc = cluster(r.docs)
    fc.es_url = s.url
    coll = r.get("Deployment", "waymark-collector")
    flags = ds.flag_values(ds.pod_spec(coll)["containers"][0]["args"])
    assert flags["sampling-adaptive"] == "true"
    assert (flags["adaptive-calculation-interval"], flags["adaptive-lookback"]) == ("1s", "2s")
    pods = []
    for i in range(2):
        pod = dict(coll, metadata=dict(coll["metadata"], name=f"waymark-collector-{i}"))
        pods.append(fc.start(pod, ds.pod_spec(pod)["containers"][0]))
    for p in pods:
        ds.check_probes(p)
    index = "prod-waymark-sampling"

    # A root span of checkout "GET /cart" through the first pod only.
    got = requests.post(f"http://127.0.0.1:{pods[0].local_port('otlp-http')}/v1/traces",
                        json=_otlp("checkout", "GET /cart"), timeout=10)
    assert got.status_code == 200, got.text

    def state() -> tuple[dict, set[str]]:
        docs = s.docs_of(index)
        return docs, {d["collector"] for d in docs.values() if d.get("kind") == "throughput"}

    deadline = time.monotonic() + 20
    while True:
        docs, collectors = state()
        probs = docs.get("probabilities", {})
        if len(collectors) == 2 and LEASE in docs and \
                ("checkout", "GET /cart") in {(o["service"], o["operation"]) for o in probs.get("operations", [])}:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"sampling state incomplete: {json.dumps(docs)[:2000]}\n"
                                 f"{pods[0].log_tail()}\n{pods[1].log_tail()}")
        time.sleep(0.2)
    assert index in s.indices, "the sampling index was created"
    for doc_id, d in docs.items():
        if d.get("kind") == "throughput":
            assert doc_id == f"throughput-{d['collector']}-{d['start_ns']}", doc_id
    with s.lock:
        puts = [path for m, path in s.requests if m == "PUT" and f"/{index}/_doc/throughput-" in path]
    assert puts and all(path.endswith("?refresh=wait_for") for path in puts), puts

    # One leader: the lease's holder, one of the two, wrote every
    # probabilities document and every lease document, and keeps the lease
    # over the next intervals.
    holder = docs[LEASE]["holder"]
    assert holder in collectors and docs[LEASE]["kind"] == "lease"
    assert probs["collector"] == holder
    time.sleep(2.5)
    docs, _ = state()
    assert docs[LEASE]["holder"] == holder
    with s.lock:
        writers = {(doc_id, src.get("holder", src.get("collector"))) for i, doc_id, src in s.writes
                   if i == index and doc_id in ("probabilities", LEASE)}
    assert writers == {("probabilities", holder), (LEASE, holder)}, writers
    # The lease was renewed (if_seq_no) at least once, never re-created.
    with s.lock:
        lease_puts = [path for m, path in s.requests if m == "PUT" and f"/{LEASE}" in path]
    assert any("_doc/" + LEASE + "?if_seq_no=" in path and "&if_primary_term=1" in path for path in lease_puts), \
        lease_puts
    assert [path for path in lease_puts if "/_create/" in path and not path.endswith(LEASE)] == []

    # Both pods answer the leader's probabilities for checkout, the pod the
    # span never reached included, and the initial one for a service not
    # seen.
    answers = []
    for p in pods:
        port = p.local_port("sampling")
        deadline = time.monotonic() + 10
        while True:
            got = requests.get(f"http://127.0.0.1:{port}/sampling?service=checkout", timeout=10)
            assert got.status_code == 200, got.text
            ops = got.json()["operationSampling"]
            if [o["operation"] for o in ops["perOperationStrategies"]] == ["GET /cart"]:
                break
            assert time.monotonic() < deadline, got.text
            time.sleep(0.2)
        answers.append(ops)
        got = requests.get(f"http://127.0.0.1:{port}/sampling?service=x", timeout=10)
        assert got.status_code == 200, got.text
        other = got.json()["operationSampling"]
        assert other["defaultSamplingProbability"] == adaptive["initialSamplingProbability"], got.text
        assert other["defaultLowerBoundTracesPerSecond"] == adaptive["minSamplesPerSecond"], got.text
        assert other["perOperationStrategies"] == [], got.text
    assert answers[0]["defaultSamplingProbability"] == answers[1]["defaultSamplingProbability"]
    assert all(p.alive() for p in pods)
    _assert_root_fs_untouched(fc)


def test_rollover_jobs_against_the_cluster(cluster, standins, pki):
    """useAliases: the pre-install hook `es-rollover init` creates the
    aliases, the collector then starts ready, the rollover CronJob starts
    new write indices, and the lookback CronJob takes indices older than
    its cutoff out of the read aliases. Each exits 0."""
    values = {"mode": "distributed",
              "storage": es(username="elastic", passwordSecret=PASSWORD, caConfigMap=CA, useAliases=True),
              "esRollover": {"enabled": True, "maxAge": "1d", "lookback": "7d"}}
    r = ds.render(values)
    s = standins(username="elastic", password="pw", tls=(pki["cert"], pki["key"]))
    fc = cluster(r.docs)
    fc.secrets = {"es-credentials": {"password": "pw"}}
    fc.config_maps = {"es-ca": {"ca.crt": pki["ca"]}}
    fc.es_url = s.url

    code, out = fc.run_job(r.get("Job", "waymark-es-rollover-init"))
    assert code == 0, out
    assert s.holders("jaeger-span-write") == ["jaeger-span-000001"]
    assert s.holders("jaeger-service-read") == ["jaeger-service-000001"]
    code, out = fc.run_job(r.get("Job", "waymark-es-rollover-init"))
    assert code == 0 and "exists already" in out, out

    coll = r.get("Deployment", "waymark-collector")
    ds.check_probes(fc.start(coll, ds.pod_spec(coll)["containers"][0]))

    code, out = fc.run_job(r.get("CronJob", "waymark-es-rollover"))
    assert code == 0, out
    assert s.holders("jaeger-span-read") == ["jaeger-span-000001", "jaeger-span-000002"]
    assert [i for i in s.holders("jaeger-span-write")
            if s.indices[i]["aliases"]["jaeger-span-write"].get("is_write_index")] == ["jaeger-span-000002"]

    # An index from an earlier generation, out of the write alias and 8
    # days old, leaves the read alias; the current ones stay.
    eight_days_ago = int((time.time() - 8 * 86400) * 1000)
    for kind in ("span", "service"):
        s.add_index(f"jaeger-{kind}-000000", created_ms=eight_days_ago, aliases={f"jaeger-{kind}-read": {}})
    code, out = fc.run_job(r.get("CronJob", "waymark-es-lookback"))
    assert code == 0, out
    assert s.holders("jaeger-span-read") == ["jaeger-span-000001", "jaeger-span-000002"]
    assert s.holders("jaeger-service-read") == ["jaeger-service-000001", "jaeger-service-000002"]
    assert ("POST", "/_aliases") in s.requests
    _assert_root_fs_untouched(fc)


@pytest.mark.parametrize("distribution", ["elasticsearch", "opensearch"])
def test_policy_hook_puts_the_lifecycle_policy(cluster, standins, distribution):
    """esRollover.policy: the init hook's containers run in order and exit
    0; the first puts the policy (ILM on Elasticsearch, ISM on OpenSearch,
    recorded by the stand-in) with the ages given, the second creates the
    aliases; on Elasticsearch the templates name the ILM policy. No
    rollover CronJob is rendered, and the collector then starts ready."""
    values = {"mode": "distributed",
              "storage": es(useAliases=True, indexPrefix="prod"),
              "esRollover": {"policy": {"enabled": True, "name": "traces-lifecycle", "rolloverAfter": "12h",
                                        "deleteAfter": "14d", "distribution": distribution}}}
    r = ds.render(values)
    assert not r.all("CronJob")
    s = standins(distribution=distribution)
    fc = cluster(r.docs)
    fc.es_url = s.url
    job = r.get("Job", "waymark-es-rollover-init")
    assert [c["name"] for c in ds.pod_spec(job)["initContainers"]] == ["es-rollover-policy"]
    code, out = fc.run_job(job)
    assert code == 0, out
    assert "policy traces-lifecycle put" in out, out
    puts = [p for m, p in s.requests if m == "PUT"]
    if distribution == "elasticsearch":
        assert list(s.ilm_policies) == ["traces-lifecycle"] and not s.ism_policies
        phases = s.ilm_policies["traces-lifecycle"]["policy"]["phases"]
        assert phases["hot"]["actions"]["rollover"]["max_age"] == "12h"
        assert phases["delete"]["min_age"] == "14d"
        assert "traces-lifecycle" in json.dumps(s.templates), "the templates name the ILM policy"
        policy_put = puts.index("/_ilm/policy/traces-lifecycle")
    else:
        assert list(s.ism_policies) == ["traces-lifecycle"] and not s.ilm_policies
        pol = s.ism_policies["traces-lifecycle"]["policy"]
        assert pol["states"][0]["actions"][0]["rollover"]["min_index_age"] == "12h"
        assert pol["states"][0]["transitions"][0]["conditions"]["min_index_age"] == "14d"
        patterns = pol["ism_template"][0]["index_patterns"]
        assert all(p.startswith("prod-jaeger-") for p in patterns), patterns
        policy_put = puts.index("/_plugins/_ism/policies/traces-lifecycle")
    # The policy is there before the first index is created.
    first_index = next(i for i, p in enumerate(puts) if p.startswith("/prod-jaeger-"))
    assert policy_put < first_index
    assert s.holders("prod-jaeger-span-write") == ["prod-jaeger-span-000001"]
    # Run again (every upgrade): still exits 0.
    code, out = fc.run_job(job)
    assert code == 0, out
    coll = r.get("Deployment", "waymark-collector")
    ds.check_probes(fc.start(coll, ds.pod_spec(coll)["containers"][0]))


def test_lookback_removes_a_rolled_over_index(cluster, standins):
    values = {"storage": es(useAliases=True), "esRollover": {"enabled": True, "lookback": "7d"}}
    r = ds.render(values)
    s = standins()
    fc = cluster(r.docs)
    fc.es_url = s.url
    for job in (r.get("Job", "waymark-es-rollover-init"), r.get("CronJob", "waymark-es-rollover")):
        code, out = fc.run_job(job)
        assert code == 0, out
    with s.lock:
        s.indices["jaeger-span-000001"]["created"] = int((time.time() - 8 * 86400) * 1000)
    code, out = fc.run_job(r.get("CronJob", "waymark-es-lookback"))
    assert code == 0, out
    assert s.holders("jaeger-span-read") == ["jaeger-span-000002"]


def test_index_cleaner_job_against_the_cluster(cluster, standins):
    values = {"storage": es(apiKeySecret=API_KEY, indexPrefix="prod"),
              "esIndexCleaner": {"enabled": True, "numberOfDays": 3}}
    r = ds.render(values)
    s = standins(api_key="a2V5")
    fc = cluster(r.docs)
    fc.secrets = {"es-api-key": {"api-key": "a2V5"}}
    fc.es_url = s.url
    old = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 10 * 86400))
    today = time.strftime("%Y-%m-%d", time.gmtime())
    for kind in ("span", "service"):
        s.add_index(f"prod-jaeger-{kind}-{old}", docs=5)
        s.add_index(f"prod-jaeger-{kind}-{today}", docs=5)
    s.add_index(f"other-jaeger-span-{old}")
    code, out = fc.run_job(r.get("CronJob", "waymark-es-index-cleaner"))
    assert code == 0, out
    assert sorted(s.indices) == sorted([f"other-jaeger-span-{old}", f"prod-jaeger-service-{today}",
                                        f"prod-jaeger-span-{today}"])
    assert f"deleted prod-jaeger-span-{old}" in out
    _assert_root_fs_untouched(fc)


def test_wrong_ca_keeps_the_pod_alive_and_not_ready(cluster, standins, pki):
    """A CA that did not sign the cluster's certificate: the process waits
    (alive, /ready 503) and logs why, the troubleshooting guide's symptom."""
    r = ds.render({"storage": es(caConfigMap=CA)})
    sts = r.get("StatefulSet", "waymark")
    s = standins(tls=(pki["cert"], pki["key"]))
    fc = cluster(r.docs)
    fc.config_maps = {"es-ca": {"ca.crt": pki["other_ca"]}}
    fc.es_url = s.url
    rc = fc.start(sts, ds.long_running_containers(sts)[0])
    admin = rc.local_port("admin")
    ds.wait_http(f"http://127.0.0.1:{admin}/health", 200, proc=rc)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and "certificate" not in rc.log_tail():
        time.sleep(0.1)
    log = rc.log_tail()
    assert "elasticsearch not available yet" in log and "certificate" in log.lower(), log
    assert rc.alive()
    assert requests.get(f"http://127.0.0.1:{admin}/ready", timeout=5).status_code == 503


def test_wrong_password_stops_with_the_reason(cluster, standins):
    """Wrong credentials are not waited out: the process exits naming
    them (CrashLoopBackOff in a cluster), as the guide says."""
    r = ds.render({"mode": "distributed", "storage": es(username="elastic", passwordSecret=PASSWORD)})
    s = standins(username="elastic", password="right")
    fc = cluster(r.docs)
    fc.secrets = {"es-credentials": {"password": "wrong"}}
    fc.es_url = s.url
    coll = r.get("Deployment", "waymark-collector")
    rc = fc.start(coll, ds.pod_spec(coll)["containers"][0])
    rc.proc.wait(timeout=30)
    log = rc.log_tail()
    assert rc.proc.returncode != 0
    assert "401" in log and "credentials" in log, log


def test_wrong_secret_key_is_caught_before_the_process_starts(cluster):
    """A passwordSecret whose key is not in the Secret: the kubelet refuses
    to start the container (CreateContainerConfigError); the stand-in
    kubelet does too. The schema requires both name and key, and the
    rendered reference is the one given, so the mistake is the user's
    value and `kubectl describe pod` names it."""
    wrong = {"name": "es-credentials", "key": "pasword"}
    r = ds.render({"storage": es(username="elastic", passwordSecret=wrong)})
    sts = r.get("StatefulSet", "waymark")
    [c] = ds.long_running_containers(sts)
    [ref] = [x["valueFrom"]["secretKeyRef"] for x in c["env"] if x["name"] == "WAYMARK_ES_PASSWORD"]
    assert ref == wrong
    fc = cluster(r.docs)
    fc.secrets = {"es-credentials": {"password": "x"}}
    with pytest.raises(AssertionError, match="Secret es-credentials has no key 'pasword'"):
        fc.start(sts, c)
    assert SCHEMA["properties"]["storage"]["properties"]["elasticsearch"]["properties"][
        "passwordSecret"]["then"]["required"] == ["name", "key"]


def test_ca_mount_and_flag_agree_in_every_container():
    """--es-ca-file names the file the ConfigMap volume puts in the
    container: the mount's path joined with the item's path."""
    for values in ({"storage": es(caConfigMap={"name": "corp-ca", "key": "root.pem"})},
                   {"mode": "distributed", "storage": es(caConfigMap={"name": "corp-ca", "key": "root.pem"},
                                                         useAliases=True),
                    "esRollover": {"enabled": True, "lookback": "3d"}}):
        r = ds.render(values)
        checked = 0
        for wl, c in _containers(r):
            if c["args"][0] == "agent":
                continue
            path = ds.flag_values(c["args"])["es-ca-file"]
            vols = {v["name"]: v for v in ds.pod_spec(wl)["volumes"]}
            hits = [m for m in c["volumeMounts"] if path.startswith(m["mountPath"].rstrip("/") + "/")]
            assert len(hits) == 1, (wl["metadata"]["name"], path)
            vol = vols[hits[0]["name"]]["configMap"]
            assert vol["name"] == "corp-ca"
            rel = path[len(hits[0]["mountPath"].rstrip("/")) + 1:]
            assert {"key": "root.pem", "path": rel} in vol["items"]
            checked += 1
        assert checked >= 1
