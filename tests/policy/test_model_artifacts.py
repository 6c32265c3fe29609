"""Model artifacts are pinned like images: every model version a workload
loads is VERSION@sha256:HEX (scripts/stages/modelpins.py), which the
model-fetcher verifies before the server starts."""

from __future__ import annotations

from scripts.core.model import Render
from scripts.stages.modelpins import MANIFEST, MODEL_VERSION_ENV, parse_pin
from scripts.stages.policy_support import Violation, assert_no_violations, containers, workloads


def check_model_version_pinned(render: Render) -> list[Violation]:
    """Every MODEL_VERSION a container reads (a value, or a key of a
    ConfigMap of the render) is a version pinned by the digest of its
    manifest. One finding per ConfigMap key, however many pods read it."""
    config_maps = {(o.namespace, o.name): o for o in render.objects if o.kind == "ConfigMap"}
    out, seen = [], set()
    for obj, pod in workloads(render):
        for label, container in containers(pod):
            for env in container.get("env") or []:
                if not isinstance(env, dict) or env.get("name") != MODEL_VERSION_ENV:
                    continue
                ref = (env.get("valueFrom") or {}).get("configMapKeyRef") or {}
                holder, key = obj, None
                if "value" in env:
                    value = env.get("value")
                elif ref:
                    holder = config_maps.get((obj.namespace, ref.get("name")))
                    key = ref.get("key")
                    if holder is None or key not in (holder.doc.get("data") or {}):
                        continue  # config_refs_resolve reports a reference that does not resolve
                    value = holder.doc["data"][key]
                else:
                    continue
                if parse_pin(value) is not None or (holder.ref, key, label if key is None else "") in seen:
                    continue
                seen.add((holder.ref, key, label if key is None else ""))
                what = f"key {key}" if key else f"{label}'s {MODEL_VERSION_ENV}"
                out.append(Violation(holder, f"{what} is {value!r}, a model version not pinned by digest: the "
                                             "model-fetcher refuses it and the pods never start",
                                     f"write VERSION@sha256:HEX (e.g. {key or 'v2'}=2024.09.0@sha256:...), HEX the "
                                     f"sha256 of the version's {MANIFEST} in the model store"))
    return out


def test_model_version_pinned(render):
    assert_no_violations(check_model_version_pinned(render))
