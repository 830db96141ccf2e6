"""The prose agrees with the code: the chart README's values table lists
every value with its default, and docs/kubernetes.md uses the names the
chart, the demo manifests and the binary really have."""

from __future__ import annotations

import json
import re

import yaml

import deploy_support as ds

README = (ds.CHART_DIR / "README.md").read_text()
GUIDE = (ds.REPO_ROOT / "docs" / "kubernetes.md").read_text()
# Values documented as a whole (free-form maps, or described in words).
OPAQUE = {"annotations", "podAnnotations", "podLabels", "nodeSelector", "affinity", "labels",
          "resources", "strategies", "podSecurityContext", "securityContext"}


def _leaves(d: dict, prefix: str = ""):
    for k, v in d.items():
        key = prefix + k
        if isinstance(v, dict) and v and k not in OPAQUE:
            yield from _leaves(v, key + ".")
        else:
            yield key, v


def _table() -> dict[str, str]:
    rows = {}
    for line in README.splitlines():
        m = re.match(r"^\| `([A-Za-z0-9.]+)` \| (.*?) \| (.*) \|$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def test_values_table_lists_every_value():
    leaves = dict(_leaves(ds.default_values()))
    table = _table()
    assert sorted(set(leaves) - set(table)) == [], "values missing from README.md's table"
    assert sorted(set(table) - set(leaves)) == [], "README.md's table names values that do not exist"


def test_values_table_defaults():
    table = _table()
    for key, value in _leaves(ds.default_values()):
        doc = table[key]
        if isinstance(value, bool):
            assert doc == f"`{json.dumps(value)}`", (key, doc)
        elif isinstance(value, (int, float)):
            # Numbers may be spelled differently (0.00001 for 1e-05), not differ.
            assert re.fullmatch(r"`[0-9.e+-]+`", doc) and float(doc.strip("`")) == value, (key, doc)
        elif isinstance(value, str):
            assert doc == f"`{json.dumps(value)}`" if value == "" else doc == f"`{value}`", (key, doc)
        elif value in ([], {}):
            assert doc == f"`{json.dumps(value)}`", (key, doc)


def test_guide_commands_match_the_chart_and_manifests():
    r = ds.render({})
    chart = yaml.safe_load((ds.CHART_DIR / "Chart.yaml").read_text())
    # The port-forward command is the one NOTES.txt prints.
    pf = re.search(r"kubectl --namespace tracing port-forward svc/waymark-query 16686:16686", r.notes)
    assert pf and pf.group(0) in GUIDE
    assert "helm install waymark deploy/helm/waymark --namespace tracing --create-namespace" in GUIDE
    assert f"docker build -t waymark:{chart['appVersion']} ." in GUIDE
    assert f"statefulset/{r.get('StatefulSet', 'waymark')['metadata']['name']}" in GUIDE
    # PVC name: <claim template>-<statefulset>-0.
    assert "data-waymark-0" in GUIDE and "data-waymark-collector-0" in GUIDE
    # The demo's endpoint, as the manifests set it.
    base = yaml.safe_load((ds.DEMO_DIR / "base" / "kustomization.yaml").read_text())
    literals = dict(x.split("=", 1) for x in base["configMapGenerator"][0]["literals"])
    assert literals["OTEL_EXPORTER_OTLP_ENDPOINT"] in GUIDE
    assert "kubectl apply -k deploy/kustomize/demo" in GUIDE
    # Images the demo manifests use are the ones the guide builds.
    for s in ("service-a", "service-b", "frontend", "login", "catalog", "payment", "loadgen"):
        assert s in re.search(r"for s in ([a-z -]+); do\n  docker build", GUIDE).group(1)
    assert "docker build -f demo/docker/$s.Dockerfile -t waymark-demo/$s demo" in GUIDE
    assert "Elasticsearch" in GUIDE and "Elasticsearch" in README


def test_guide_names_real_metrics():
    """Every waymark_* metric the guide mentions is registered by the
    binary (counters are exposed with a _total suffix)."""
    sources = "\n".join(p.read_text() for p in (ds.REPO_ROOT / "crates").rglob("*.rs"))
    registered = set(re.findall(r'"(waymark_[a-z_]+)"', sources))
    names = set(re.findall(r"\b(waymark_[a-z_]+)\b", GUIDE))
    # The grep pattern in the guide spells a family of counters.
    m = re.search(r"grep -E '\^waymark_\(spans_\(([a-z|]+)\)\|([a-z_|]+)\)_total'", GUIDE)
    assert m, "the guide's metrics grep"
    names |= {f"waymark_spans_{x}_total" for x in m.group(1).split("|")}
    names |= {f"waymark_{x}_total" for x in m.group(2).split("|")}
    names = {n for n in names if n not in ("waymark_", "waymark_spans_")}
    assert names
    for n in sorted(names):
        base = n[: -len("_total")] if n.endswith("_total") else n
        assert base in registered, f"{n} is not a metric the binary registers"


def test_guide_elasticsearch_install_matches_the_chart():
    """The guide's Elasticsearch section: its values file renders, the
    Secret and ConfigMap it creates are the ones the values refer to (same
    names and keys), and the objects it waits for and names exist."""
    section = GUIDE.split("## Elasticsearch\n", 1)[1].split("\n## ", 1)[0]
    values = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    r = ds.render(values)
    es = values["storage"]["elasticsearch"]
    secret = re.search(r"create secret generic (\S+) --from-file=([^=]+)=", section)
    assert (secret.group(1), secret.group(2)) == (es["passwordSecret"]["name"], es["passwordSecret"]["key"])
    cm = re.search(r"create configmap (\S+) --from-file=([^=]+)=", section)
    assert (cm.group(1), cm.group(2)) == (es["caConfigMap"]["name"], es["caConfigMap"]["key"])
    for kind, name in re.findall(r"rollout status (deployment)/(\S+)", section):
        r.get("Deployment", name)
    r.get("CronJob", "waymark-es-index-cleaner")
    assert "waymark-es-index-cleaner" in section
    [c] = ds.pod_spec(r.get("Deployment", "waymark-collector"))["containers"]
    ca_flag = ds.flag_values(c["args"])["es-ca-file"]
    assert f"`{ca_flag}`" in section
    assert "--namespace tracing" in section and "-f es-values.yaml" in section


def test_guide_elasticsearch_troubleshooting_quotes_the_binary():
    """The log lines the troubleshooting entries tell users to look for
    are the ones the binary writes."""
    sources = "\n".join(p.read_text() for p in (ds.REPO_ROOT / "crates").rglob("*.rs"))
    for phrase in ("elasticsearch not available yet", "check the credentials"):
        assert phrase in sources, phrase
    assert "elasticsearch not available yet" in GUIDE and "credentials" in GUIDE
    assert "CreateContainerConfigError" in GUIDE and "kubectl --namespace tracing describe pod" in GUIDE
    assert "job/waymark-es-rollover-init" in GUIDE
    r = ds.render({"storage": {"type": "elasticsearch",
                               "elasticsearch": {"urls": ["http://es:9200"], "useAliases": True}}})
    r.get("Job", "waymark-es-rollover-init")
