"""`canary` and `promote`: edit an overlay's weights and images the way a
reviewer expects, keeping comments and layout (ruamel.yaml round-trip).

An edit never reaches the user's files unless it validates: the new files
are written into a copy of what the overlay's build reads, that copy is
rendered and checked (schema and policy), and only then are the files
swapped in, each atomically (a temp file in the same directory, fsync,
rename), with SIGINT/SIGTERM held off between the first rename and the
last. The whole read-edit-check-swap runs under a lock, so two runs one
after the other each see the other's result. A file whose content would
not change is not written at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from scripts.core.errors import InputError, UsageError
from scripts.core.model import Finding
from scripts.stages.modelpins import ModelPin, parse_pin

WEIGHTS_FILE = "canary-weights.yaml"
WEIGHT_PATHS = {"v1": "/spec/http/0/route/0/weight", "v2": "/spec/http/0/route/1/weight"}
MIRROR_PATH = "/spec/http/0/mirror"
MIRROR_PERCENT_PATH = "/spec/http/0/mirrorPercentage"
# The header route is inserted in front of the weighted route, so its op
# comes last in the patch: the ops above it still address the weighted one.
HEADER_ROUTE_PATH = "/spec/http/0"
HEADER_ROUTE_NAME = "canary-by-header"
SERVICE_HOST = "ai-inference-service"
HEADER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
SHADOW_COMMENT = "Shadow:"  # starts the comment `canary shadow` writes, so it can remove it again
HEADER_COMMENT = "Requests with"
IMAGE_NAMES = {"v1": "ai-inference-service-v1", "v2": "ai-inference-service-v2"}
MODELS_CONFIGMAP = "ai-inference-service-models"


ENV_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
LOCK_FILE = ".cache/overlay-edit.lock"
# A key whose block sequence starts at the key's own column, as
# `kustomize edit` writes them ("resources:\n- a.yaml").
_FLUSH_SEQUENCE = re.compile(r"^( *)[^\s#-][^\n]*:[ \t]*\n(?:[ \t]*#[^\n]*\n)*\1- ", re.MULTILINE)


def _yaml(flush_sequences: bool) -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    if flush_sequences:
        yaml.indent(mapping=2, sequence=2, offset=0)
    else:
        yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _plain(data: Any) -> Any:
    """ruamel's round-trip objects as plain data, to tell a real change."""
    return json.loads(json.dumps(data, default=str))


@dataclass
class Document:
    """A YAML file loaded for a round-trip edit."""

    path: Path
    display: str
    original: str
    data: Any
    yaml: YAML

    plain: Any = None  # the data as loaded, to tell whether an edit changed anything

    @classmethod
    def load(cls, path: Path, display: str) -> Document:
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise InputError("file not found", display) from None
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})",
                             display) from None
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", display) from None
        # JSON patches are a top-level list with dashes at column 0; other
        # files keep the sequence style they were written in.
        first = next((ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
        yaml = _yaml(flush_sequences=first.startswith("-") or bool(_FLUSH_SEQUENCE.search(text)))
        try:
            data = yaml.load(text)
        except YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise InputError(f"invalid YAML: {getattr(exc, 'problem', exc)}", display,
                             mark.line + 1 if mark else None) from None
        except Exception as exc:  # noqa: BLE001 - ruamel raises a few non-YAMLError types on odd input
            raise InputError(f"cannot parse: {exc}", display) from None
        return cls(path, display, text, data, yaml, _plain(data))

    @property
    def changed(self) -> bool:
        return _plain(self.data) != self.plain

    def render(self) -> str:
        if not self.changed:
            return self.original
        out = io.StringIO()
        self.yaml.dump(self.data, out)
        return out.getvalue()


def environments(repo: Path) -> list[str]:
    """The overlays of the repository: directories of overlays/ (not links
    out of it) that hold a kustomization."""
    from scripts.loading.discover import kustomization_file

    overlays = repo / "overlays"
    if not overlays.is_dir():
        return []
    real = os.path.realpath(overlays)
    return sorted(p.name for p in overlays.iterdir()
                  if p.is_dir() and not p.is_symlink() and os.path.dirname(os.path.realpath(p)) == real
                  and kustomization_file(p) is not None)


def check_env(repo: Path, env: str, flag: str = "--env") -> str:
    """An environment is a name from overlays/, never a path."""
    known = environments(repo)
    if not ENV_NAME.match(env) or env not in known:
        raise UsageError(f"{flag} {env}: not an environment (choose from: {', '.join(known) or 'none found'})")
    return env


class Overlay:
    """The files of overlays/<env> that hold its images, models and weights."""

    def __init__(self, repo: Path, env: str, flag: str = "--env"):
        from scripts.loading.discover import kustomization_file

        self.repo = repo
        self.env = check_env(repo, env, flag)
        self.directory = repo / "overlays" / env
        kfile = kustomization_file(self.directory)
        assert kfile is not None
        self.kustomization = Document.load(kfile, f"overlays/{env}/{kfile.name}")
        if not isinstance(self.kustomization.data, dict):
            raise InputError("a kustomization must be a YAML mapping", self.kustomization.display)
        weights = self.directory / WEIGHTS_FILE
        self.weights = Document.load(weights, f"overlays/{env}/{WEIGHTS_FILE}") if weights.is_file() else None
        if self.weights is not None and not isinstance(self.weights.data, list):
            raise InputError("expected a list of JSON patch operations", self.weights.display)

    # -- reading
    def image(self, slot: str) -> dict:
        images = self.kustomization.data.get("images") or []
        if not isinstance(images, list):
            raise InputError("`images` must be a list", self.kustomization.display)
        for entry in images:
            if isinstance(entry, dict) and entry.get("name") == IMAGE_NAMES[slot]:
                return entry
        raise InputError(f"no images: entry named {IMAGE_NAMES[slot]}", self.kustomization.display)

    def image_ref(self, slot: str) -> str:
        entry = self.image(slot)
        ref = f"{entry.get('newName', entry['name'])}:{entry.get('newTag', '')}".rstrip(":")
        return ref + (f"@{entry['digest']}" if entry.get("digest") else "")

    def _models(self) -> list:
        generators = self.kustomization.data.get("configMapGenerator") or []
        for gen in generators if isinstance(generators, list) else []:
            if isinstance(gen, dict) and gen.get("name") == MODELS_CONFIGMAP:
                literals = gen.setdefault("literals", [])
                if not isinstance(literals, list):
                    raise InputError(f"configMapGenerator {MODELS_CONFIGMAP}: `literals` must be a list",
                                     self.kustomization.display)
                return literals
        raise InputError(f"no configMapGenerator named {MODELS_CONFIGMAP}", self.kustomization.display)

    def model(self, slot: str) -> str | None:
        """The slot's model literal as written: VERSION@sha256:HEX when pinned."""
        for literal in self._models():
            key, _, value = str(literal).partition("=")
            if key == slot:
                return value
        return None

    def model_pin(self, slot: str) -> ModelPin | None:
        """The slot's model version and digest, or None if it is not pinned."""
        return parse_pin(self.model(slot))

    def _weight_op(self, slot: str) -> Any:
        if self.weights is None:
            raise InputError("no canary weights (the overlay does not use the istio component)",
                             f"overlays/{self.env}/{WEIGHTS_FILE}")
        for op in self.weights.data or []:
            if isinstance(op, dict) and op.get("path") == WEIGHT_PATHS[slot]:
                return op
        raise InputError(f"no operation on {WEIGHT_PATHS[slot]}", self.weights.display)

    def weight(self, slot: str) -> int | None:
        if self.weights is None:
            return None
        value = self._weight_op(slot).get("value")
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"the weight at {WEIGHT_PATHS[slot]} is not a whole number: {value!r}",
                             self.weights.display)
        return value

    def _ops(self) -> list:
        if self.weights is None:
            raise InputError("no canary weights (the overlay does not use the istio component)",
                             f"overlays/{self.env}/{WEIGHTS_FILE}")
        return self.weights.data

    def _find(self, path: str, op: str = "add") -> int | None:
        return next((i for i, item in enumerate(self._ops())
                     if isinstance(item, dict) and item.get("path") == path and item.get("op") == op), None)

    def shadow_percent(self) -> float:
        """The share of v1's traffic mirrored to v2 (0: no shadow)."""
        if self.weights is None:
            return 0
        index = self._find(MIRROR_PERCENT_PATH)
        if index is None:
            return 0
        value = (self._ops()[index].get("value") or {}).get("value") if isinstance(
            self._ops()[index].get("value"), dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"the value at {MIRROR_PERCENT_PATH} must be {{value: PERCENT}}", self.weights.display)
        return value

    def header_route(self) -> tuple[str, str] | None:
        """(header, value) of the route that sends matching requests to v2."""
        index = self._find(HEADER_ROUTE_PATH) if self.weights is not None else None
        if index is None:
            return None
        route = self._ops()[index].get("value") or {}
        try:
            (name, match), = route["match"][0]["headers"].items()
            return str(name), str(match["exact"])
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise InputError(f"the route added at {HEADER_ROUTE_PATH} is not one `canary route` wrote",
                             self._weights_display()) from None

    def _weights_display(self) -> str:
        return self.weights.display if self.weights else f"overlays/{self.env}/{WEIGHTS_FILE}"

    # -- editing
    def _before_header_route(self) -> int:
        index = self._find(HEADER_ROUTE_PATH)
        return len(self._ops()) if index is None else index

    def _remove(self, index: int, marker: str) -> None:
        """Delete an op this tool wrote, and the comment it wrote with it
        (which ruamel, on reading, hangs on the end of the op before)."""
        ops = self._ops()
        ops.ca.items.pop(index, None)
        del ops[index]
        for holder in (ops, ops[index - 1] if index > 0 else None):
            for tokens in list(getattr(getattr(holder, "ca", None), "items", {}).values()):
                for token in (t for group in tokens if group for t in (group if isinstance(group, list) else [group])):
                    if hasattr(token, "value") and marker in token.value:
                        token.value = "".join(line for line in token.value.splitlines(keepends=True)
                                              if marker not in line) or "\n"

    def set_shadow(self, percent: float) -> None:
        ops = self._ops()
        for path in (MIRROR_PATH, MIRROR_PERCENT_PATH):
            index = self._find(path)
            if index is not None:
                self._remove(index, SHADOW_COMMENT)
        if percent <= 0:
            return
        at = self._before_header_route()
        ops.insert(at, {"op": "add", "path": MIRROR_PATH,
                        "value": {"host": SERVICE_HOST, "subset": "v2", "port": {"number": 80}}})
        ops.insert(at + 1, {"op": "add", "path": MIRROR_PERCENT_PATH,
                            "value": {"value": int(percent) if float(percent).is_integer() else percent}})
        ops.yaml_set_comment_before_after_key(
            at, before=f"{SHADOW_COMMENT} a copy of v1's requests goes to v2 too; its responses are discarded.",
            indent=0)

    def set_header_route(self, header: tuple[str, str] | None) -> None:
        ops = self._ops()
        index = self._find(HEADER_ROUTE_PATH)
        if index is not None:
            self._remove(index, HEADER_COMMENT)
        if header is None:
            return
        name, value = header
        ops.append({"op": "add", "path": HEADER_ROUTE_PATH, "value": {
            "name": HEADER_ROUTE_NAME,
            "match": [{"headers": {name: {"exact": value}}}],
            "route": [{"destination": {"host": SERVICE_HOST, "subset": "v2", "port": {"number": 80}}}]}})
        ops.yaml_set_comment_before_after_key(
            len(ops) - 1, before=f"{HEADER_COMMENT} {name}: {value} go to v2 (testers), ahead of the weighted "
                                 "split.", indent=0)

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


def check_percent(value: str) -> float:
    try:
        percent = float(value)
    except ValueError:
        raise UsageError(f"--percent {value}: expected a number from 0 to 100") from None
    if not 0 <= percent <= 100 or percent != percent:
        raise UsageError(f"--percent {value}: must be between 0 and 100")
    return percent


def check_header(value: str) -> tuple[str, str]:
    name, sep, header_value = value.partition("=")
    name = name.strip().lower()
    if not sep or not HEADER_NAME.match(name) or not header_value or any(c in header_value for c in "\r\n"):
        raise UsageError(f"--header {value!r}: expected NAME=VALUE, a header name (letters, digits, dashes) "
                         "and a value")
    return name, header_value


def status(repo: Path) -> list[dict[str, Any]]:
    """Per environment: each slot's image, model literal, model version and
    digest (None when the literal is not pinned), weights, shadow, header route."""
    rows = []
    for env in environments(repo):
        overlay = Overlay(repo, env)
        header = overlay.header_route()
        row: dict[str, Any] = {"env": overlay.env}
        for slot in ("v1", "v2"):
            pin = overlay.model_pin(slot)
            row.update({f"{slot}_image": overlay.image_ref(slot), f"{slot}_model": overlay.model(slot),
                        f"{slot}_model_version": pin.version if pin else None,
                        f"{slot}_model_digest": f"sha256:{pin.digest}" if pin else None})
        row.update({"v1_weight": overlay.weight("v1"), "v2_weight": overlay.weight("v2"),
                    "shadow_percent": overlay.shadow_percent(),
                    "header_route": f"{header[0]}={header[1]}" if header else None})
        rows.append(row)
    return rows


def short_model(row: dict[str, Any], slot: str) -> str:
    """A slot's model for a table: version@sha256:<12 hex>, or the literal
    marked as not pinned."""
    if row[f"{slot}_model_digest"]:
        return f"{row[f'{slot}_model_version']}@{row[f'{slot}_model_digest'][:19]}"
    return f"{row[f'{slot}_model']} (no digest)"


def short_image(reference: str) -> str:
    """An image reference with its digest cut to 12 hex digits, for a table."""
    name, sep, digest = reference.partition("@sha256:")
    return f"{name}@sha256:{digest[:12]}" if sep else reference


@contextlib.contextmanager
def edit_lock(repo: Path) -> Iterator[None]:
    """One overlay edit at a time in this repository (a lock file under
    .cache/, released when the process ends, however it ends)."""
    path = repo / LOCK_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 - held for the block
    except OSError as exc:
        raise InputError(f"cannot create the edit lock: {exc.strerror}", LOCK_FILE) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _validate_copy(repo: Path, overlays: list[Overlay], new_texts: dict[Path, str], kubernetes_version: str
                   ) -> list[Finding]:
    """Render and check the touched overlays in a copy of what their builds
    read, with the new files in it. The user's tree is not written."""
    from scripts.loading.discover import discover
    from scripts.loading.render import render_all, render_findings
    from scripts.stages import policy, schema
    from scripts.stages.policy_support import PolicyConfig

    found = discover(repo)
    touched = {f"overlays/{o.env}" for o in overlays}
    targets = [t for t in found.targets if t.path in touched]
    with tempfile.TemporaryDirectory(prefix="overlay-edit-") as tmp:
        copy = Path(tmp)
        for target in targets:
            for file in target.sources:
                source, destination = repo / file, copy / file
                if file.startswith("..") or not source.is_file():
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, destination)
        for path, text in new_texts.items():
            destination = copy / path.relative_to(repo)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_text(text, encoding="utf-8")
        copied = [t for t in discover(copy).targets if t.path in touched]
        renders = render_all(copy, copied)
        findings = render_findings(renders)
        store = schema.SchemaStore(repo, kubernetes_version)  # the repository's schemas and CRDs
        findings += schema.run(repo, renders, kubernetes_version, store)
        # Rules that read source files (the image policy markers) read the edited copy.
        findings += policy.PolicyRun(copy, kubernetes_version, PolicyConfig.load(repo), store).finish(renders)
    return [f for f in findings if f.severity == "error"]


def _swap_in(documents: list[tuple[Document, str]]) -> None:
    """Write each new file next to its original, fsync, then rename them all
    over the originals with SIGINT/SIGTERM held until the last rename."""
    staged: list[tuple[Document, str]] = []
    try:
        for document, text in documents:
            if document.path.read_bytes().decode("utf-8", errors="replace") != document.original:
                raise InputError("changed by someone else while this edit was checked; run the command again",
                                 document.display)
            fd, tmp = tempfile.mkstemp(dir=document.path.parent, prefix=f".{document.path.name}.")
            staged.append((document, tmp))
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            shutil.copymode(document.path, tmp)
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            for document, tmp in staged:
                os.replace(tmp, document.path)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        staged = []
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}; no file was changed", staged[-1][0].display
                         if staged else documents[0][0].display) from None
    finally:
        for _, tmp in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def apply(repo: Path, overlays: list[Overlay], kubernetes_version: str) -> list[Finding]:
    """Check the edited overlays in a copy; if they validate, swap the
    changed files in. Returns the error findings (then nothing was written).
    Call under edit_lock, with the overlays loaded under it too."""
    documents = [(d, d.render()) for o in overlays for d in o.documents()]
    documents = [(d, text) for d, text in documents if text != d.original]
    if not documents:
        return []
    errors = _validate_copy(repo, overlays, {d.path: text for d, text in documents}, kubernetes_version)
    if not errors:
        _swap_in(documents)
    return errors
