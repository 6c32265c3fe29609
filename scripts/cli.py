"""`python -m scripts <command>`: a thin layer over the modules that do the work."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path

from scripts.core.errors import InputError, Interrupted, OutputError, UsageError
from scripts.core.model import STAGES

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE: a bug of ours, never a verdict on the tree


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line, exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message)


def _jobs(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def build_parser() -> Parser:
    from scripts.pullrequest.canaryconfig import TOKEN_ENV as PROMETHEUS_TOKEN_ENV


    parser = Parser(prog="python -m scripts", description="Validation and pull-request tooling for "
                    "the ai-inference-service GitOps repository.",
                    epilog="Exit status: 0 ok; 1 findings, or input that cannot be read (one line names the "
                           "file); 2 usage error, or a file to write that cannot be written (a full disk: one "
                           "line names the file and the reason; no partial file is left); 70 internal error "
                           "(rerun with --debug for the traceback); 130/143 interrupted by SIGINT/SIGTERM (no "
                           "report is written).")
    parser.add_argument("--debug", action="store_true", help="show a traceback on an internal error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    validate = commands.add_parser(
        "validate", help="render every root and lint, schema-check, security-scan and policy-check it",
        description="Render every root kustomization (each overlay and clusters/* entry) and every Flux "
                    "Kustomization those declare (as clusters/<env>#<name>), and run the stages on each render. "
                    "Exit 0: no error findings; 1: at least one; 2: usage error.")
    validate.add_argument("--target", action="append", default=[], metavar="PATH",
                          help="only the roots at or under PATH (repeatable)")
    validate.add_argument("--stage", action="append", choices=STAGES, metavar="STAGE",
                          help=f"run only these stages ({', '.join(STAGES)}; render always runs; repeatable)")
    validate.add_argument("--kubernetes-version", metavar="X.Y",
                          help="Kubernetes version to validate against (default: cluster.kubernetes_version in "
                               "config/policy.yaml); the next minor is checked too, as warnings")
    validate.add_argument("--report-json", metavar="FILE", help="write the JSON report to FILE")
    validate.add_argument("--junit", metavar="FILE", help="write findings as JUnit XML to FILE")
    validate.add_argument("--sarif", metavar="FILE", help="write findings as SARIF 2.1.0 to FILE")
    validate.add_argument("--jobs", type=_jobs, default=None, metavar="N",
                          help="renders in parallel (default: the machine's cores)")
    validate.add_argument("--shard", metavar="I/N", help="validate only shard I of N (roots split deterministically)")
    validate.add_argument("--changed", action="store_true",
                          help="only the roots whose render changed since --base (files changed, then renders "
                               "compared)")
    validate.add_argument("--base", metavar="REF",
                          help="with --changed: compare with REF (default: merge base with the default branch)")
    validate.add_argument("--repo", default=".", metavar="DIR", help="repository to validate (default: .)")
    validate.add_argument("-q", "--quiet", action="store_true", help="print findings only, no table")
    validate.add_argument("--no-cache", dest="cache", action="store_false",
                          help="neither read nor write the cache of renders and their findings in "
                               "REPO/.cache/validate/ (safe to delete; not used with --changed)")

    diff = commands.add_parser(
        "diff", help="what each root renders at --head versus --base, object by object",
        description="Render every root at two git refs (exported with git archive; your checkout is not "
                    "touched) and print the semantic difference per target and object. Exit 0 either way; "
                    "2 on usage errors.")
    diff.add_argument("--base", metavar="REF", help="default: the merge base with the default branch")
    diff.add_argument("--head", metavar="REF", help="default: the working tree as it is")
    diff.add_argument("--target", action="append", default=[], metavar="PATH",
                      help="only roots at or under PATH (repeatable)")
    diff.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    diff.add_argument("--repo", default=".", metavar="DIR")

    canary = commands.add_parser(
        "canary", help="judge, step, set or show the v1/v2 traffic split per environment",
        description="Judge the canary (v2) against Prometheus, step its weight on that evidence, mirror or "
                    "route traffic to it, or set and show weights. Edits keep comments and are refused, "
                    "leaving every file as it was, if the overlay would no longer validate.")
    canary_commands = canary.add_subparsers(dest="canary_command", metavar="ACTION", parser_class=Parser)
    canary_set = canary_commands.add_parser("set", help="give v2 WEIGHT percent of traffic (v1 the rest)")
    canary_set.add_argument("--env", required=True, help="overlay name, e.g. prod")
    canary_set.add_argument("--weight", required=True, help="v2's share, 0..100")
    canary_set.add_argument("--repo", default=".", metavar="DIR")
    canary_status = canary_commands.add_parser(
        "status", help="images, model versions and digests, weights, shadow and header routes per environment",
        description="One row per environment; digests are cut to 12 hex digits in the table, whole in --json.")
    canary_status.add_argument("--json", action="store_true", help="print the rows as JSON, digests whole")
    canary_status.add_argument("--repo", default=".", metavar="DIR")
    token_note = (f"An optional bearer token is read from ${PROMETHEUS_TOKEN_ENV} (never printed); TLS is "
                  "verified (REQUESTS_CA_BUNDLE trusts a private CA).")
    for name, help_text, description in (
            ("analyze", "judge v2 against v1 and config/canary.yaml from Prometheus' Istio metrics",
             "Exit 0 healthy (advance), 1 unhealthy (roll back), 3 inconclusive (not enough traffic or data), "
             "2 usage error or Prometheus unreachable or answering an error. " ),
            ("step", "analyze, then move v2's weight: next step if healthy (promote after 100), 0 if "
                     "unhealthy, unchanged if inconclusive; prints a pull-request title and body",
             "Exit codes as analyze's verdict (0, 1, 3; 2 for errors); an edit refused by validation is 1 "
             "with `edit refused` on stderr and no file changed. ")):
        sub = canary_commands.add_parser(name, help=help_text, description=description + token_note)
        sub.add_argument("--env", required=True, help="overlay name, e.g. prod")
        sub.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus base URL")
        sub.add_argument("--window", metavar="DURATION",
                         help="how far back to look, e.g. 10m (default: the environment's window in "
                              "config/canary.yaml)")
        sub.add_argument("--report-json", metavar="FILE", help="write the checks and the verdict as JSON")
        sub.add_argument("--repo", default=".", metavar="DIR")
    shadow = canary_commands.add_parser(
        "shadow", help="mirror PERCENT of v1's traffic to v2 (responses discarded); 0 turns it off")
    shadow.add_argument("--env", required=True, help="overlay name, e.g. prod")
    shadow.add_argument("--percent", required=True, help="0..100")
    shadow.add_argument("--repo", default=".", metavar="DIR")
    route = canary_commands.add_parser(
        "route", help="send requests carrying a header to v2, ahead of the weighted split")
    route.add_argument("--env", required=True, help="overlay name, e.g. prod")
    group = route.add_mutually_exclusive_group(required=True)
    group.add_argument("--header", metavar="NAME=VALUE", help="e.g. x-canary=always")
    group.add_argument("--clear", action="store_true", help="remove the header route")
    route.add_argument("--repo", default=".", metavar="DIR")

    promote = commands.add_parser(
        "promote", help="make v2 the stable version, or copy image tags between environments",
        description="`promote --env E`: v1 takes v2's image and model version, weights go back to 100/0. "
                    "`promote --from A --to B`: B's slots take A's images. Refused, with no file changed, if B "
                    "would no longer validate.")
    promote.add_argument("--env", help="environment whose v2 becomes stable")
    promote.add_argument("--from", dest="source", metavar="ENV", help="environment to copy image tags from")
    promote.add_argument("--to", dest="destination", metavar="ENV", help="environment to copy image tags into")
    promote.add_argument("--repo", default=".", metavar="DIR")

    comment = commands.add_parser(
        "pr-comment", help="create or update the rendered-diff comment on a pull request (GITHUB_TOKEN)")
    comment.add_argument("--body-file", required=True, metavar="FILE")
    comment.add_argument("--repository", required=True, metavar="OWNER/NAME")
    comment.add_argument("--pr", required=True, type=_jobs, metavar="NUMBER")

    bench = commands.add_parser(
        "bench", help="validate a synthetic repository of N copies of this service, with timings",
        description="Write N renamed copies of this repository's service tree under DIR/services/ (or, with "
                    "--tree, a copy of this repository's own tree) and run the full validate on DIR beside the "
                    "floor (kustomize, then checkov's Runner, on every render), cold and warm. The last line of "
                    "output is a JSON object with the counts, the seconds per stage, the ratios and the peak memory.")
    size = bench.add_mutually_exclusive_group(required=True)
    size.add_argument("--services", type=_jobs, metavar="N", help="N renamed copies of the service tree")
    size.add_argument("--tree", action="store_true", help="this repository's own tree, as it is")
    bench.add_argument("--out", required=True, metavar="DIR", help="where to write the tree (must not exist)")
    bench.add_argument("--report-json", metavar="FILE", help="also write validate's JSON report")
    bench.add_argument("--jobs", type=_jobs, default=None, metavar="N")
    bench.add_argument("--skip-changed", action="store_true",
                       help="do not measure `validate --changed` (it commits DIR to a new git repository)")
    bench.add_argument("--repeat", type=_jobs, default=1, metavar="K",
                       help="K rounds of cold validate, the floor, warm, one overlay edited and that overlay alone; "
                            "ratios are medians of the K pairs (default: 1; use at least 3)")

    merge = commands.add_parser(
        "report", help="merge validate JSON reports (from --shard jobs) into one",
        description="Merge the JSON reports of several `validate --shard` runs. Exit 1 if any has an error "
                    "finding.")
    merge.add_argument("reports", nargs="+", metavar="REPORT.json")
    merge.add_argument("--out", metavar="FILE", help="write the merged JSON report to FILE")
    merge.add_argument("--markdown-summary", metavar="FILE",
                       help="append a Markdown summary table to FILE (e.g. $GITHUB_STEP_SUMMARY)")

    schemas = commands.add_parser(
        "schemas", help="manage custom-resource schemas",
        description="Fetch the upstream CRDs pinned in schemas/sources.yaml and generate the strict schemas "
                    "(with their CEL rules) that the schema stage reads. Only `sync` uses the network.")
    schema_commands = schemas.add_subparsers(dest="schemas_command", metavar="ACTION", parser_class=Parser)
    sync = schema_commands.add_parser(
        "sync", help="download the pinned CRD files into .cache/crds, each checked against its sha256")
    sync.add_argument("--sources", default="schemas/sources.yaml", metavar="FILE")
    sync.add_argument("--out", default=".cache/crds", metavar="DIR")
    generate = schema_commands.add_parser(
        "generate", help="regenerate schemas/generated from the downloaded CRD files (offline)")
    generate.add_argument("--sources", default="schemas/sources.yaml", metavar="FILE")
    generate.add_argument("--crds", default=".cache/crds", metavar="DIR", help="where `sync` put the CRD files")
    generate.add_argument("--out", default="schemas/generated", metavar="DIR")
    return parser


def cmd_validate(args: argparse.Namespace) -> int:
    from scripts.reports import report
    from scripts.validate import Options, default_configs, parse_shard, run

    if args.base and not args.changed:
        raise UsageError("--base goes with --changed")
    if not Path(args.repo).is_dir():
        raise UsageError(f"--repo {args.repo}: not a directory")
    outputs = [path for path in (args.report_json, args.junit, args.sarif) if path]
    check_output_paths(outputs)
    options = Options(
        changed=args.changed, base=args.base, repo=Path(args.repo), targets=args.target,
        stages=list(args.stage or STAGES),
        kubernetes_version=args.kubernetes_version, jobs=args.jobs,
        shard=parse_shard(args.shard) if args.shard else None, progress=True, cache=args.cache)
    if not options.repo.is_dir():
        raise UsageError(f"--repo {args.repo}: not a directory")
    missing = default_configs(options.repo)
    if missing:
        print(f"note: {args.repo} has no {' and no '.join(missing)}: validating with this project's defaults "
              "(README, \"Validate another repository\")", file=sys.stderr)
    result = run(options)
    # The findings first: a report that then cannot be written (a full disk)
    # must not cost the user the run's answer.
    if args.quiet:
        for finding in result.findings:
            print(report._line(finding))
    else:
        report.human(result, options.stages)
    sys.stdout.flush()
    _write_reports(result, options.repo, args)
    return EXIT_OK if result.ok else EXIT_FINDINGS


def _write_reports(result, repo: Path, args: argparse.Namespace) -> None:
    """Every report asked for, each attempted even when another fails; a
    failure is one line each, and exit status 2 (OutputError)."""
    import json

    from scripts.reports import report

    writers = [(args.report_json, lambda path: report.write_json(path, result)),
               (args.junit, lambda path: report.write(path, report.to_junit(result))),
               (args.sarif, lambda path: report.write(
                   path, json.dumps(report.to_sarif(result, repo), indent=2) + "\n"))]
    failures: list[OutputError] = []
    for path, write in writers:
        if path:
            try:
                write(path)
            except OutputError as exc:
                failures.append(exc)
    for failure in failures[:-1]:
        print(f"python -m scripts: error: {failure}", file=sys.stderr)
    if failures:
        raise failures[-1]


def check_output_paths(paths: list[str]) -> None:
    """Refuse, before any work, a report path that cannot be written: the
    findings of a long run must not be lost at its end."""
    for path in paths:
        target = Path(path)
        if target.is_dir():
            raise UsageError(f"{path}: is a directory, not a file to write")
        parent = target.parent if str(target.parent) else Path(".")
        existing = next((p for p in (parent, *parent.parents) if p.exists()), Path("."))
        if not existing.is_dir():
            raise UsageError(f"{path}: {existing} is not a directory")
        if not os.access(target if target.exists() else existing, os.W_OK):
            raise UsageError(f"{path}: not writable")


def cmd_schemas(args: argparse.Namespace) -> int:
    from scripts.stages import crdschemas

    if args.schemas_command == "generate":
        written = crdschemas.write_generated(Path(args.sources), Path(args.crds), Path(args.out))
        print(f"wrote {len(written)} schemas to {args.out}")
        return EXIT_OK
    if args.schemas_command == "sync":
        written = crdschemas.sync(Path(args.sources), Path(args.out))
        for path in written:
            print(f"wrote {path}")
        return EXIT_OK
    raise UsageError("schemas: choose an action: generate or sync")


def cmd_report(args: argparse.Namespace) -> int:
    import json

    from scripts.core import outputs
    from scripts.reports import report

    check_output_paths([p for p in (args.out, args.markdown_summary) if p])
    merged = report.merge([report.load_json_report(path) for path in args.reports])
    if args.out:
        report.write(args.out, json.dumps(merged, indent=2) + "\n")
    summary = report.markdown_summary(merged)
    if args.markdown_summary:
        outputs.append_text(args.markdown_summary, summary)
    print(summary, end="")
    return EXIT_OK if merged["ok"] else EXIT_FINDINGS


def cmd_diff(args: argparse.Namespace) -> int:
    import json

    from scripts.loading import gitrefs
    from scripts.pullrequest import diff

    repo = Path(args.repo).resolve()
    top = gitrefs.toplevel(repo)
    prefix = os.path.relpath(repo, top)
    base = args.base or gitrefs.default_base(top)
    base_label, head_label = args.base or f"merge-base {base[:12]}", args.head or "working tree"
    prefixes = [os.path.relpath(Path(t).resolve(), repo).replace(os.sep, "/") for t in args.target]
    if any(p.startswith("..") for p in prefixes):
        raise UsageError("--target: outside the repository")
    with gitrefs.tree_at(top, base) as old_top, gitrefs.tree_at(top, args.head) as new_top:
        old = diff.render_tree(old_top / prefix, prefixes=prefixes)
        new = diff.render_tree(new_top / prefix, prefixes=prefixes)
    for wanted in args.target if not (old or new) else []:
        raise UsageError(f"--target {wanted}: no root kustomization at or under this path at either ref")
    diffs = diff.diff_trees(old, new)
    if args.format == "json":
        print(json.dumps(diff.to_json(diffs, base_label, head_label), indent=2, default=str))
    elif args.format == "markdown":
        print(diff.to_markdown(diffs, base_label, head_label), end="")
    else:
        print(diff.to_text(diffs), end="")
    return EXIT_OK


def cmd_canary(args: argparse.Namespace) -> int:
    from scripts.pullrequest import canary

    repo = Path(args.repo).resolve()
    if args.canary_command == "status":
        from rich.console import Console
        from rich.table import Table

        rows = canary.status(repo)
        if args.json:
            import json

            print(json.dumps(rows, indent=2))
            return EXIT_OK
        table = Table(box=None, pad_edge=False)
        for column in ("env", "v1 image", "v1 model", "v2 image", "v2 model", "weights v1/v2", "shadow",
                       "header route"):
            table.add_column(column, no_wrap=True)
        for row in rows:
            weights = "-" if row["v1_weight"] is None else f"{row['v1_weight']}/{row['v2_weight']}"
            shadow = f"{row['shadow_percent']:g}%" if row["shadow_percent"] else "-"
            table.add_row(row["env"], canary.short_image(row["v1_image"]), canary.short_model(row, "v1"),
                          canary.short_image(row["v2_image"]), canary.short_model(row, "v2"),
                          weights, shadow, row["header_route"] or "-")
        console = Console(highlight=False)
        if not console.is_terminal:
            console = Console(highlight=False, width=280)
        console.print(table)
        return EXIT_OK
    if args.canary_command == "set":
        weight = canary.check_weight(args.weight)
        return _edit_overlay(repo, args.env, lambda o: o.set_weights(weight),
                             f"{args.env}: v1 {100 - weight}%, v2 {weight}%")
    if args.canary_command == "shadow":
        percent = canary.check_percent(args.percent)
        return _edit_overlay(repo, args.env, lambda o: o.set_shadow(percent),
                             f"{args.env}: " + (f"{percent:g}% of v1's traffic mirrored to v2" if percent
                                                else "no traffic mirrored to v2"))
    if args.canary_command == "route":
        header = None if args.clear else canary.check_header(args.header)
        return _edit_overlay(repo, args.env, lambda o: o.set_header_route(header),
                             f"{args.env}: " + (f"requests with {header[0]}: {header[1]} go to v2" if header
                                                else "no header route to v2"))
    if args.canary_command in ("analyze", "step"):
        from scripts.pullrequest.canarystep import run_analyze

        return run_analyze(repo, args, step=args.canary_command == "step", apply=_apply)
    raise UsageError("canary: choose an action: analyze, step, set, shadow, route or status")


def cmd_promote(args: argparse.Namespace) -> int:
    from scripts.pullrequest import canary

    repo = Path(args.repo).resolve()
    if args.env and not (args.source or args.destination):
        canary.check_env(repo, args.env)
        with canary.edit_lock(repo):
            overlay = canary.Overlay(repo, args.env)
            overlay.copy_image(dict(overlay.image("v2")), "v1")
            model = overlay.model("v2")
            if model:
                overlay.set_model("v1", model)
            if overlay.weights is not None:
                overlay.set_weights(0)
            return _apply(repo, [overlay], f"{args.env}: v1 now runs {overlay.image_ref('v1')} (model {model}); "
                                           "weights 100/0")
    if args.source and args.destination and not args.env:
        # Names, never paths: "prod/", "./prod" and "../overlays/prod" are refused here.
        canary.check_env(repo, args.source, "--from")
        canary.check_env(repo, args.destination, "--to")
        if args.source == args.destination:
            raise UsageError("--from and --to name the same environment")
        with canary.edit_lock(repo):
            source = canary.Overlay(repo, args.source, "--from")
            target = canary.Overlay(repo, args.destination, "--to")
            for slot in ("v1", "v2"):
                target.copy_image(dict(source.image(slot)), slot)
            return _apply(repo, [target], f"{args.destination}: images now {target.image_ref('v1')} (v1), "
                                          f"{target.image_ref('v2')} (v2), as in {args.source}")
    raise UsageError("promote: use --env ENV, or --from ENV --to ENV")


def _edit_overlay(repo: Path, env: str, edit, done: str) -> int:
    """One overlay's edit, made and checked under the edit lock."""
    from scripts.pullrequest import canary

    canary.check_env(repo, env)
    with canary.edit_lock(repo):
        overlay = canary.Overlay(repo, env)
        edit(overlay)
        return _apply(repo, [overlay], done)


def _apply(repo: Path, overlays: list, done: str | None) -> int:
    from scripts.pullrequest import canary
    from scripts.reports import report
    from scripts.stages.policy_support import PolicyConfig

    errors = canary.apply(repo, overlays, PolicyConfig.load(repo).kubernetes_version)
    if errors:
        touched = ", ".join(f"overlays/{o.env}" for o in overlays)
        print(f"edit refused: {touched} would not validate with it; no file was changed", file=sys.stderr)
        for finding in errors:
            print(report._line(finding), file=sys.stderr)
        return EXIT_FINDINGS
    if done:
        print(done)
    return EXIT_OK


def cmd_pr_comment(args: argparse.Namespace) -> int:
    from scripts.pullrequest import github

    try:
        body = Path(args.body_file).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", args.body_file) from None
    outcome = github.upsert_comment(args.repository, args.pr, body, github.token_from_env())
    print(f"{outcome} the rendered-diff comment on {args.repository}#{args.pr}")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from scripts import bench

    check_output_paths([args.report_json] if args.report_json else [])
    bench.run(None if args.tree else args.services, Path(args.out), args.report_json, args.jobs,
              with_changed=not args.skip_changed,
              repeat=args.repeat)
    return EXIT_OK


COMMANDS = {"bench": cmd_bench, "validate": cmd_validate, "diff": cmd_diff, "canary": cmd_canary,
            "promote": cmd_promote,
            "pr-comment": cmd_pr_comment, "report": cmd_report, "schemas": cmd_schemas}


def _raise_interrupted(signum: int, frame: object) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def _signals_raise() -> object:
    """SIGINT and SIGTERM become Interrupted, so every `finally` and
    `except BaseException` on the way (children stopped, temp directories
    removed, edits put back) runs before the exit."""
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            previous[signum] = signal.signal(signum, _raise_interrupted)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _say(message: str) -> None:
    """The one line a command ends with on stderr; on a terminal it takes the
    place of validate's progress line rather than following it."""
    erase = "\r\033[K" if sys.stderr.isatty() else ""
    print(f"{erase}python -m scripts: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, before or after the command
    argv = [a for a in argv if a != "--debug"]
    try:
        with _signals_raise():
            args = parser.parse_args(argv)
            if not args.command:
                parser.print_help()
                return EXIT_USAGE
            return COMMANDS[args.command](args)
    except UsageError as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    except InputError as exc:
        _say(f"error: {exc}")
        return EXIT_FINDINGS
    except (Interrupted, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        _say(f"interrupted ({signal.Signals(signum).name}); no report written")
        return 128 + signum
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FINDINGS
    except Exception as exc:  # noqa: BLE001 - the crash guard: one line, never a traceback
        if debug:
            raise
        where = ""
        if exc.__traceback__ is not None:
            import traceback

            frame = traceback.extract_tb(exc.__traceback__)[-1]
            where = f" at {Path(frame.filename).name}:{frame.lineno}"
        _say(f"internal error: {type(exc).__name__}: {exc}{where} "
             "(please report it; rerun with --debug for the traceback)")
        return EXIT_INTERNAL
