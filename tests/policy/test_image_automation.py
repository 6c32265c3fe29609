"""Flux image automation: the markers in the overlays, and the objects of
the one cluster that runs the automation (image-automation-controller and
image-reflector-controller v1.2, Flux 2.9; see
scripts/stages/imageautomation.py for what the controller reads).

`image_policy_markers` runs on every root that is not a Flux build, on the
files it reads: what a marker says and where it sits (a setter the
controller has, on the field that setter belongs on, paired tag and digest,
the canary slot of an environment config/policy.yaml automates). Its
findings point at the marker's file and line.

`image_update_automation` runs on the roots that declare the automation's
objects: only the cluster config names may run it; its GitRepository, its
branches (never the reconciled one), its `update.path` (inside the
repository and the artifact, one automated environment each, no other), and
every marker under that path against the ImagePolicies of this cluster.
`ImagePolicy` and `ImageRepository` objects are checked wherever they are
declared.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path, PurePosixPath

from scripts.core.model import Render, Resource, SourceRef
from scripts.loading import sourceignore
from scripts.stages.imageautomation import (
    IMAGES_ENTRY_FIELDS,
    KUSTOMIZATION_FILES,
    Marker,
    controller_reads,
    covers,
    environment_of_file,
    files_under,
    is_image_object,
    normalized_url,
    push_branches,
    repository_path,
    scan_markers,
    slot_of_image_name,
)
from scripts.stages.policy_support import (
    PolicyConfig,
    Violation,
    assert_no_violations,
    environment_of,
    selector_matches,
)

MARKER_FIX = 'write `# {"$imagepolicy": "NAMESPACE:POLICY:tag"}` at the end of the canary entry\'s newTag line ' \
             "and `...:digest` at the end of its digest line"
FIELD_WORDS = {"tag": "tag", "digest": "digest", "name": "image name", None: "whole reference (name:tag@digest)"}
REFLECTING = ("IfNotPresent", "Always")


def _read(repo: Path, file: str) -> str | None:
    try:
        return (repo / file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # the render and lint stages report an unreadable file


def _scanner(repo: Path):
    """scan_markers over the repository's files, each file read and scanned once."""
    seen: dict[str, list[Marker]] = {}

    def markers(file: str) -> list[Marker]:
        if file not in seen:
            text = _read(repo, file)
            seen[file] = scan_markers(text, file) if text else []
        return seen[file]
    return markers


def _marker_object(marker: Marker) -> Resource:
    name = marker.setter or marker.entry.get("name") or marker.file
    return Resource(doc={"kind": "ImagePolicyMarker", "metadata": {"name": name}},
                    source=SourceRef(marker.file, marker.line))


def _violation(marker: Marker, problem: str, fix: str) -> Violation:
    return Violation(_marker_object(marker), problem, fix, marker.where)


# -- markers, on every root that reads them ----------------------------------

def _placement_problem(marker: Marker, root_env: str | None, root: str, config: PolicyConfig) -> tuple[str, str] | None:
    settings = config.image_automation
    suffix = marker.suffix
    if marker.field_kind == "container-image":
        if suffix is not None:
            return (f"marks a container's image with :{suffix}: the automation would write only the "
                    f"{FIELD_WORDS[suffix]} into it", "mark the canary slot's images: entry instead")
        return ("sets a container's image directly: in this tree a slot's image is pinned by its overlay's images: "
                "entry, and a marker here cannot be tied to one slot", "mark the canary slot's images: entry instead")
    expected = IMAGES_ENTRY_FIELDS.get(marker.key or "") if marker.field_kind == "images-entry" else None
    if expected is None:
        return (f"sits on {marker.where}, not on an image field: the automation would overwrite it with the image's "
                f"{FIELD_WORDS[suffix]}", "move it to the newTag (:tag) or digest (:digest) of the images: entry "
                                           "it should move")
    if suffix != expected:
        return (f"puts the image's {FIELD_WORDS[suffix]} into {marker.key}, which takes the {FIELD_WORDS[expected]}",
                f"name the setter {marker.policy.replace('/', ':')}:{expected}")
    name = marker.entry.get("name", "")
    slot = slot_of_image_name(name)
    if slot != settings.slot:
        what = f"the {slot} slot's image" if slot else f"image {name!r}, not a model slot's"
        return (f"moves {what}; only the canary slot ({settings.slot}) follows the registry, the stable slot moves "
                "by `promote` after canary analysis", f"remove the marker (keep markers on the -{settings.slot} entry)")
    if root_env is None or root_env not in settings.environments:
        automated = ", ".join(sorted(settings.environments)) or "none"
        whose = f"environment {root_env}" if root_env else f"{root}, not an overlay"
        return (f"is read by {root} ({whose}), which does not follow the registry (config/policy.yaml "
                f"image_automation.environments: {automated}); it moves only by `promote`, after canary analysis",
                "remove the marker")
    if environment_of_file(marker.file) != root_env:
        return (f"is in {marker.file}, outside overlays/{root_env}: the automation for {root_env} writes only its "
                "own overlay, and a shared file would move other environments too",
                f"keep the markers in overlays/{root_env}'s own kustomization")
    return None


def _pair_problems(markers: list[Marker], config: PolicyConfig) -> list[Violation]:
    """Tag and digest of one images: entry move together, from one policy."""
    first = markers[0]
    suffixes = {m.suffix for m in markers}
    policies = sorted({m.policy for m in markers})
    entry = first.entry.get("name", "?")
    setter = policies[0].replace("/", ":")
    out = []
    if len(policies) > 1:
        out.append(_violation(first, f"the markers of images[{entry}] name different ImagePolicies "
                                     f"({', '.join(policies)}): its tag and digest would come from different images",
                              "name one ImagePolicy in every marker of the entry"))
    if config.require_digest and "tag" in suffixes and "digest" not in suffixes:
        out.append(_violation(first, f"images[{entry}] has a :tag marker but no :digest marker: the automation "
                                     "would move the tag and keep the old digest, and a digest wins over a tag, so "
                                     "the pods would keep the old image",
                              f"add `digest:` with `# {{\"$imagepolicy\": \"{setter}:digest\"}}`"))
    if "digest" in suffixes and "tag" not in suffixes:
        out.append(_violation(first, f"images[{entry}] has a :digest marker but no :tag marker: the digest would move "
                                     "and the tag would name another image",
                              f"add `# {{\"$imagepolicy\": \"{setter}:tag\"}}` on newTag"))
    return out


def check_image_policy_markers(render: Render, config: PolicyConfig, repo: Path) -> list[Violation]:
    if render.target.flux is not None:
        return []  # the overlay's own root reports its markers
    root = render.target.directory
    root_env = environment_of(render)
    out: list[Violation] = []
    entries: dict[tuple[str, int | None], list[Marker]] = defaultdict(list)
    broken: set[tuple[str, int | None]] = set()  # entries with a marker already reported
    for file in sorted(f for f in render.target.sources if controller_reads(f) and not f.startswith("..")):
        text = _read(repo, file)
        for marker in scan_markers(text, file) if text else []:
            problem = (f"{marker.text!r} {marker.problem}", MARKER_FIX) if marker.problem or not marker.setter \
                else _placement_problem(marker, root_env, root, config)
            if problem:
                out.append(_violation(marker, *problem))
                broken.add((file, marker.entry_line))
            else:
                entries[(file, marker.entry_line)].append(marker)
    # Pairs only where every marker of the entry is sound: one finding per mistake.
    for key in sorted(set(entries) - broken, key=lambda k: (k[0], k[1] or 0)):
        out += _pair_problems(entries[key], config)
    return out


def test_image_policy_markers(render, config, policy):
    assert_no_violations(check_image_policy_markers(render, config, policy.repo))


# -- the automation's objects -------------------------------------------------

def _find(render: Render, group: str, kind: str, name: object, namespace: str | None) -> Resource | None:
    return next((o for o in render.objects if o.kind == kind and o.api_version.startswith(group + "/")
                 and o.name == name and (o.namespace or "default") == (namespace or "default")), None)


def _git_branch(repository: Resource) -> str:
    ref = (repository.doc.get("spec") or {}).get("ref") or {}
    return str(ref.get("branch") or ("" if ref else "master"))  # source-controller's default is master


def _reconciled(render: Render, source: Resource) -> list[Resource]:
    """The GitRepositories this cluster applies from (a Flux Kustomization's
    source) that fetch the automation's repository."""
    url = normalized_url((source.doc.get("spec") or {}).get("url"))
    used = []
    for ks in (o for o in render.objects if o.kind == "Kustomization"
               and o.api_version.startswith("kustomize.toolkit.fluxcd.io/")):
        ref = (ks.doc.get("spec") or {}).get("sourceRef") or {}
        if ref.get("kind", "GitRepository") != "GitRepository":
            continue
        repository = _find(render, "source.toolkit.fluxcd.io", "GitRepository", ref.get("name"),
                           ref.get("namespace") or ks.namespace)
        if repository is not None and normalized_url((repository.doc.get("spec") or {}).get("url")) == url \
                and repository not in used:
            used.append(repository)
    return used


def _branch_problems(automation: Resource, source: Resource, render: Render,
                     pushed: dict[str, str]) -> list[Violation]:
    spec = automation.doc.get("spec") or {}
    checkout = (spec.get("git") or {}).get("checkout")
    checkout_branch = str(((checkout or {}).get("ref") or {}).get("branch") or "") if checkout else \
        _git_branch(source)
    branches = push_branches(spec, checkout_branch or None)
    if not branches:
        return [Violation(automation, "has no branch to push to (no git.push.branch, and it checks out a tag or "
                                      "commit)", "set git.push.branch: image-updates/<environment>")]
    reconciled = {_git_branch(r): r.name for r in _reconciled(render, source)}
    out = []
    for branch in branches:
        if branch in reconciled:
            out.append(Violation(automation, f"pushes to {branch}, the branch Flux reconciles "
                                             f"(GitRepository/{reconciled[branch]}): every image update would "
                                             "deploy with no pull request, no validation and no review",
                                 "push to a branch of its own (git.push.branch: image-updates/<environment>)"))
        elif branch == checkout_branch:
            out.append(Violation(automation, f"pushes to {branch}, the branch it checks out: its updates would land "
                                             "there with no pull request",
                                 "push to a branch of its own (git.push.branch: image-updates/<environment>)"))
        elif branch in pushed:
            out.append(Violation(automation, f"pushes to {branch}, as ImageUpdateAutomation/{pushed[branch]} does: "
                                             "each force-pushes the branch and erases the other's update",
                                 "give each ImageUpdateAutomation its own push branch"))
        pushed.setdefault(branch, automation.name)
    return out


def _marker_problems(marker: Marker, automation: Resource, render: Render, config: PolicyConfig,
                     repository_images: dict[str, str]) -> list[Violation]:
    """One marker under the automation's update.path, against this cluster's ImagePolicies."""
    namespace = automation.namespace or "default"
    marker_namespace, name, suffix = marker.parts
    if marker_namespace != namespace:
        return [_violation(marker, f"names ImagePolicy {marker.policy}, but ImageUpdateAutomation/{automation.name} "
                                   f"reads only the ImagePolicies of {namespace}: it would never set this field",
                           f"name {namespace}:{name}:{suffix or ''}".rstrip(":"))]
    policy = _find(render, "image.toolkit.fluxcd.io", "ImagePolicy", name, namespace)
    if policy is None:
        return [_violation(marker, f"names ImagePolicy {marker.policy}, which {render.target.directory} does not "
                                   f"declare: ImageUpdateAutomation/{automation.name} would never set this field",
                           "name an ImagePolicy of this cluster, or declare it")]
    out = []
    selector = (automation.doc.get("spec") or {}).get("policySelector")
    if selector is not None and not selector_matches(selector, policy.labels):
        out.append(_violation(marker, f"names ImagePolicy {marker.policy}, which the policySelector of "
                                      f"ImageUpdateAutomation/{automation.name} does not select: it would never "
                                      "set this field",
                              "label the policy to match the selector, or name the environment's own policy"))
    spec = policy.doc.get("spec") or {}
    if suffix == "digest" and spec.get("digestReflectionPolicy") not in REFLECTING:
        out.append(_violation(marker, f"takes the digest of ImagePolicy {marker.policy}, which does not reflect "
                                      "digests: the automation would write an empty digest",
                              "set the policy's digestReflectionPolicy: IfNotPresent"))
    env = environment_of_file(marker.file)
    rule = config.image_automation.environments.get(env or "")
    if rule is not None:
        follows = (spec.get("policy") or {}).get("semver", {}).get("range") if rule.semver is not None else \
            (spec.get("filterTags") or {}).get("pattern")
        wanted = rule.semver if rule.semver is not None else rule.tag_pattern
        if follows != wanted:
            out.append(Violation(policy, f"gives {env}'s canary the tags of {follows!r}, but config/policy.yaml "
                                         f"image_automation.environments.{env} says {rule.describe()}",
                                 "make the policy and the config agree"))
    image = repository_images.get(marker.policy)
    new_name = marker.entry.get("newName") or marker.entry.get("name")
    if image is not None and marker.field_kind == "images-entry" and new_name != image:
        out.append(_violation(marker, f"takes its {FIELD_WORDS[suffix]} from {image} (the policy's ImageRepository), "
                                      f"but the entry's image is {new_name}: it would pin the wrong image",
                              "point the policy at the entry's image, or the marker at that image's policy"))
    return out


def _path_problems(automation: Resource, path: str, render: Render, source: Resource, repo: Path,
                   config: PolicyConfig, prefix: str, ignore_patterns: list[str]) -> list[Violation]:
    written = f"update.path {((automation.doc.get('spec') or {}).get('update') or {}).get('path', './')!r}"
    if not (repo / path).is_dir():
        return [Violation(automation, f"{written} is not a directory of the repository", "point it at "
                                      "./overlays/<environment>")]
    out = []
    for repository in _reconciled(render, source) or [source]:
        excluded = sourceignore.artifact_excludes(ignore_patterns, (repository.doc.get("spec") or {}).get("ignore"))
        if path and excluded(path + "/"):
            out.append(Violation(automation, f"{written} lies outside what GitRepository/{repository.name} keeps in "
                                             "its artifact (spec.ignore): Flux would never apply what it writes",
                                 "write only to directories the artifact keeps (overlays/)"))
    settings = config.image_automation
    automated = []
    for env in sorted(config.environments):
        overlay = str(PurePosixPath(prefix, "overlays", env)) if prefix else f"overlays/{env}"
        if not (covers(path, overlay) or covers(overlay, path)) or not (repo / overlay).is_dir():
            continue
        if env in settings.environments:
            automated.append(env)
        else:
            out.append(Violation(automation, f"{written} covers {overlay}: {env} moves only by `promote`, after "
                                             "canary analysis, never by image automation",
                                 "narrow update.path to ./overlays/<environment> of an environment in "
                                 "config/policy.yaml image_automation.environments"))
    if len(automated) > 1:
        out.append(Violation(automation, f"{written} covers {' and '.join(automated)}: their updates would share one "
                                         "branch and one pull request",
                             "one ImageUpdateAutomation per environment, each with its own path and push branch"))
    return out


def _policy_problems(render: Render, config: PolicyConfig) -> tuple[list[Violation], dict[str, str]]:
    """Every ImagePolicy: its ImageRepository exists, scans an allowed
    registry, and (with images.require_digest) the policy reflects digests.
    Returns the violations and policy -> the image it follows."""
    out, images = [], {}
    for policy in (o for o in render.objects if is_image_object(o, "ImagePolicy")):
        spec = policy.doc.get("spec") or {}
        ref = spec.get("imageRepositoryRef") or {}
        namespace = ref.get("namespace") or policy.namespace
        repository = _find(render, "image.toolkit.fluxcd.io", "ImageRepository", ref.get("name"), namespace)
        if repository is None:
            out.append(Violation(policy, f"follows ImageRepository {namespace or 'default'}/{ref.get('name')}, which "
                                         f"{render.target.directory} does not declare", "declare it, or fix the name"))
        else:
            image = str((repository.doc.get("spec") or {}).get("image") or "")
            images[f"{policy.namespace or 'default'}/{policy.name}"] = image
            if not any(image.startswith(prefix) for prefix in config.registries):
                out.append(Violation(policy, f"follows {image} (ImageRepository/{repository.name}), which is not "
                                             "from an allowed registry", f"use one of {config.registries} "
                                                                         "(config/policy.yaml registries)"))
            if (repository.namespace or "default") != (policy.namespace or "default") and \
                    not (repository.doc.get("spec") or {}).get("accessFrom"):
                out.append(Violation(policy, f"follows ImageRepository/{repository.name} of another namespace, which "
                                             "grants no accessFrom: the controller refuses the reference",
                                     "keep the policy and its repository in one namespace"))
        if config.require_digest and spec.get("digestReflectionPolicy") not in REFLECTING:
            out.append(Violation(policy, "does not reflect digests (digestReflectionPolicy is Never, the default): "
                                         "images are pinned by digest here, and its :digest setter would be empty",
                                 "set digestReflectionPolicy: IfNotPresent (tags are immutable releases)"))
    return out, images


def _designated(render: Render, config: PolicyConfig) -> bool:
    directory = PurePosixPath(render.target.directory)
    return render.target.flux is None and directory.parent.name == "clusters" and \
        directory.name == config.image_automation.cluster


def check_image_update_automation(render: Render, config: PolicyConfig, repo: Path) -> list[Violation]:
    settings = config.image_automation
    automations = [o for o in render.objects if is_image_object(o, "ImageUpdateAutomation")]
    out, repository_images = _policy_problems(render, config)
    if not _designated(render, config):
        for automation in automations:
            out.append(Violation(automation, f"runs image automation in {render.target.directory}, but config/"
                                             f"policy.yaml image_automation.cluster is {settings.cluster or 'unset'}: "
                                             "two clusters writing to one repository race, each force-pushing the "
                                             "update branches from its own view of the registry",
                                 f"declare ImageUpdateAutomations only in clusters/{settings.cluster or '<cluster>'}"))
        return out
    prefix = str(PurePosixPath(render.target.directory).parent.parent)
    prefix = "" if prefix == "." else prefix
    markers_of = _scanner(repo)
    pushed: dict[str, str] = {}
    paths: dict[str, str] = {}  # automation -> its update.path, repository-relative
    for automation in automations:
        spec = automation.doc.get("spec") or {}
        ref = spec.get("sourceRef") or {}
        source = _find(render, "source.toolkit.fluxcd.io", "GitRepository", ref.get("name"),
                       ref.get("namespace") or automation.namespace)
        if ref.get("kind", "GitRepository") != "GitRepository" or source is None:
            out.append(Violation(automation, f"sourceRef {ref.get('kind', 'GitRepository')}/{ref.get('name')} is not "
                                             f"a GitRepository of {render.target.directory}",
                                 "point sourceRef at the GitRepository this cluster reconciles"))
            continue
        out += _branch_problems(automation, source, render, pushed)
        path = repository_path((spec.get("update") or {}).get("path"))
        if path is None:
            out.append(Violation(automation, "update.path leaves the repository", "point it at "
                                                                                  "./overlays/<environment>"))
            continue
        paths[automation.name] = path
        # Only the .sourceignore files that can apply to the path: a large tree is not walked.
        ignore_patterns = sourceignore.repository_patterns(repo, path)
        found = _path_problems(automation, path, render, source, repo, config, prefix, ignore_patterns)
        out += found
        if found and not (repo / path).is_dir():
            continue
        artifacts = [(r.name, sourceignore.artifact_excludes(ignore_patterns, (r.doc.get("spec") or {}).get("ignore")))
                     for r in _reconciled(render, source) or [source]]
        for file in files_under(repo, path):
            markers = [m for m in markers_of(file) if m.setter and not m.problem]
            for name, excluded in artifacts if markers else []:
                if excluded(file):
                    out.append(_violation(markers[0], f"is in {file}, which GitRepository/{name} leaves out of its "
                                                      "artifact (spec.ignore or a .sourceignore): Flux would never "
                                                      "apply what the automation writes there",
                                          "keep marked files where the artifact keeps them (overlays/)"))
            for marker in markers:
                out += _marker_problems(marker, automation, render, config, repository_images)
    out += _coverage_problems(render, repo, config, prefix, paths, automations, markers_of)
    return out


def _coverage_problems(render: Render, repo: Path, config: PolicyConfig, prefix: str, paths: dict[str, str],
                       automations: list[Resource], markers_of) -> list[Violation]:
    """Each automated environment: an automation writes its overlay, and its
    canary entry carries markers (whether they are right is
    image_policy_markers' to say, on the overlay)."""
    settings = config.image_automation
    anchor = automations[0] if automations else next(iter(render.objects), None)
    if anchor is None:
        anchor = Resource(doc={"kind": "Kustomization", "metadata": {"name": render.target.directory}},
                          source=SourceRef(f"{render.target.directory}/kustomization.yaml"))
    out = []
    for env in sorted(settings.environments):
        overlay = str(PurePosixPath(prefix, "overlays", env)) if prefix else f"overlays/{env}"
        if not (repo / overlay).is_dir():
            continue
        writers = [a for a in automations if a.name in paths and covers(paths[a.name], overlay)]
        if not writers:
            out.append(Violation(anchor, f"config/policy.yaml automates {env}, but no ImageUpdateAutomation of "
                                         f"{render.target.directory} has an update.path that covers {overlay}",
                                 f"declare one with update.path: ./{overlay} and push.branch: image-updates/{env}"))
            continue
        kfile = next((f"{overlay}/{n}" for n in KUSTOMIZATION_FILES if (repo / overlay / n).is_file()), None)
        marked = [m for m in (markers_of(kfile) if kfile else [])
                  if m.field_kind == "images-entry" and slot_of_image_name(m.entry.get("name", "")) == settings.slot]
        if not marked:
            out.append(Violation(writers[0], f"config/policy.yaml automates {env}, but {kfile or overlay} has no "
                                             f"image policy markers on its {settings.slot} images: entry: the "
                                             "automation would never move it", MARKER_FIX))
    return out


def test_image_update_automation(render, config, policy):
    assert_no_violations(check_image_update_automation(render, config, policy.repo))
