"""The monitoring graph rules (tests/policy/test_monitoring.py) on copies of
real renders: recorded series that no rule records, series nothing exports,
job/namespace/service matchers that match no target, rules and
ServiceMonitors the Prometheus never loads, and the boundaries (jobLabel,
relabelings, enforcedNamespaceLabel, Grafana's variables)."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json

import pytest

from scripts.core.errors import InputError
from scripts.stages import promgraph
from scripts.stages.monitoring_settings import parse_monitoring
from scripts.stages.policy_support import PolicyConfig
from tests.conftest import REPO, find
from tests.test_rules import RULES

CONFIG = PolicyConfig.load(REPO)
PROD = "overlays/prod"
EXIST, MATCH, LOADS, VALID = ("monitoring_series_exist", "monitoring_matchers_match_targets",
                              "prometheus_loads_monitoring", "dashboard_valid")


def _run(rule, render, config=CONFIG):
    available = {"render": render, "config": config, "repo": REPO}
    return RULES[rule](**{name: available[name] for name in inspect.signature(RULES[rule]).parameters})


def _groups(render):
    return find(render, "PrometheusRule").doc["spec"]["groups"]


def _alert(render, name):
    return next(r for g in _groups(render) for r in g["rules"] if r.get("alert") == name)


def _record(render, name):
    return next(r for g in _groups(render) for r in g["rules"] if r.get("record") == name)


def _set_alert(name, expr):
    return lambda r: _alert(r, name).update(expr=expr)


def _dashboard_edit(edit):
    def mutate(render):
        cm = next(o for o in render.objects if o.kind == "ConfigMap" and o.labels.get("grafana_dashboard"))
        key = next(iter(cm.doc["data"]))
        data = json.loads(cm.doc["data"][key])
        edit(data)
        cm.doc["data"][key] = json.dumps(data, indent=2)
    return mutate


def _panel_expr(index, expr):
    return _dashboard_edit(lambda d: d["panels"][index]["targets"][0].update(expr=expr))


def _service(render):
    return find(render, "Service").doc


def _monitor(render):
    return find(render, "ServiceMonitor").doc["spec"]


def _second_rule_elsewhere(render):
    twin = copy.deepcopy(find(render, "PrometheusRule"))
    twin.doc["metadata"]["namespace"] = "ai-inference-other"
    twin.doc["spec"]["groups"] = [twin.doc["spec"]["groups"][1]]
    render.objects.append(twin)


def _config(**prometheus):
    assert CONFIG.monitoring is not None
    return dataclasses.replace(CONFIG, monitoring=dataclasses.replace(
        CONFIG.monitoring, prometheus=dataclasses.replace(CONFIG.monitoring.prometheus, **prometheus)))


# (id, mutation, rule, words in the finding or None for "still resolves", config)
CASES = [
    # Recorded series.
    ("alert-reads-unrecorded-series", _set_alert("AIInferenceHighErrorRate", "ai_inference:error:ratio_rate5m > 0.05"),
     EXIST, "reads ai_inference:error:ratio_rate5m, which is not recorded by any recording rule the Prometheus "
            "loads (did you mean ai_inference:errors:ratio_rate5m?)", None),
    ("recording-rule-renamed", lambda r: _record(r, "ai_inference:errors:ratio_rate5m").update(
        record="ai_inference:errors:ratio5m"), EXIST, "alert AIInferenceHighErrorRate reads "
                                                     "ai_inference:errors:ratio_rate5m", None),
    ("rule-reads-unrecorded-series", lambda r: _groups(r)[0]["rules"].append(
        {"record": "ai_inference:requests:rate1h", "expr": "avg_over_time(ai_inference:requests:rate1m[1h])"}),
     EXIST, "recording rule ai_inference:requests:rate1h reads ai_inference:requests:rate1m", None),
    ("dashboard-reads-unrecorded-series", _panel_expr(1, "ai_inference:latency_seconds:p95_rate5m"), EXIST,
     "panel 'Latency percentiles by model version' reads ai_inference:latency_seconds:p95_rate5m", None),
    ("dashboard-reads-recorded-series", _panel_expr(1, "ai_inference:latency_seconds:p99_rate5m"), EXIST, None, None),
    ("recorded-in-another-namespace", _second_rule_elsewhere, EXIST,
     "is recorded in namespace ai-inference-prod only", None),
    ("recorded-elsewhere-without-enforcement", _second_rule_elsewhere, EXIST, None,
     _config(enforced_namespace_label=None)),
    # Exported series.
    ("dashboard-reads-misspelt-series", _panel_expr(0, "sum(rate(inference_request_total[$__rate_interval]))"), EXIST,
     "reads inference_request_total, which no scraped job exports and no rule records (did you mean "
     "inference_requests_total?)", None),
    ("alert-reads-misspelt-ksm-series", _set_alert(
        "AIInferenceReplicasUnavailable", "kube_deployment_status_replicas_availabl < kube_deployment_spec_replicas"),
     EXIST, "kube_deployment_status_replicas_availabl, which no scraped job exports", None),
    ("histogram-count-exported", _set_alert("AIInferenceSaturated", "rate(inference_request_duration_seconds_count"
                                                                    "[5m]) > 1"), EXIST, None, None),
    ("histogram-base-not-exported", _set_alert("AIInferenceSaturated", "inference_request_duration_seconds > 1"),
     EXIST, "reads inference_request_duration_seconds, which no scraped job exports", None),
    ("name-regex-matching", _set_alert("AIInferenceSaturated", '{__name__=~"inference_requests_.*"} > 1'), EXIST,
     None, None),
    ("name-regex-matching-nothing", _set_alert("AIInferenceSaturated", '{__name__=~"nothing_.*"} > 1'), EXIST,
     "no series the Prometheus has matches", None),
    ("alerts-series", _set_alert("AIInferenceSaturated", 'ALERTS{alertname="AIInferenceHighErrorRate"} > 0'), EXIST,
     None, None),
    ("template-variable-query-misspelt", _dashboard_edit(lambda d: d["templating"]["list"][1].update(
        query='label_values(inference_request_total{job="ai-inference-service"}, namespace)')), EXIST,
     "variable 'namespace' reads inference_request_total", None),
    ("nothing-scrapes-the-service", lambda r: r.objects.remove(find(r, "ServiceMonitor")), EXIST,
     "which the Prometheus does not scrape: no ServiceMonitor selects it", None),
    # job / namespace / service matchers against the targets.
    ("alert-wrong-job", _set_alert("AIInferenceSaturated", 'inference_requests_in_flight{job="ai-inference"} > 50'),
     MATCH, 'selects inference_requests_in_flight{job="ai-inference"}, but its targets carry ServiceMonitor/'
            'ai-inference-service scraping Service/ai-inference-service: job="ai-inference-service"', None),
    ("alert-wrong-namespace", _set_alert("AIInferenceSaturated", 'inference_requests_in_flight{namespace="default"}'
                                                                 ' > 50'), MATCH, 'namespace="default"', None),
    ("alert-right-service", _set_alert("AIInferenceSaturated", 'inference_requests_in_flight{service='
                                                               '"ai-inference-service"} > 50'), MATCH, None, None),
    ("alert-wrong-service", _set_alert("AIInferenceSaturated", 'inference_requests_in_flight{service="other"} > 50'),
     MATCH, 'service="other"', None),
    ("alert-job-regex", _set_alert("AIInferenceSaturated", 'inference_requests_in_flight{job=~"ai-.*"} > 50'), MATCH,
     None, None),
    ("alert-job-negated", _set_alert("AIInferenceSaturated", 'inference_requests_in_flight{job!="ai-inference-'
                                                             'service"} > 50'), MATCH, "matches nothing", None),
    ("dashboard-wrong-job", _panel_expr(3, 'sum(inference_requests_in_flight{job="inference"})'), MATCH,
     "panel 'Requests in flight by model version' selects", None),
    ("dashboard-namespace-variable", _panel_expr(3, 'sum(inference_requests_in_flight{namespace=~"$namespace"})'),
     MATCH, None, None),
    ("ksm-wrong-job", _set_alert("AIInferencePodRestarting", 'kube_pod_container_status_restarts_total{job='
                                                             '"ai-inference-service"} > 2'), MATCH,
     "job kube-state-metrics", None),
    ("dcgm-right-job", _set_alert("AIInferenceGPUUtilizationHigh", 'DCGM_FI_DEV_GPU_UTIL{job="nvidia-dcgm-exporter"}'
                                                                   ' > 90'), MATCH, None, None),
    # What the Prometheus loads.
    ("rule-without-selector-label", lambda r: find(r, "PrometheusRule").metadata["labels"].pop("release"), LOADS,
     "PrometheusRule", None),
    ("monitor-without-selector-label", lambda r: find(r, "ServiceMonitor").metadata["labels"].pop("release"), LOADS,
     "nothing it selects is scraped", None),
    ("rules-only-in-prometheus-namespace", lambda r: None, LOADS, "in its own namespace monitoring only",
     _config(rule_namespace_selector=None)),
    ("rules-in-a-labelled-namespace", lambda r: None, LOADS, "does not match the Prometheus's namespace selector",
     _config(rule_namespace_selector={"matchLabels": {"monitoring": "on"}})),
]


def _job_label(render):
    _service(render)["metadata"].setdefault("labels", {})["team"] = "ml"
    _monitor(render)["jobLabel"] = "team"


def _job_label_absent(render):
    _monitor(render)["jobLabel"] = "team"


def _relabel_job(render):
    _monitor(render)["endpoints"][0]["relabelings"] = [{"targetLabel": "job", "replacement": "inference"}]


def _interval_variable(data):
    data["templating"]["list"].append({"name": "window", "type": "interval", "query": "1m,5m"})
    data["panels"][0]["targets"][0]["expr"] = (
        'sum by (version) (rate(inference_requests_total{job="ai-inference-service"}[$window]))')


def _undeclared_variable_in_range(data):
    data["panels"][0]["targets"][0]["expr"] = 'sum(rate(inference_requests_total[${step}])) / $__range_s'


CASES += [
    # The job a ServiceMonitor gives its targets.
    ("job-from-job-label", _job_label, MATCH, 'job="ml"', None),
    ("job-label-missing-on-service", _job_label_absent, MATCH, None, None),
    ("job-relabelled", _relabel_job, MATCH, 'job="inference"', None),
    # Grafana's variables in dashboard queries.
    ("interval-variable", _dashboard_edit(_interval_variable), VALID, None, None),
    ("undeclared-variable-in-range", _dashboard_edit(_undeclared_variable_in_range), VALID, None, None),
    ("variable-as-metric-name", _panel_expr(0, "sum(rate($metric[5m]))"), EXIST, None, None),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_monitoring_graph_case(case, render_of):
    _, mutate, rule, words, config = case
    config = config or CONFIG
    render = render_of(PROD)
    if words is None or config is CONFIG:
        assert _run(rule, render) == [], f"{rule} already fails on the real {PROD}"
    mutate(render)
    violations = _run(rule, render, config)
    text = "\n".join(v.line() for v in violations)
    if words is None:
        assert violations == [], text
    else:
        assert words in text, text
        assert all(v.fix for v in violations)


def test_the_old_dashboard_parse_refused_an_interval_variable(render_of):
    """dashboard_valid used to replace only the built-in intervals, so a
    template variable where PromQL wants a duration failed to parse."""
    expr = 'sum(rate(inference_requests_total[$window]))'
    assert promgraph.selectors(expr) is None
    assert promgraph.selectors(promgraph.grafana_expr(expr, {"window": "1m"})) is not None


def test_a_dashboard_finding_points_at_the_json_file_and_panel(render_of):
    render = render_of(PROD)
    _panel_expr(1, "ai_inference:latency_seconds:p95_rate5m")(render)
    [violation] = _run(EXIST, render)
    assert violation.obj.source.file == "monitoring/dashboard.json"
    line = (REPO / "monitoring/dashboard.json").read_text().splitlines()[violation.obj.source.line - 1]
    assert "Latency percentiles by model version" in line


def test_one_finding_per_series_a_ratio_reads_twice(render_of):
    render = render_of(PROD)
    _panel_expr(2, "sum(rate(x_total[5m])) / sum(rate(x_total[5m]))")(render)
    assert len(_run(EXIST, render)) == 1


def test_a_rule_the_prometheus_does_not_load_is_reported_once(render_of):
    """Its unloaded records do not also turn every reader into a finding."""
    render = render_of(PROD)
    find(render, "PrometheusRule").metadata["labels"].pop("release")
    assert len(_run(LOADS, render)) == 1
    assert _run(EXIST, render) == [] and _run(MATCH, render) == []


def test_grafana_variables_are_replaced_as_grafana_sends_them():
    variables = {"namespace": "ai-inference-prod", "window": "10m"}
    assert promgraph.grafana_expr('rate(x{ns="$namespace"}[$__rate_interval])', variables) == \
        'rate(x{ns="$namespace"}[5m])'
    assert promgraph.grafana_expr("rate(x[${window}]) * [[k]]", variables) == \
        f"rate(x[10m]) * {promgraph.PLACEHOLDER}k"
    assert promgraph.grafana_expr("increase(x[$__range]) / $__range_s", {}) == "increase(x[5m]) / 300"


def test_matchers_holding_variables_match_anything():
    matcher = promgraph.Matcher("namespace", "=~", "$namespace")
    assert matcher.accepts("anything")
    assert not promgraph.Matcher("job", "=", "a").accepts("b")
    assert promgraph.Matcher("job", "!~", "b.*").accepts("a")


@pytest.mark.parametrize("block,words", [
    ({}, "monitoring.prometheus"),
    ({"prometheus": {"namespace": "m", "rule_selector": {"matchLabel": {}}}}, "matchLabels and/or matchExpressions"),
    ({"prometheus": {"namespace": "m", "rule_selector": {}}}, "service_monitor_selector"),
    ({"prometheus": {"namespace": "m", "rule_selector": {}, "service_monitor_selector": {}},
      "exports": {"svc": {"x": "counterish"}}}, "monitoring.exports.svc.x"),
    ({"prometheus": {"namespace": "m", "rule_selector": {}, "service_monitor_selector": {}},
      "exports": {"svc": {"a:b": "gauge"}}}, "is not a metric name"),
    ({"prometheus": {"namespace": "m", "rule_selector": {}, "service_monitor_selector": {}},
      "jobs": {"ksm": {"series": {"x": "gauge"}}}}, "non-empty `reason`"),
])
def test_bad_monitoring_config_is_one_line(block, words):
    with pytest.raises(InputError) as error:
        parse_monitoring(block)
    assert words in str(error.value) and str(error.value).startswith("config/policy.yaml: ")
