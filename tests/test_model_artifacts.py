"""Model artifacts pinned by digest: the model-fetcher's verification (the
shell the rendered Deployment runs, against a stand-in `aws` that serves a
directory as the bucket), the pin format both sides read, and `promote`,
`canary step` and `canary status` carrying the digest with the version."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from scripts.pullrequest import canary, canaryconfig, canarystep
from scripts.stages.modelpins import PIN, parse_pin
from tests.conftest import REPO

PINNED_V1 = "2024.06.1@sha256:825524ee2d4ebf5e6d63cedf34289bbfe39b66d2c15eea48813fcb3c67c6ff61"
PINNED_V2 = "2024.09.0@sha256:73e4adcf9f5e55aea0f72bf7571187d5c17f10dde00ae7ba054d05e140ebb485"
SHELLS = [s for s in ("/bin/sh", shutil.which("bash")) if s and Path(s).exists()]

# A stand-in for the AWS CLI: `s3 cp SRC DST` and `s3 sync [--exclude P|--include P]... SRC/ DST/`
# against $FAKE_S3/<bucket>/<key>, with the CLI's filter rule (the last matching filter wins).
FAKE_AWS = textwrap.dedent("""\
    import fnmatch, os, shutil, sys
    root = os.environ["FAKE_S3"]
    with open(os.path.join(root, "calls.log"), "a") as log:
        log.write(" ".join(sys.argv[1:]) + "\\n")
    args = [a for a in sys.argv[1:] if a != "--only-show-errors"]
    if os.environ.get("FAKE_S3_DOWN"):
        sys.exit("Could not connect to the endpoint URL")
    def local(url):
        return os.path.join(root, url.removeprefix("s3://"))
    if args[:2] == ["s3", "cp"]:
        source, destination = local(args[2]), args[3]
        if not os.path.isfile(source):
            sys.exit("fatal error: An error occurred (404) when calling the HeadObject operation: Not Found")
        shutil.copyfile(source, destination)
    elif args[:2] == ["s3", "sync"]:
        filters, rest = [], args[2:]
        while rest[0] in ("--exclude", "--include"):
            filters.append((rest[0], rest[1]))
            rest = rest[2:]
        source, destination = local(rest[0]), rest[1]
        for folder, _, files in os.walk(source):
            for name in files:
                path = os.path.relpath(os.path.join(folder, name), source)
                wanted = True
                for kind, pattern in filters:
                    if fnmatch.fnmatch(path, pattern):
                        wanted = kind == "--include"
                if wanted:
                    target = os.path.join(destination, path)
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    shutil.copyfile(os.path.join(folder, name), target)
    else:
        sys.exit("unexpected aws call: " + " ".join(args))
""")


@pytest.fixture(scope="module")
def fetcher_script(real_renders) -> str:
    """The fetcher's script as the kubelet hands it to the shell."""
    deployment = next(o for o in real_renders["overlays/dev"].objects if o.kind == "Deployment")
    fetcher = deployment.doc["spec"]["template"]["spec"]["initContainers"][0]
    assert fetcher["name"] == "model-fetcher" and fetcher["command"] == ["/bin/sh", "-c"]
    script = fetcher["args"][0]
    # The kubelet expands $(NAME) for the container's variables and turns $$ into $.
    for variable in fetcher["env"]:
        assert f"$({variable['name']})" not in script
    return script.replace("$$", "$")


class Bucket:
    """A model version in a directory that stands for the model store."""

    def __init__(self, root: Path, version: str = "2024.09.0"):
        self.root, self.version = root, version
        self.prefix = root / "s3" / "ai-models-dev" / "ai-inference-service" / version
        self.prefix.mkdir(parents=True)
        for name, content in {"config.json": b"{}", "weights/part-1.bin": b"\x00" * 4096,
                              "tokenizer.json": b'{"v": 1}'}.items():
            (self.prefix / name).parent.mkdir(parents=True, exist_ok=True)
            (self.prefix / name).write_bytes(content)
        self.manifest(["config.json", "tokenizer.json", "weights/part-1.bin"])
        (self.prefix / "extra.pkl").write_bytes(b"not listed")  # in the bucket, not in the manifest

    def manifest(self, files: list[str], text: str | None = None) -> None:
        lines = text if text is not None else "".join(
            f"{hashlib.sha256((self.prefix / f).read_bytes()).hexdigest()}  {f}\n" for f in files)
        (self.prefix / "SHA256SUMS").write_text(lines)

    @property
    def pin(self) -> str:
        return f"{self.version}@sha256:{hashlib.sha256((self.prefix / 'SHA256SUMS').read_bytes()).hexdigest()}"


@pytest.fixture
def bucket(tmp_path) -> Bucket:
    return Bucket(tmp_path)


def fetch(script: str, bucket: Bucket, model_version: str, shell: str = "/bin/sh", **env: str
          ) -> subprocess.CompletedProcess:
    """Run the fetcher with /tmp and /models moved into the test's directory."""
    scratch, models, tools = bucket.root / "tmp", bucket.root / "models", bucket.root / "bin"
    for directory in (scratch, models, tools):
        directory.mkdir(exist_ok=True)
    aws = tools / "aws"
    aws.write_text(f"#!{sys.executable}\n{FAKE_AWS}")
    aws.chmod(aws.stat().st_mode | stat.S_IXUSR)
    local = script.replace("/tmp/", f"{scratch}/").replace("/models", str(models))
    return subprocess.run([shell, "-c", local], capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{tools}:/usr/bin:/bin", "HOME": str(scratch),
                               "FAKE_S3": str(bucket.root / "s3"), "MODEL_BUCKET": "ai-models-dev",
                               "MODEL_VERSION": model_version, **env})


def _fetched(bucket: Bucket) -> set[str]:
    models = bucket.root / "models"
    return {p.relative_to(models).as_posix() for p in models.rglob("*") if p.is_file()}


def _refused(proc: subprocess.CompletedProcess, words: str | tuple[str, ...]) -> None:
    assert proc.returncode == 1, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr  # one clear line
    assert lines[0].startswith("model-fetcher: refusing model "), lines[0]
    assert all(w in lines[0] for w in ((words,) if isinstance(words, str) else words)), lines[0]
    assert lines[0].endswith("; the server will not start")


@pytest.mark.parametrize("shell", SHELLS)
def test_a_pinned_model_is_fetched_and_verified(fetcher_script, bucket, shell):
    proc = fetch(fetcher_script, bucket, bucket.pin, shell)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.strip() == f"model-fetcher: model 2024.09.0 verified: sha256:{bucket.pin.split(':')[1]}, " \
                                  "3 files"
    assert _fetched(bucket) == {"config.json", "tokenizer.json", "weights/part-1.bin"}  # extra.pkl never fetched


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("case", ["no digest", "uppercase", "short", "other algorithm", "path in the version",
                                  "wrong digest", "tampered file", "file missing", "no manifest", "store down",
                                  "path out of the model", "absolute path", "glob in a path", "empty manifest",
                                  "malformed manifest line"])
def test_anything_unverified_stops_the_pod_with_one_line(fetcher_script, bucket, shell, case):
    digest = bucket.pin.partition("@sha256:")[2]
    env: dict[str, str] = {}
    pin = bucket.pin
    words = {"no digest": "no digest pinned", "uppercase": "no digest pinned", "short": "no digest pinned",
             "other algorithm": "no digest pinned", "path in the version": "no digest pinned",
             "wrong digest": f"not {'0' * 64}", "tampered file": "does not match SHA256SUMS: weights/part-1.bin: "
             "FAILED", "file missing": ("does not match SHA256SUMS: ", "tokenizer.json"),
             "no manifest": "cannot download s3://ai-models-dev/ai-inference-service/2024.09.0/SHA256SUMS: fatal",
             "store down": "cannot download s3://ai-models-dev/ai-inference-service/2024.09.0/SHA256SUMS: Could not",
             "path out of the model": "lists a path it may not: ../secrets", "absolute path": "lists a path it may "
             "not: /etc/passwd", "glob in a path": "lists a path it may not: weights/*",
             "empty manifest": "lists no files", "malformed manifest line": "does not match SHA256SUMS"}[case]
    if case == "no digest":
        pin = "2024.09.0"
    elif case == "uppercase":
        pin = f"2024.09.0@sha256:{digest.upper()}"
    elif case == "short":
        pin = f"2024.09.0@sha256:{digest[:63]}"
    elif case == "other algorithm":
        pin = f"2024.09.0@sha512:{digest}"
    elif case == "path in the version":
        pin = f"../2024.09.0@sha256:{digest}"
    elif case == "wrong digest":
        pin = f"2024.09.0@sha256:{'0' * 64}"
    elif case == "tampered file":
        (bucket.prefix / "weights/part-1.bin").write_bytes(b"\x01" * 4096)
    elif case == "file missing":
        (bucket.prefix / "tokenizer.json").unlink()
    elif case == "no manifest":
        (bucket.prefix / "SHA256SUMS").unlink()
    elif case == "store down":
        env["FAKE_S3_DOWN"] = "1"
    else:
        listed = {"path out of the model": "../secrets", "absolute path": "/etc/passwd",
                  "glob in a path": "weights/*"}.get(case)
        text = {"empty manifest": "", "malformed manifest line": f"{'a' * 64}  config.json\nnot a checksum line\n"}
        bucket.manifest([], f"{'a' * 64}  {listed}\n" if listed else text[case])
        pin = bucket.pin
    proc = fetch(fetcher_script, bucket, pin, shell, **env)
    _refused(proc, words)
    if case in ("no digest", "uppercase", "short", "other algorithm", "path in the version", "wrong digest"):
        assert _fetched(bucket) == set()  # nothing fetched before the pin is checked


@pytest.mark.parametrize("value,pinned", [
    (PINNED_V2, True), ("v2-rc.1_a@sha256:" + "0" * 64, True), ("2024.09.0", False), ("2024.09.0@sha256:", False),
    ("2024.09.0@sha256:" + "0" * 65, False), ("2024.09.0@sha256:" + "G" * 64, False), ("@sha256:" + "0" * 64, False),
    (".hidden@sha256:" + "0" * 64, False), ("a/b@sha256:" + "0" * 64, False), ("a b@sha256:" + "0" * 64, False),
    ("2024.09.0@sha256:" + "0" * 64 + "\n", False), ("x\n2024.09.0@sha256:" + "0" * 64, False),
])
def test_the_fetcher_and_the_policy_rule_accept_the_same_pins(fetcher_script, bucket, value, pinned):
    assert (parse_pin(value) is not None) == pinned == bool(PIN.match(value))
    proc = fetch(fetcher_script, bucket, value, SHELLS[0], FAKE_S3_DOWN="1")
    # A pin the fetcher accepts gets as far as the store (down here); one it refuses does not.
    assert ("no digest pinned" not in proc.stderr) == pinned, proc.stderr


# -- the overlays and the commands -------------------------------------------

def cli(tree: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts", *args, "--repo", str(tree)], cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=300)


def _literals(text: str) -> dict[str, str]:
    return dict(line.strip()[2:].split("=", 1) for line in text.splitlines()
                if line.strip().startswith(("- v1=", "- v2=")))


def test_every_overlay_pins_both_slots_by_digest():
    for env in canary.environments(REPO):
        overlay = canary.Overlay(REPO, env)
        assert str(overlay.model_pin("v1")) == PINNED_V1 and str(overlay.model_pin("v2")) == PINNED_V2, env


def test_promote_carries_the_digest_and_leaves_the_markers_on_v2(tree):
    kfile = tree / "overlays/staging/kustomization.yaml"
    kfile.write_text(kfile.read_text().replace(f"v2={PINNED_V2}", "v2=2024.11.0@sha256:" + "c" * 64))
    before = kfile.read_text()
    proc = cli(tree, "promote", "--env", "staging")
    assert proc.returncode == 0, proc.stderr
    assert "(model 2024.11.0@sha256:" + "c" * 64 + ")" in proc.stdout
    after = kfile.read_text()
    assert _literals(after) == {"v1": "2024.11.0@sha256:" + "c" * 64, "v2": "2024.11.0@sha256:" + "c" * 64}
    v1, v2 = after.split("- name: ai-inference-service-v1")[1].split("- name: ai-inference-service-v2")
    assert "$imagepolicy" not in v1 and v2.count("$imagepolicy") == 2  # the automation keeps moving v2 only
    assert len(after.splitlines()) == len(before.splitlines())


def test_promote_of_an_unpinned_model_is_refused_and_changes_nothing(tree):
    kfile = tree / "overlays/prod/kustomization.yaml"
    kfile.write_text(kfile.read_text().replace(f"v2={PINNED_V2}", "v2=2024.11.0"))
    before = {p: p.read_bytes() for p in (tree / "overlays/prod").iterdir()}
    proc = cli(tree, "promote", "--env", "prod")
    assert proc.returncode == 1
    assert "edit refused" in proc.stderr and "model_version_pinned" in proc.stderr
    assert "key v1 is '2024.11.0', a model version not pinned by digest" in proc.stderr
    assert {p: p.read_bytes() for p in (tree / "overlays/prod").iterdir()} == before


def test_canary_step_promotion_carries_the_digest(tree):
    envs = canary.environments(tree)
    limits = canaryconfig.load(tree, envs)["prod"]
    kfile = tree / "overlays/prod/kustomization.yaml"
    kfile.write_text(kfile.read_text().replace(f"v2={PINNED_V2}", "v2=2024.11.0@sha256:" + "d" * 64))
    overlay = canary.Overlay(tree, "prod")
    action, title = canarystep._decide(overlay, "healthy", 100, limits)
    assert title == "canary(prod): promote v2 to stable"
    assert f"(model 2024.11.0@sha256:{'d' * 64})" in action
    assert overlay.model("v1") == overlay.model("v2") == "2024.11.0@sha256:" + "d" * 64


def test_canary_status_shows_versions_and_digests(tree):
    kfile = tree / "overlays/gpu/kustomization.yaml"
    kfile.write_text(kfile.read_text().replace(f"v2={PINNED_V2}", "v2=2024.11.0"))
    proc = cli(tree, "canary", "status")
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()[1:]}
    assert "2024.06.1@sha256:825524ee2d4e" in rows["prod"] and "2024.09.0@sha256:73e4adcf9f5e" in rows["prod"]
    assert "2024.11.0 (no digest)" in rows["gpu"]
    proc = cli(tree, "canary", "status", "--json")
    data = {row["env"]: row for row in json.loads(proc.stdout)}
    assert data["prod"]["v2_model_version"] == "2024.09.0"
    assert data["prod"]["v2_model_digest"] == "sha256:" + PINNED_V2.split(":")[1]
    assert data["gpu"]["v2_model"] == "2024.11.0" and data["gpu"]["v2_model_digest"] is None


@pytest.mark.parametrize("delay", [0.4, 1.0, 2.0, 3.5])
def test_an_interrupted_promote_leaves_every_file_whole(tree, delay):
    """SIGTERM at any moment of `promote`: each file is as it was or as the
    validated edit made it, and a slot's version never arrives without its
    digest (they are one literal)."""
    new_pin = "2024.11.0@sha256:" + "e" * 64
    kfile, weights = tree / "overlays/staging/kustomization.yaml", tree / "overlays/staging/canary-weights.yaml"
    kfile.write_text(kfile.read_text().replace(f"v2={PINNED_V2}", f"v2={new_pin}"))
    before = {kfile: kfile.read_text(), weights: weights.read_text()}
    run = subprocess.Popen([sys.executable, "-m", "scripts", "promote", "--env", "staging", "--repo", str(tree)],
                           cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=120)
    assert "Traceback" not in err
    assert run.returncode in (0, 143, -signal.SIGTERM)
    text = kfile.read_text()
    assert text == before[kfile] or _literals(text) == {"v1": new_pin, "v2": new_pin}
    assert _literals(text)["v1"] in (PINNED_V1, new_pin)
    assert weights.read_text() == before[weights] or "value: 100" in weights.read_text()
    # Both swapped in, or neither: the signal is held from the first rename to the last.
    assert (text == before[kfile]) == (weights.read_text() == before[weights])
    assert not [p for p in kfile.parent.iterdir() if p.name.startswith(".")], "a staged temp file was left"


def test_an_edit_is_checked_as_the_files_would_be(tree):
    """The rules that read source files (the image policy markers) see the
    edited files, not the ones on disk: an edit that would put a marker on
    the stable slot is refused, and nothing is written."""
    kfile = tree / "overlays/staging/kustomization.yaml"
    before = kfile.read_bytes()
    with canary.edit_lock(tree):
        overlay = canary.Overlay(tree, "staging")
        overlay.copy_image(dict(overlay.image("v2")), "v1")  # a promote, with a marker it must not carry
        overlay.image("v1").yaml_add_eol_comment(
            '# {"$imagepolicy": "flux-system:ai-inference-service-staging:tag"}', "newTag")
        errors = canary.apply(tree, [overlay], "1.34")
    assert [f.rule for f in errors] == ["image_policy_markers"], errors
    assert "moves the v1 slot's image" in errors[0].message and errors[0].file == "overlays/staging/kustomization.yaml"
    assert kfile.read_bytes() == before
