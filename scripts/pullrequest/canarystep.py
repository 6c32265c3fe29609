"""`canary analyze` and `canary step`: the verdict on v2 from Prometheus, and
the weight change it calls for, as a reviewed edit with a pull-request text."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from scripts.core import outputs
from scripts.core.errors import InputError, UsageError
from scripts.pullrequest import analysis, canary, canaryconfig, prometheus

EXIT_USAGE = 2
ADVICE = {"healthy": "advance", "unhealthy": "roll back", "inconclusive": "hold: not enough evidence"}


def _print_table(result: analysis.Analysis) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("check", "v1", "v2", "threshold", "verdict"):
        table.add_column(column)
    for check in result.checks:
        table.add_row(check.name, check.v1, check.v2, check.threshold,
                      check.verdict + (f" ({check.detail})" if check.detail else ""))
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)
    console.print(f"canary {result.env} ({result.namespace}), window {result.window}, {result.prometheus}")
    console.print(table)
    console.print(f"verdict: {result.verdict} ({ADVICE[result.verdict]})")


def markdown_table(result: analysis.Analysis) -> str:
    rows = ["| check | v1 | v2 | threshold | verdict |", "|---|---|---|---|---|"]
    rows += [f"| {c.name} | {c.v1} | {c.v2} | {c.threshold} | {c.verdict}"
             + (f": {c.detail}" if c.detail else "") + " |" for c in result.checks]
    return "\n".join(rows)


def _namespace(overlay: canary.Overlay) -> str:
    namespace = overlay.kustomization.data.get("namespace")
    if not isinstance(namespace, str) or not namespace:
        raise InputError("no `namespace:`; analyze needs the namespace the canary runs in",
                         overlay.kustomization.display)
    return namespace


def _write_report(path: str, data: dict) -> None:
    outputs.write_text(path, json.dumps(data, indent=2) + "\n")


def run_analyze(repo: Path, args: argparse.Namespace, step: bool,
                apply: Callable[[Path, list, str], int]) -> int:
    env = canary.check_env(repo, args.env)
    limits = canaryconfig.load(repo, canary.environments(repo))[env]
    window = args.window or limits.window
    try:
        canaryconfig.window_seconds(window)
    except ValueError:
        raise UsageError(f"--window {window}: expected a duration such as 10m, 1h") from None
    client = prometheus.Prometheus(prometheus.check_url(args.prometheus),
                                   token=os.environ.get(prometheus.TOKEN_ENV) or None)
    namespace = _namespace(canary.Overlay(repo, env))
    try:
        result = analysis.analyze(client, env, namespace, limits, window)
    except prometheus.PrometheusError as exc:
        print(f"canary {'step' if step else 'analyze'}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report = result.to_json()
    if not step:
        _print_table(result)
        if args.report_json:
            _write_report(args.report_json, report)
        return result.exit_code
    with canary.edit_lock(repo):
        overlay = canary.Overlay(repo, env)
        current = overlay.weight("v2")
        if current is None:
            raise InputError("no canary weights to step", f"overlays/{env}/{canary.WEIGHTS_FILE}")
        action, title = _decide(overlay, result.verdict, current, limits)
        report["action"] = action
        code = apply(repo, [overlay], None) if action != "hold" else 0
    if args.report_json:
        _write_report(args.report_json, report)
    if code:
        return code
    # stdout is the pull request: its title on the first line, then its body.
    print(title)
    print()
    print(f"`python -m scripts canary step --env {env}` judged the canary on the last {window} of Istio "
          f"metrics from {result.prometheus}: **{result.verdict}** ({ADVICE[result.verdict]}).\n")
    print(markdown_table(result))
    print(f"\nAction: {action}.")
    return result.exit_code


def _decide(overlay: canary.Overlay, verdict: str, current: int, limits: canaryconfig.Thresholds
            ) -> tuple[str, str]:
    """Edit the overlay as the verdict says; (what was done, a PR title)."""
    env = overlay.env
    if verdict == "unhealthy":
        overlay.set_weights(0)
        return f"v2 weight {current}% -> 0% (rolled back)", f"canary({env}): roll back v2 ({current}% -> 0%)"
    if verdict == "inconclusive":
        return "hold", f"canary({env}): hold v2 at {current}% (inconclusive)"
    upcoming = limits.next_weight(current)
    if upcoming is None:  # at 100: v2 becomes the stable version
        overlay.copy_image(dict(overlay.image("v2")), "v1")
        model = overlay.model("v2")
        if model:
            overlay.set_model("v1", model)
        overlay.set_weights(0)
        return (f"promoted: v1 now runs {overlay.image_ref('v1')} (model {model}), weights 100/0",
                f"canary({env}): promote v2 to stable")
    overlay.set_weights(upcoming)
    return f"v2 weight {current}% -> {upcoming}%", f"canary({env}): advance v2 {current}% -> {upcoming}%"
