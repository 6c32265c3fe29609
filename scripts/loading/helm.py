"""HelmReleases (helm-controller, `helm.toolkit.fluxcd.io/v2`): what can be
checked without rendering the chart.

No helm binary is installed here (none comes from the package registries
this project uses), so a chart is never rendered and the objects it would
make are not validated: every release gets a notice saying so. What is
checked, in a cluster's renders (a cluster root and its Flux builds, where
the cluster's sources are known):

- `spec.chartRef` or `spec.chart.spec.sourceRef` names a source the
  cluster declares (or that config/policy.yaml's `cluster.provides` lists),
  else the release never installs: an error;
- every `spec.valuesFrom` ConfigMap or Secret is in the cluster's renders,
  with its key (`valuesKey`, `values.yaml` by default), unless `optional`;
- where the chart lies in this repository (a GitRepository of this
  repository, or an ExternalArtifact made from it) and ships
  `values.schema.json`, the values Helm would use are validated against it:
  the chart's values.yaml, then `valuesFiles`, then each valuesFrom in
  order, then `spec.values`, merged as helm-controller merges them.

The release object itself is validated against helm-controller's CRD by
the schema stage, like every custom resource.
"""

from __future__ import annotations

import base64
import json
import posixpath
from pathlib import Path

import jsonschema_rs
import yaml

from scripts.core.errors import InputError
from scripts.core.model import Finding, Render, Resource, finding_for
from scripts.core.yamlio import _Loader, load_file
from scripts.loading import artifacts
from scripts.loading.fluxcluster import POLICY_FILE, Cluster, RunContext
from scripts.loading.fluxkinds import HELM_GROUP, is_helm_release

DEFAULT_VALUES_KEY = "values.yaml"


def findings(repo: Path, renders: list[Render], clusters: dict[str, Cluster], context: RunContext) -> list[Finding]:
    """The HelmRelease findings of every render, in path order."""
    out: list[Finding] = []
    for render in sorted(renders, key=lambda r: r.target.path):
        if not render.ok or HELM_GROUP not in (render.text or ""):
            continue
        cluster = clusters.get(render.target.path.split("#")[0])
        for release in (o for o in render.objects if is_helm_release(o.doc)):
            out += _release(repo, render, release, cluster, context)
    return out


def _release(repo: Path, render: Render, release: Resource, cluster: Cluster | None, context: RunContext
             ) -> list[Finding]:
    spec = release.doc.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    target = render.target.path
    namespace = release.namespace or ""
    out = []

    def error(rule: str, message: str) -> None:
        out.append(finding_for(release, stage="render", target=target, rule=rule, message=message))

    chart_ref = spec.get("chartRef") if isinstance(spec.get("chartRef"), dict) else None
    template = ((spec.get("chart") or {}).get("spec") or {}) if isinstance(spec.get("chart"), dict) else {}
    template = template if isinstance(template, dict) else {}
    ref = chart_ref if chart_ref is not None else template.get("sourceRef")
    ref = ref if isinstance(ref, dict) else {}
    kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
    ref_namespace = str(ref.get("namespace") or namespace)
    chart_name = f" (chart {template.get('chart')})" if template.get("chart") else ""
    described = f"{kind} {ref_namespace}/{name}{chart_name}" if kind else ""
    chart_dir: str | None = None
    chart_files: artifacts.Tree | None = None
    if cluster is not None and kind and name:
        source = cluster.source(kind, ref_namespace, name)
        if source.missing is not None:
            error("helm-source-missing",
                  f"its chart's source {kind}/{name} is not declared in this cluster ({source.missing}): the "
                  f"release never installs; declare the source, or list it in {POLICY_FILE} cluster.provides "
                  "with the reason the cluster has it")
        elif source.problem is not None:
            error("helm-source-missing", f"its chart's source cannot be made: {source.problem}")
        elif source.patterns is not None and chart_ref is None and template.get("chart"):
            chart_dir = posixpath.normpath(str(template["chart"]).lstrip("/"))
        elif source.tree is not None:
            chart_files = source.tree
        elif chart_ref is not None and kind == "HelmChart":
            chart_dir, template = _helm_chart_in_repo(cluster, ref_namespace, name, template)
    values, problems = _values(repo, spec, release, cluster, context)
    for rule, message in problems:
        error(rule, message)
    checked = ""
    if not problems and (chart_dir is not None or chart_files is not None):
        checked = _check_schema(repo, chart_dir, chart_files, template, values, error)
    out.append(finding_for(
        release, stage="render", target=target, rule="helm-chart-not-rendered", severity="notice",
        message=f"chart not rendered (no helm here): what the chart from {described or 'no source'} would make "
                f"is not validated, only the HelmRelease object{checked}"))
    return out


def _helm_chart_in_repo(cluster: Cluster, namespace: str, name: str, template: dict) -> tuple[str | None, dict]:
    """A chartRef to a HelmChart whose own source is this repository: the
    chart's directory, and the HelmChart's spec (for valuesFiles)."""
    chart = next((o for o in cluster.objects if o.kind == "HelmChart" and o.name == name
                  and (o.namespace or "") == namespace), None)
    spec = (chart.doc.get("spec") or {}) if chart is not None else {}
    ref = spec.get("sourceRef") or {}
    if ref.get("kind") != "GitRepository" or not spec.get("chart"):
        return None, template
    source = cluster.source("GitRepository", str(ref.get("namespace") or namespace), str(ref.get("name")))
    if source.patterns is None:
        return None, template
    return posixpath.normpath(str(spec["chart"]).lstrip("/")), spec


def _values(repo: Path, spec: dict, release: Resource, cluster: Cluster | None, context: RunContext
            ) -> tuple[dict, list[tuple[str, str]]]:
    """The values from valuesFrom, in order, then spec.values; and what is
    wrong with the references (only in a cluster, where they can be known)."""
    merged: dict = {}
    problems: list[tuple[str, str]] = []
    namespace = release.namespace or ""
    for number, item in enumerate(spec.get("valuesFrom") or []):
        if not isinstance(item, dict) or cluster is None:
            continue
        kind, name = item.get("kind"), item.get("name")
        key = str(item.get("valuesKey") or DEFAULT_VALUES_KEY)
        where = f"valuesFrom[{number}] {kind}/{name}"
        found = next((o for o in cluster.objects if o.kind == kind and o.name == name
                      and (o.namespace or "") == namespace), None)
        if found is None:
            provided = any(p.kind == kind and p.name == name for p in context.provides())
            if not item.get("optional") and not provided:
                problems.append(("helm-values-missing",
                                 f"{where} is not in this cluster's renders: the release fails to install; add "
                                 f"it, mark it optional: true, or list it in {POLICY_FILE} cluster.provides"))
            continue
        data = _data(found)
        if key not in data:
            if not item.get("optional"):
                problems.append(("helm-values-missing", f"{where} has no key {key!r} (valuesKey): the release "
                                                        "fails to install"))
            continue
        text = data[key]
        if item.get("targetPath"):
            _set_path(merged, str(item["targetPath"]), text)
            continue
        try:
            value = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError as exc:
            problems.append(("helm-values-invalid", f"{where} key {key!r} is not YAML: {str(exc).splitlines()[0]}"))
            continue
        if value is None:
            continue
        if not isinstance(value, dict):
            problems.append(("helm-values-invalid", f"{where} key {key!r} must hold a mapping of values"))
            continue
        merged = artifacts.merge_values(merged, value)  # type: ignore[assignment]
    own = spec.get("values")
    if isinstance(own, dict):
        merged = artifacts.merge_values(merged, own)  # type: ignore[assignment]
    return merged, problems


def _data(obj: Resource) -> dict[str, str]:
    data = obj.doc.get("data") if isinstance(obj.doc.get("data"), dict) else {}
    out = {str(k): str(v) for k, v in data.items()}
    if obj.kind == "Secret":
        decoded = {}
        for key, value in out.items():
            try:
                decoded[key] = base64.b64decode(value, validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                continue
        out = decoded
        string = obj.doc.get("stringData")
        if isinstance(string, dict):
            out.update({str(k): str(v) for k, v in string.items()})
    return out


def _set_path(values: dict, path: str, value: str) -> None:
    """targetPath: a dotted path (Helm's --set syntax, without lists)."""
    parts = [p for p in path.replace("\\.", "\0").split(".") if p]
    node = values
    for part in parts[:-1]:
        nxt = node.get(part.replace("\0", "."))
        if not isinstance(nxt, dict):
            nxt = node[part.replace("\0", ".")] = {}
        node = nxt
    if parts:
        node[parts[-1].replace("\0", ".")] = value


def _check_schema(repo: Path, chart_dir: str | None, chart_files: artifacts.Tree | None, template: dict,
                  values: dict, error) -> str:
    """Validate the values Helm would use against the chart's
    values.schema.json; returns the words for the notice."""
    files = _chart_files(repo, chart_dir, chart_files)
    if files is None:
        return ""
    chart, schema_file = files.get("Chart.yaml"), files.get("values.schema.json")
    if chart is None:
        return ""
    if schema_file is None:
        return "; the chart is in this repository and has no values.schema.json"
    schema_file = schema_file[-1]
    try:
        schema = json.loads((repo / schema_file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        error("helm-values-invalid", f"{schema_file} is not a JSON schema: {exc}")
        return ""
    defaults: object = {}
    for name in ["values.yaml", *[str(f) for f in template.get("valuesFiles") or []]]:
        for origin in files.get(posixpath.normpath(name), ()):
            try:
                defaults = artifacts.merge_values(defaults, load_file(repo / origin, origin) or {})
            except InputError as exc:
                error("helm-values-invalid", f"{exc.file}: {exc.message}")
                return ""
    effective = artifacts.merge_values(defaults, values)
    try:
        validator = jsonschema_rs.validator_for(schema)
    except (ValueError, jsonschema_rs.ValidationError) as exc:
        error("helm-values-invalid", f"{schema_file} is not a valid JSON schema: {exc}")
        return ""
    problems = sorted({f"{'/'.join(map(str, e.instance_path)) or '(root)'}: {e.message}"
                       for e in validator.iter_errors(effective)})
    for problem in problems[:20]:
        error("helm-values-invalid", f"the merged values break {schema_file}: {problem[:300]}")
    return f"; its merged values were checked against {schema_file}"


def _chart_files(repo: Path, chart_dir: str | None, chart_files: artifacts.Tree | None
                 ) -> dict[str, tuple[str, ...]] | None:
    """The chart's top-level files (relative to the chart) and the
    repository files each one is made of."""
    if chart_dir is not None:
        top = repo / chart_dir
        if chart_dir.startswith("..") or not (top / "Chart.yaml").is_file():
            return None
        return {p.name: (p.relative_to(repo).as_posix(),) for p in sorted(top.iterdir()) if p.is_file()}
    if chart_files is None:
        return None
    # An artifact holds the chart at its root, or in its one top-level directory.
    tops = {p.split("/")[0] for p in chart_files}
    prefix = "" if "Chart.yaml" in chart_files else (next(iter(tops)) + "/" if len(tops) == 1 else None)
    if prefix is None:
        return None
    return {p[len(prefix):]: origins for p, origins in chart_files.items()
            if p.startswith(prefix) and "/" not in p[len(prefix):]}
