"""values.schema.json: it accepts the chart's own values and good
variations, and refuses bad ones both on its own (jsonschema, draft 7) and
when Helm installs the chart (helm-python-sdk renders with Helm's schema
check). The template checks behind it (for `--skip-schema-validation`) are
exercised on a copy of the chart without the schema. Durations are checked
against what the binary itself accepts."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import jsonschema
import pytest

import deploy_support as ds

SCHEMA = json.loads((ds.CHART_DIR / "values.schema.json").read_text())

GOOD = [
    {},
    {"mode": "distributed"},
    {"storage": {"embedded": {"retention": "72h", "headMaxAge": "1h30m"}}},
    {"storage": {"embedded": {"retention": "2w", "fsync": "never", "zstdLevel": 19}}},
    {"pipeline": {"queueMaxWait": "1.5s"}},
    {"query": {"maxClockSkewAdjustment": "0"}},
    {"ports": {"admin": 9000}},
    {"agent": {"collectors": ["waymark-collector.tracing.svc:4317"]}},
    {"extraArgs": ["--config=/etc/waymark/extra.yaml"], "extraEnv": [{"name": "A", "value": "b"}]},
    {"sampling": {"strategies": {"default_strategy": {"type": "ratelimiting", "param": 5}}}},
    {"global": {"imageRegistry": "x"}},
    {"allInOne": {"resources": {"requests": {"cpu": 1, "memory": "1Gi"}}}},
    {"sampling": {"adaptive": {"enabled": True, "deltaTolerance": 0, "minSamplesPerSecond": 0,
                               "initialSamplingProbability": 1, "minSamplingProbability": 1,
                               "calculationInterval": "100ms", "lookback": "100ms"}}},
    {"mode": "distributed", "sampling": {"adaptive": {"enabled": True, "targetSamplesPerSecond": 0.5,
                                                      "calculationInterval": "30s", "lookback": "1h"}}},
]

# (values, a fragment the error must name)
BAD = [
    ({"mode": "cluster"}, "/mode"),
    ({"storage": {"type": "mongo"}}, "/storage/type"),
    ({"collector": {"autoscaling": {"enabled": True}}}, "/collector/autoscaling/enabled"),
    ({"mode": "distributed", "collector": {"replicas": 3}}, "/collector/replicas"),
    ({"storage": {"embedded": {"retention": "7 days"}}}, "/storage/embedded/retention"),
    ({"storage": {"embedded": {"retention": "1y"}}}, "/storage/embedded/retention"),
    ({"storage": {"embedded": {"fsync": "sometimes"}}}, "/storage/embedded/fsync"),
    ({"storage": {"embedded": {"zstdLevel": 22}}}, "/storage/embedded/zstdLevel"),
    ({"storage": {"embedded": {"persistence": {"size": "10 GB"}}}}, "/storage/embedded/persistence/size"),
    ({"storage": {"type": "elasticsearch"}}, "/storage/elasticsearch/urls"),
    ({"ports": {"admin": 70000}}, "/ports/admin"),
    ({"ports": {"admin": "14269"}}, "/ports/admin"),
    ({"limits": {"maxRequestBytes": 0}}, "/limits/maxRequestBytes"),
    ({"probes": {"startup": {"failureThreshold": 0}}}, "/probes/startup/failureThreshold"),
    ({"retention": "3d"}, "retention"),
    ({"agent": {"collectors": ["http://collector:4317"]}}, "/agent/collectors/0"),
    ({"extraArgs": ["retention=1d"]}, "/extraArgs/0"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"ingress": {"hosts": [{"host": "a", "paths": [{"path": "ui", "pathType": "Prefix"}]}]}},
     "/ingress/hosts/0/paths/0/path"),
    ({"service": {"query": {"type": "ExternalName"}}}, "/service/query/type"),
    ({"podDisruptionBudget": {"maxUnavailable": -1}}, "/podDisruptionBudget/maxUnavailable"),
    ({"otlp": {"corsAllowedOrigins": ["https://a,https://b"]}}, "/otlp/corsAllowedOrigins/0"),
    ({"sampling": {"adaptive": {"enabled": "yes"}}}, "/sampling/adaptive/enabled"),
    ({"sampling": {"adaptive": {"targetSamplesPerSecond": 0}}}, "/sampling/adaptive/targetSamplesPerSecond"),
    ({"sampling": {"adaptive": {"deltaTolerance": 1}}}, "/sampling/adaptive/deltaTolerance"),
    ({"sampling": {"adaptive": {"deltaTolerance": -0.1}}}, "/sampling/adaptive/deltaTolerance"),
    ({"sampling": {"adaptive": {"calculationInterval": "1 minute"}}}, "/sampling/adaptive/calculationInterval"),
    ({"sampling": {"adaptive": {"lookback": 180}}}, "/sampling/adaptive/lookback"),
    ({"sampling": {"adaptive": {"initialSamplingProbability": 0}}},
     "/sampling/adaptive/initialSamplingProbability"),
    ({"sampling": {"adaptive": {"initialSamplingProbability": 1.5}}},
     "/sampling/adaptive/initialSamplingProbability"),
    ({"sampling": {"adaptive": {"minSamplingProbability": 0}}}, "/sampling/adaptive/minSamplingProbability"),
    ({"sampling": {"adaptive": {"minSamplesPerSecond": -0.1}}}, "/sampling/adaptive/minSamplesPerSecond"),
    ({"sampling": {"adaptive": {"maxIncrease": 0}}}, "/sampling/adaptive/maxIncrease"),
    ({"sampling": {"adaptive": {"targetSamplesPerSecond": "1"}}}, "/sampling/adaptive/targetSamplesPerSecond"),
    ({"sampling": {"adaptive": {"window": "1m"}}}, "window"),
]


def _ids(cases):
    return [json.dumps(c[0] if isinstance(c, tuple) else c)[:60] for c in cases]


def test_schema_is_valid_draft7():
    jsonschema.Draft7Validator.check_schema(SCHEMA)


def test_chart_values_pass_the_schema():
    jsonschema.Draft7Validator(SCHEMA).validate(ds.default_values())


@pytest.mark.parametrize("values", GOOD, ids=_ids(GOOD))
def test_good_values_accepted(values):
    jsonschema.Draft7Validator(SCHEMA).validate(ds.merged_values(values))
    assert ds.render(values).docs


@pytest.mark.parametrize("values,where", BAD, ids=_ids(BAD))
def test_bad_values_refused_by_the_schema(values, where):
    errors = list(jsonschema.Draft7Validator(SCHEMA).iter_errors(ds.merged_values(values)))
    assert errors, f"schema accepted {values}"


@pytest.mark.parametrize("values,where", BAD, ids=_ids(BAD))
def test_bad_values_fail_the_install(values, where):
    import helm_python
    with pytest.raises(helm_python.HelmValuesError) as e:
        ds.render(values)
    msg = str(e.value)
    assert where in msg, msg
    assert "values don't meet the specifications of the schema" in msg


def test_autoscaling_message_explains_why():
    import helm_python
    with pytest.raises(helm_python.HelmValuesError) as e:
        ds.render({"collector": {"autoscaling": {"enabled": True}}})
    assert "/collector/autoscaling/enabled" in str(e.value)
    assert "value must be false" in str(e.value)


@pytest.fixture(scope="module")
def chart_without_schema(tmp_path_factory):
    """The chart as `helm install --skip-schema-validation` sees it."""
    d = tmp_path_factory.mktemp("chart") / "waymark"
    shutil.copytree(ds.CHART_DIR, d)
    (d / "values.schema.json").unlink()
    return d


@pytest.mark.parametrize("values,message", [
    ({"collector": {"autoscaling": {"enabled": True}}},
     "autoscaling needs a shared storage backend"),
    ({"mode": "distributed", "collector": {"replicas": 2}},
     "the collector runs exactly 1 replica"),
    ({"storage": {"type": "cassandra"}}, 'storage.type must be embedded or elasticsearch, not "cassandra"'),
    ({"mode": "Distributed"}, 'mode must be allInOne or distributed, not "Distributed"'),
    ({"ports": {"admin": 4317}}, "are both 4317; every Waymark port must differ"),
    ({"mode": "distributed", "ports": {"queryAdmin": 14269}}, "are both 14269"),
    ({"sampling": {"strategies": {"default_strategy": {}}, "existingConfigMap": "x"}},
     "set either strategies or existingConfigMap"),
])
def test_template_checks_without_the_schema(chart_without_schema, values, message):
    import helm_python
    with pytest.raises(helm_python.HelmRenderError) as e:
        ds.render(values, chart_dir=chart_without_schema)
    assert message in str(e.value)


@pytest.mark.parametrize("values,message", [
    ({"sampling": {"adaptive": {"calculationInterval": "99ms"}}},
     'sampling.adaptive.calculationInterval must be at least 100ms, not "99ms"'),
    ({"sampling": {"adaptive": {"enabled": True, "calculationInterval": "0"}}},
     'sampling.adaptive.calculationInterval must be at least 100ms, not "0"'),
    ({"mode": "distributed", "sampling": {"adaptive": {"calculationInterval": "2m", "lookback": "90s"}}},
     'sampling.adaptive.lookback "90s" must be at least sampling.adaptive.calculationInterval "2m"'),
    ({"sampling": {"adaptive": {"calculationInterval": "1w", "lookback": "167h59m"}}},
     'sampling.adaptive.lookback "167h59m" must be at least'),
])
def test_adaptive_durations_checked_by_the_templates(values, message):
    """The two duration rules of the binary the schema cannot express
    (interval at least 100ms, lookback at least one interval) fail the
    install, with or without the schema."""
    import helm_python
    with pytest.raises(helm_python.HelmRenderError) as e:
        ds.render(values)
    assert message in str(e.value)


@pytest.mark.parametrize("values", [
    {"extraArgs": ["--retention=1d"]},
    {"extraArgs": ["--log-level=debug"]},
    {"mode": "distributed", "extraArgs": ["--max-clock-skew-adjustment=1s"]},
    {"mode": "distributed", "extraArgs": ["--collector=x:4317"]},
    {"extraArgs": ["--sampling-adaptive=true"]},
    {"mode": "distributed", "extraArgs": ["--sampling-adaptive=false"]},
    {"extraArgs": ["--adaptive-target-samples-per-second=5"]},
    {"mode": "distributed", "extraArgs": ["--adaptive-delta-tolerance=0.1"]},
    {"extraArgs": ["--adaptive-calculation-interval=30s"]},
    {"extraArgs": ["--adaptive-lookback=10m"]},
    {"extraArgs": ["--adaptive-initial-sampling-probability=0.5"]},
    {"extraArgs": ["--adaptive-min-sampling-probability=0.001"]},
    {"mode": "distributed", "extraArgs": ["--adaptive-min-samples-per-second=1"]},
    {"extraArgs": ["--adaptive-max-increase=2"]},
])
def test_extra_args_cannot_repeat_a_flag_the_chart_sets(values):
    """The binary refuses a flag given twice; the chart refuses to render it."""
    import helm_python
    with pytest.raises(helm_python.HelmRenderError) as e:
        ds.render(values)
    flag = values["extraArgs"][0].split("=")[0]
    assert f"extraArgs: {flag} is already set by the chart" in str(e.value)


def test_query_admin_may_equal_admin_port_only_in_all_in_one(chart_without_schema):
    # all-in-one has no query container: ports.queryAdmin is unused there.
    ds.render({"ports": {"queryAdmin": 14269}})


DURATIONS = ["7d", "2w", "72h", "1h30m", "500ms", "0", "1.5h", "90s", "300us",
             "7 days", "7D", "1y", "10", "-1h", "h", ""]


def _binary_accepts_retention(value: str) -> bool:
    """Starts `waymark agent --retention VALUE` on ephemeral ports: a
    refused duration exits at once with an error, an accepted one serves."""
    root = ds.make_root()
    try:
        args = [str(ds.waymark_bin()), "agent", f"--retention={value}",
                f"--queue-dir={root / 'q'}", f"--data-dir={root}"]
        for flag in ("admin", "otlp-grpc", "otlp-http", "zipkin", "jaeger-compact",
                     "jaeger-binary", "sampling", "jaeger-grpc", "jaeger-http"):
            args.append(f"--{flag}-listen=127.0.0.1:0")
        with open(root / "log", "wb") as log:
            p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        try:
            while time.monotonic() < deadline:
                if p.poll() is not None:
                    text = (root / "log").read_text(errors="replace")
                    assert "--retention" in text, text
                    return False
                if "waymark is serving" in (root / "log").read_text(errors="replace"):
                    return True
                time.sleep(0.02)
            raise AssertionError("waymark neither refused nor served")
        finally:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=15)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_duration_pattern_matches_the_binary():
    """The schema's duration pattern accepts exactly what the binary's
    parser accepts (for these samples)."""
    if not ds.waymark_bin().exists():
        pytest.fail(f"waymark binary not found at {ds.waymark_bin()}")
    pattern = SCHEMA["properties"]["storage"]["properties"]["embedded"]["properties"]["retention"]
    check = jsonschema.Draft7Validator(pattern)
    disagree = []
    for d in DURATIONS:
        schema_ok = check.is_valid(d)
        binary_ok = _binary_accepts_retention(d)
        if schema_ok != binary_ok:
            disagree.append((d, schema_ok, binary_ok))
    assert not disagree, f"(value, schema accepts, binary accepts): {disagree}"


# (chart key, flag, values tried): each value is tried on the chart (schema
# and templates) and on the binary, which must agree.
ADAPTIVE_RANGES = [
    ("targetSamplesPerSecond", "target-samples-per-second", [0, -1, 0.001, 1000]),
    ("deltaTolerance", "delta-tolerance", [0, 0.999, 1, -0.1]),
    ("initialSamplingProbability", "initial-sampling-probability", [0, 1e-05, 1, 1.0001]),
    ("minSamplingProbability", "min-sampling-probability", [0, 1e-05, 1, 2]),
    ("minSamplesPerSecond", "min-samples-per-second", [0, 0.0166667, -0.5]),
    ("maxIncrease", "max-increase", [0, 0.01, 10]),
    ("calculationInterval", "calculation-interval", ["99ms", "100ms", "0.1s", "99999us", "0"]),
]


def _binary_accepts_adaptive(flag: str, value) -> bool:
    """Starts `waymark collector --sampling-adaptive=true --adaptive-FLAG=VALUE`
    (lookback a day, so only FLAG can be wrong): a refused value exits at
    once naming the setting, an accepted one serves."""
    root = ds.make_root()
    try:
        args = [str(ds.waymark_bin()), "collector", f"--data-dir={root / 'data'}",
                "--sampling-adaptive=true", "--adaptive-lookback=1d", f"--adaptive-{flag}={value}"]
        for f in ("admin", "otlp-grpc", "otlp-http", "zipkin", "jaeger-compact",
                  "jaeger-binary", "sampling", "jaeger-grpc", "jaeger-http"):
            args.append(f"--{f}-listen=127.0.0.1:0")
        with open(root / "log", "wb") as log:
            p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        try:
            while time.monotonic() < deadline:
                text = (root / "log").read_text(errors="replace")
                if p.poll() is not None:
                    key = "sampling.adaptive." + flag.replace("-", "_")
                    assert key in text or f"--adaptive-{flag}" in text, text
                    return False
                if "waymark is serving" in text:
                    return True
                time.sleep(0.02)
            raise AssertionError("waymark neither refused nor served")
        finally:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=15)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _chart_accepts(values: dict) -> bool:
    import helm_python
    try:
        ds.render(values)
        return True
    except (helm_python.HelmValuesError, helm_python.HelmRenderError):
        return False


def test_adaptive_ranges_match_the_binary():
    """What the chart accepts for sampling.adaptive.* (schema and template
    checks) is what the binary accepts, at the edges of every range; an
    accepted value is passed to the binary exactly as the chart renders it."""
    if not ds.waymark_bin().exists():
        pytest.fail(f"waymark binary not found at {ds.waymark_bin()}")
    disagree = []
    for key, flag, tried in ADAPTIVE_RANGES:
        for value in tried:
            values = {"mode": "distributed",
                      "sampling": {"adaptive": {"enabled": True, "lookback": "1d", key: value}}}
            chart_ok = _chart_accepts(values)
            given = value
            if chart_ok:
                sts = ds.render(values).get("StatefulSet", "waymark-collector")
                given = ds.flag_values(ds.long_running_containers(sts)[0]["args"])[f"adaptive-{flag}"]
            binary_ok = _binary_accepts_adaptive(flag, given)
            if chart_ok != binary_ok:
                disagree.append((key, value, given, chart_ok, binary_ok))
    assert not disagree, f"(key, value, flag value, chart accepts, binary accepts): {disagree}"
