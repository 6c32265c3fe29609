"""`canary shadow` and `canary route`: overlay-only edits, comments kept,
re-validated, refused with nothing changed when the result would not validate."""

from __future__ import annotations

import pytest

from scripts.loading.discover import discover
from scripts.loading.render import render_with_flux
from tests.conftest import find
from tests.test_canary_analyze import canary

WEIGHTS = "overlays/prod/canary-weights.yaml"


def _virtual_service(tree, env="prod"):
    found = discover(tree)
    renders, _ = render_with_flux(tree, [t for t in found.targets if t.path == f"overlays/{env}"],
                                  found.kustomizations)
    assert renders[0].ok, renders[0].error
    return find(renders[0], "VirtualService").doc["spec"]["http"]


def test_shadow_mirrors_v1_traffic_to_v2_and_turns_off(tree):
    proc = canary("shadow", "--env", "prod", "--percent", "20", repo=tree)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "prod: 20% of v1's traffic mirrored to v2"
    http = _virtual_service(tree)
    assert http[0]["mirror"] == {"host": "ai-inference-service", "subset": "v2", "port": {"number": 80}}
    assert http[0]["mirrorPercentage"] == {"value": 20}
    text = (tree / WEIGHTS).read_text()
    assert "# v2, canary" in text and "# Shadow: a copy of v1's requests goes to v2" in text
    status = canary("status", repo=tree).stdout
    assert "20%" in status.splitlines()[[i for i, line in enumerate(status.splitlines()) if "prod" in line][0]]
    assert canary("shadow", "--env", "prod", "--percent", "0", repo=tree).returncode == 0
    assert "mirror" not in _virtual_service(tree)[0]
    assert "Shadow" not in (tree / WEIGHTS).read_text()


def test_header_route_goes_before_the_weighted_split(tree):
    proc = canary("route", "--env", "prod", "--header", "X-Canary=testers", repo=tree)
    assert proc.returncode == 0, proc.stderr
    http = _virtual_service(tree)
    assert http[0]["match"] == [{"headers": {"x-canary": {"exact": "testers"}}}]
    assert http[0]["route"] == [{"destination": {"host": "ai-inference-service", "subset": "v2",
                                                 "port": {"number": 80}}}]
    assert [d["weight"] for d in http[1]["route"]] == [90, 10]  # the weights still land on the split
    # weights and shadow still edit the weighted route, not the header route
    assert canary("set", "--env", "prod", "--weight", "25", repo=tree).returncode == 0
    assert canary("shadow", "--env", "prod", "--percent", "5", repo=tree).returncode == 0
    http = _virtual_service(tree)
    assert [d["weight"] for d in http[1]["route"]] == [75, 25] and http[1]["mirrorPercentage"] == {"value": 5}
    assert "mirror" not in http[0]
    assert "x-canary=testers" in canary("status", repo=tree).stdout
    assert canary("route", "--env", "prod", "--clear", repo=tree).returncode == 0
    assert "match" not in _virtual_service(tree)[0]


@pytest.mark.parametrize("args, message", [
    (["shadow", "--env", "prod", "--percent", "101"], "--percent 101: must be between 0 and 100"),
    (["shadow", "--env", "prod", "--percent", "lots"], "expected a number"),
    (["route", "--env", "prod", "--header", "x-canary"], "expected NAME=VALUE"),
    (["route", "--env", "prod", "--header", "bad header=1"], "expected NAME=VALUE"),
    (["route", "--env", "../prod", "--header", "a=b"], "not an environment"),
])
def test_usage_errors_change_nothing(tree, args, message):
    before = (tree / WEIGHTS).read_text()
    proc = canary(*args, repo=tree)
    assert proc.returncode == 2 and message in proc.stderr
    assert (tree / WEIGHTS).read_text() == before


def test_an_edit_that_would_not_validate_is_refused(tree):
    """The DestinationRule loses subset v2: mirroring to it would break the
    overlay, so the edit is refused and the file is left as it was."""
    rule = tree / "istio" / "destinationrule.yaml"
    text = rule.read_text()
    start = text.index("    - name: v2")
    rule.write_text(text[:start])
    before = (tree / WEIGHTS).read_text()
    proc = canary("shadow", "--env", "prod", "--percent", "10", repo=tree)
    assert proc.returncode == 1 and "edit refused" in proc.stderr
    assert (tree / WEIGHTS).read_text() == before


def test_turning_both_off_gives_back_the_file_as_it_was(tree):
    before = (tree / WEIGHTS).read_text()
    for args in (["shadow", "--env", "prod", "--percent", "20"], ["route", "--env", "prod", "--header", "x-a=1"],
                 ["shadow", "--env", "prod", "--percent", "0"], ["route", "--env", "prod", "--clear"]):
        assert canary(*args, repo=tree).returncode == 0
    assert (tree / WEIGHTS).read_text() == before
