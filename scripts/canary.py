"""`canary` and `promote`: edit an overlay's weights and images the way a
reviewer expects, keeping comments and layout (ruamel.yaml round-trip), and
roll the edit back if the touched root no longer validates."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from scripts.errors import InputError, UsageError
from scripts.model import Finding

WEIGHTS_FILE = "canary-weights.yaml"
WEIGHT_PATHS = {"v1": "/spec/http/0/route/0/weight", "v2": "/spec/http/0/route/1/weight"}
IMAGE_NAMES = {"v1": "ai-inference-service-v1", "v2": "ai-inference-service-v2"}
MODELS_CONFIGMAP = "ai-inference-service-models"


def _yaml(root_is_list: bool) -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    if root_is_list:
        yaml.indent(mapping=2, sequence=2, offset=0)
    else:
        yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


@dataclass
class Document:
    """A YAML file loaded for a round-trip edit."""

    path: Path
    display: str
    original: str
    data: Any
    yaml: YAML

    @classmethod
    def load(cls, path: Path, display: str) -> Document:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError("file not found", display) from None
        yaml = _yaml(root_is_list=False)
        try:
            data = yaml.load(text)
        except YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise InputError(f"invalid YAML: {getattr(exc, 'problem', exc)}", display,
                             mark.line + 1 if mark else None) from None
        if isinstance(data, list):  # JSON patches: a top-level list, dashes at column 0
            yaml = _yaml(root_is_list=True)
        return cls(path, display, text, data, yaml)

    def render(self) -> str:
        out = io.StringIO()
        self.yaml.dump(self.data, out)
        return out.getvalue()


class Overlay:
    """The files of overlays/<env> that hold its images, models and weights."""

    def __init__(self, repo: Path, env: str):
        self.repo = repo
        self.env = env
        self.directory = repo / "overlays" / env
        if not (self.directory / "kustomization.yaml").is_file():
            known = sorted(p.name for p in (repo / "overlays").iterdir() if (p / "kustomization.yaml").is_file()) \
                if (repo / "overlays").is_dir() else []
            raise UsageError(f"--env {env}: no overlays/{env}/kustomization.yaml (environments: {', '.join(known)})")
        self.kustomization = Document.load(self.directory / "kustomization.yaml",
                                           f"overlays/{env}/kustomization.yaml")
        weights = self.directory / WEIGHTS_FILE
        self.weights = Document.load(weights, f"overlays/{env}/{WEIGHTS_FILE}") if weights.is_file() else None

    # -- reading
    def image(self, slot: str) -> dict:
        for entry in self.kustomization.data.get("images") or []:
            if entry.get("name") == IMAGE_NAMES[slot]:
                return entry
        raise InputError(f"no images: entry named {IMAGE_NAMES[slot]}", self.kustomization.display)

    def image_ref(self, slot: str) -> str:
        entry = self.image(slot)
        ref = f"{entry.get('newName', entry['name'])}:{entry.get('newTag', '')}".rstrip(":")
        return ref + (f"@{entry['digest']}" if entry.get("digest") else "")

    def _models(self) -> list:
        for gen in self.kustomization.data.get("configMapGenerator") or []:
            if gen.get("name") == MODELS_CONFIGMAP:
                return gen.setdefault("literals", [])
        raise InputError(f"no configMapGenerator named {MODELS_CONFIGMAP}", self.kustomization.display)

    def model(self, slot: str) -> str | None:
        for literal in self._models():
            key, _, value = str(literal).partition("=")
            if key == slot:
                return value
        return None

    def _weight_op(self, slot: str) -> Any:
        if self.weights is None:
            raise InputError("no canary weights (the overlay does not use the istio component)",
                             f"overlays/{self.env}/{WEIGHTS_FILE}")
        for op in self.weights.data or []:
            if op.get("path") == WEIGHT_PATHS[slot]:
                return op
        raise InputError(f"no operation on {WEIGHT_PATHS[slot]}", self.weights.display)

    def weight(self, slot: str) -> int | None:
        return None if self.weights is None else self._weight_op(slot).get("value")

    # -- editing
    def set_weights(self, v2: int) -> None:
        self._weight_op("v1")["value"] = 100 - v2
        self._weight_op("v2")["value"] = v2

    def copy_image(self, source: dict, slot: str) -> None:
        entry = self.image(slot)
        for key in ("newName", "newTag", "digest"):
            if key in source:
                entry[key] = source[key]
            elif key in entry:
                del entry[key]

    def set_model(self, slot: str, version: str) -> None:
        literals = self._models()
        for index, literal in enumerate(literals):
            if str(literal).partition("=")[0] == slot:
                literals[index] = f"{slot}={version}"
                return
        literals.append(f"{slot}={version}")

    def documents(self) -> list[Document]:
        return [d for d in (self.kustomization, self.weights) if d is not None]


def check_weight(value: str) -> int:
    try:
        weight = int(value)
    except ValueError:
        raise UsageError(f"--weight {value}: expected a whole number from 0 to 100") from None
    if not 0 <= weight <= 100:
        raise UsageError(f"--weight {value}: must be between 0 and 100")
    return weight


def status(repo: Path) -> list[dict[str, Any]]:
    rows = []
    overlays = repo / "overlays"
    for directory in sorted(p for p in overlays.iterdir() if (p / "kustomization.yaml").is_file()):
        overlay = Overlay(repo, directory.name)
        rows.append({"env": overlay.env, "v1_image": overlay.image_ref("v1"), "v2_image": overlay.image_ref("v2"),
                     "v1_model": overlay.model("v1"), "v2_model": overlay.model("v2"),
                     "v1_weight": overlay.weight("v1"), "v2_weight": overlay.weight("v2")})
    return rows


def apply(repo: Path, overlays: list[Overlay], kubernetes_version: str) -> list[Finding]:
    """Write the edited files, re-validate the touched roots (schema and
    policy); on any error finding, put every file back as it was."""
    from scripts import policy, schema
    from scripts.discover import discover
    from scripts.policy_support import PolicyConfig
    from scripts.render import render_all
    from scripts.validate import render_findings

    written: list[Document] = []
    try:
        for overlay in overlays:
            for document in overlay.documents():
                new = document.render()
                if new != document.original:
                    document.path.write_text(new, encoding="utf-8")
                    written.append(document)
        touched = {f"overlays/{o.env}" for o in overlays}
        targets = [t for t in discover(repo).targets if t.path in touched]
        renders = render_all(repo, targets)
        findings = render_findings(renders)
        findings += schema.run(repo, renders, kubernetes_version)
        findings += policy.run(policy.PolicyContext(repo, renders, kubernetes_version, PolicyConfig.load(repo)))
        errors = [f for f in findings if f.severity == "error"]
    except BaseException:
        for document in written:
            document.path.write_text(document.original, encoding="utf-8")
        raise
    if errors:
        for document in written:
            document.path.write_text(document.original, encoding="utf-8")
    return errors
