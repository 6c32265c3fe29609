"""kustomize entries that do nothing are errors naming the entry's file and
line, on the roots whose build they are in; entries that act stay quiet. Each
case breaks a copy of the tree; where a root is named, the defect is in the
last root (prod) and the other roots stay clean."""

from __future__ import annotations

import pytest

from scripts import validate
from scripts.stages.kustomize_effects import selector_matches

PROD = {"overlays/prod", "clusters/prod#ai-inference-prod"}


def _findings(tree, rule_prefix="kustomize-"):
    report = validate.run(validate.Options(repo=tree, stages=["render"]))
    return [f.as_dict() for f in report.findings if f.rule.startswith(rule_prefix)]


def _edit(path, old, new):
    text = path.read_text()
    assert old in text, (old, path)
    path.write_text(text.replace(old, new, 1))


def _add_to_target(kfile, entry, kind, line):
    """Add a selector line to the target of a `- path: <entry>` patch entry."""
    old = f"  - path: {entry}\n    target:\n      kind: {kind}\n"
    _edit(kfile, old, old + f"      {line}\n")


def _line(path, text):
    return next(n for n, line in enumerate(path.read_text().splitlines(), start=1) if text in line)


def test_the_tree_has_no_entry_that_does_nothing(tree):
    assert _findings(tree) == []


def test_a_typo_in_the_canary_weights_target_name_is_an_error_in_prod_only(tree):
    kfile = tree / "overlays/prod/kustomization.yaml"
    _edit(kfile, "      kind: VirtualService\n      name: ai-inference-service\n",
          "      kind: VirtualService\n      name: ai-inference-servce\n")
    findings = _findings(tree)
    assert {f["target"] for f in findings} == PROD
    assert {(f["rule"], f["file"]) for f in findings} == {
        ("kustomize-patch-unmatched", "overlays/prod/kustomization.yaml")}
    # The entry's own line: `- path: canary-weights.yaml`.
    assert {f["line"] for f in findings} == {_line(kfile, "- path: canary-weights.yaml")}
    assert "ai-inference-servce" in findings[0]["message"]


def test_a_kind_typo_in_a_shared_kustomization_is_an_error_on_every_root_that_builds_it(tree):
    _edit(tree / "base/versions/v2/kustomization.yaml", "  - target:\n      kind: Deployment\n",
          "  - target:\n      kind: Deployments\n")
    findings = _findings(tree)
    assert {f["file"] for f in findings} == {"base/versions/v2/kustomization.yaml"}
    assert {f["target"] for f in findings} == {
        "overlays/dev", "overlays/staging", "overlays/prod", "overlays/gpu", "clusters/dev#ai-inference-dev",
        "clusters/staging#ai-inference-staging", "clusters/prod#ai-inference-prod", "clusters/prod#ai-inference-gpu"}


def test_a_name_with_this_kustomizations_own_suffix_matches_nothing(tree):
    # nameSuffix -v2 is applied after the patches of the same kustomization.
    _edit(tree / "base/versions/v2/kustomization.yaml", "  - target:\n      kind: Deployment\n",
          "  - target:\n      kind: Deployment\n      name: ai-inference-service-v2\n")
    assert {f["rule"] for f in _findings(tree)} == {"kustomize-patch-unmatched"}


def test_a_name_with_a_suffix_from_below_matches(tree):
    # versions/v1 adds -v1 before prod's patches run: the boundary of the case above.
    _add_to_target(tree / "overlays/prod/kustomization.yaml", "zone-spread.yaml", "Deployment",
                   "name: ai-inference-service-v1")
    assert _findings(tree) == []


def test_the_original_name_matches_too(tree):
    _add_to_target(tree / "overlays/prod/kustomization.yaml", "zone-spread.yaml", "Deployment",
                   "name: ai-inference-service")
    assert _findings(tree) == []


def test_a_namespace_set_by_the_same_kustomization_is_not_there_yet(tree):
    kfile = tree / "overlays/prod/kustomization.yaml"
    _add_to_target(kfile, "scaling-hpa.yaml", "HorizontalPodAutoscaler", "namespace: ai-inference-prod")
    findings = _findings(tree)
    assert {f["target"] for f in findings} == PROD
    assert {f["line"] for f in findings} == {_line(kfile, "- path: scaling-hpa.yaml")}


def test_label_selectors_are_judged_on_the_labels_there_at_the_time(tree):
    kfile = tree / "overlays/prod/kustomization.yaml"
    # version=v2 comes from base/versions/v2, below prod: it is there when prod's patches run.
    _add_to_target(kfile, "zone-spread.yaml", "Deployment", "labelSelector: version in (v1,v2)")
    assert _findings(tree) == []
    _edit(kfile, "labelSelector: version in (v1,v2)", "labelSelector: version=v3")
    assert {f["target"] for f in _findings(tree)} == PROD


def test_a_label_this_kustomization_adds_is_not_there_for_its_patches(tree):
    kfile = tree / "overlays/prod/kustomization.yaml"
    _edit(kfile, "namespace: ai-inference-prod\n",
          "namespace: ai-inference-prod\nlabels:\n  - pairs:\n      tier: web\n")
    _add_to_target(kfile, "zone-spread.yaml", "Deployment", "labelSelector: tier=web")
    assert {f["target"] for f in _findings(tree)} == PROD


def test_kinds_are_regular_expressions(tree):
    _edit(tree / "overlays/prod/kustomization.yaml", "      kind: HorizontalPodAutoscaler\n",
          "      kind: Horizontal.*\n")
    assert _findings(tree) == []


def test_a_component_patch_that_selects_nothing(tree):
    _edit(tree / "istio/kustomization.yaml", "  - target:\n      kind: Namespace\n",
          "  - target:\n      kind: Namespaces\n")
    findings = _findings(tree)
    assert {f["file"] for f in findings} == {"istio/kustomization.yaml"}
    assert {"overlays/prod", "overlays/dev"} <= {f["target"] for f in findings}


def test_a_patch_of_a_generated_configmap(tree):
    kfile = tree / "overlays/prod/kustomization.yaml"
    kfile.write_text(kfile.read_text() + (
        "  - target:\n      kind: ConfigMap\n      name: ai-inference-service-models\n    patch: |-\n"
        "      - op: add\n        path: /metadata/annotations\n        value: {note: x}\n"))
    assert _findings(tree) == []
    _edit(kfile, "      name: ai-inference-service-models\n    patch",
          "      name: ai-inference-service-model\n    patch")
    assert {f["target"] for f in _findings(tree)} == PROD


def test_an_images_entry_that_matches_no_image(tree):
    kfile = tree / "overlays/prod/kustomization.yaml"
    _edit(kfile, "  - name: ai-inference-service-v2\n", "  - name: ai-inference-service-2\n")
    findings = _findings(tree)
    assert {(f["target"], f["rule"]) for f in findings} == {(t, "kustomize-image-unmatched") for t in PROD}
    assert {f["line"] for f in findings} == {_line(kfile, "- name: ai-inference-service-2")}


def test_a_replacement_target_that_selects_nothing(tree):
    kfile = tree / "overlays/prod/kustomization.yaml"
    kfile.write_text(kfile.read_text() + (
        "replacements:\n  - source:\n      kind: ServiceAccount\n      fieldPath: metadata.name\n"
        "    targets:\n      - select:\n          kind: RoleBinding\n          name: ai-inference-servce\n"
        "        fieldPaths: [subjects.0.name]\n"))
    findings = _findings(tree)
    assert {(f["target"], f["rule"]) for f in findings} == {(t, "kustomize-replacement-unmatched") for t in PROD}
    _edit(kfile, "name: ai-inference-servce", "name: ai-inference-service")
    assert _findings(tree) == []


def test_a_flux_kustomization_patch_that_selects_nothing(tree):
    flux = tree / "clusters/prod/ai-inference-prod.yaml"
    _edit(flux, "  prune: true\n", "  prune: true\n  patches:\n    - target:\n        kind: Deploymnet\n"
          "      patch: |-\n        - op: add\n          path: /metadata/labels/x\n          value: y\n")
    findings = _findings(tree)
    assert {(f["target"], f["file"]) for f in findings} == {("clusters/prod#ai-inference-prod",
                                                             "clusters/prod/ai-inference-prod.yaml")}
    assert findings[0]["line"] == _line(flux, "- target:")


def test_a_generator_merge_with_nothing_to_merge_names_the_generator(tree):
    kfile = tree / "overlays/prod/kustomization.yaml"
    _edit(kfile, "configMapGenerator:\n", "configMapGenerator:\n  - name: missing\n    behavior: merge\n"
          "    literals: [a=b]\n")
    findings = [f for f in _findings(tree, "render-failed") if f["target"] in PROD]
    assert {(f["file"], f["line"]) for f in findings} == {("overlays/prod/kustomization.yaml",
                                                           _line(kfile, "- name: missing"))}
    assert all("behavior: merge" in f["message"] for f in findings)


def test_a_replacement_source_that_selects_nothing_names_the_replacement(tree):
    kfile = tree / "overlays/prod/kustomization.yaml"
    kfile.write_text(kfile.read_text() + (
        "replacements:\n  - source:\n      kind: ServiceAccount\n      name: nobody\n      fieldPath: metadata.name\n"
        "    targets:\n      - select:\n          kind: RoleBinding\n        fieldPaths: [subjects.0.name]\n"))
    findings = [f for f in _findings(tree, "render-failed") if f["target"] in PROD]
    assert findings and all(f["file"] == "overlays/prod/kustomization.yaml" for f in findings)
    assert {f["line"] for f in findings} == {_line(kfile, "  - source:")}
    assert all("replacement source" in f["message"] for f in findings)


def test_a_strategic_merge_patch_without_a_target_that_matches_nothing(tree):
    kfile = tree / "overlays/prod/kustomization.yaml"
    kfile.write_text(kfile.read_text() + (
        "  - patch: |-\n      apiVersion: v1\n      kind: ServiceAccount\n      metadata:\n"
        "        name: ai-inference-servce\n      automountServiceAccountToken: false\n"))
    findings = [f for f in _findings(tree, "render-failed") if f["target"] in PROD]
    assert findings and all(f["file"] == "overlays/prod/kustomization.yaml" for f in findings)
    assert all("strategic-merge patch" in f["message"] for f in findings)


@pytest.mark.parametrize(("text", "labels", "expected"), [
    ("a=b", {"a": "b"}, True),
    ("a==b", {"a": "b"}, True),
    ("a!=b", {"a": "b"}, False),
    ("a!=b", {}, True),
    ("a", {"a": "x"}, True),
    ("!a", {"a": "x"}, False),
    ("!a", {}, True),
    ("a in (x, y)", {"a": "y"}, True),
    ("a notin (x,y)", {"a": "y"}, False),
    ("a=b,c=d", {"a": "b", "c": "e"}, False),
    ("a>1", {"a": "2"}, None),  # not understood: nothing is claimed
])
def test_label_selector_strings(text, labels, expected):
    assert selector_matches(text, labels) is expected
