"""`python -m scripts <command>`: a thin layer over the modules that do the work."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from scripts.errors import InputError, UsageError
from scripts.model import STAGES

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


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
    from scripts.schema import DEFAULT_KUBERNETES_VERSION

    parser = Parser(prog="python -m scripts", description="Validation and pull-request tooling for "
                    "the ai-inference-service GitOps repository.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    validate = commands.add_parser(
        "validate", help="render every root and lint, schema-check, security-scan and policy-check it",
        description="Render every root kustomization (each overlay and clusters/* entry) and run the stages "
                    "on each render. Exit 0: no error findings; 1: at least one; 2: usage error.")
    validate.add_argument("--target", action="append", default=[], metavar="PATH",
                          help="only the roots at or under PATH (repeatable)")
    validate.add_argument("--stage", action="append", choices=STAGES, metavar="STAGE",
                          help=f"run only these stages ({', '.join(STAGES)}; render always runs; repeatable)")
    validate.add_argument("--kubernetes-version", default=DEFAULT_KUBERNETES_VERSION, metavar="X.Y",
                          help=f"Kubernetes version to validate against (default {DEFAULT_KUBERNETES_VERSION})")
    validate.add_argument("--report-json", metavar="FILE", help="write the JSON report to FILE")
    validate.add_argument("--junit", metavar="FILE", help="write findings as JUnit XML to FILE")
    validate.add_argument("--sarif", metavar="FILE", help="write findings as SARIF 2.1.0 to FILE")
    validate.add_argument("--jobs", type=_jobs, default=None, metavar="N",
                          help="renders in parallel (default: the machine's cores)")
    validate.add_argument("--shard", metavar="I/N", help="validate only shard I of N (roots split deterministically)")
    validate.add_argument("--repo", default=".", metavar="DIR", help="repository to validate (default: .)")
    validate.add_argument("-q", "--quiet", action="store_true", help="print findings only, no table")

    merge = commands.add_parser(
        "report", help="merge validate JSON reports (from --shard jobs) into one",
        description="Merge the JSON reports of several `validate --shard` runs. Exit 1 if any has an error "
                    "finding.")
    merge.add_argument("reports", nargs="+", metavar="REPORT.json")
    merge.add_argument("--out", metavar="FILE", help="write the merged JSON report to FILE")
    merge.add_argument("--markdown-summary", metavar="FILE",
                       help="append a Markdown summary table to FILE (e.g. $GITHUB_STEP_SUMMARY)")

    schemas = commands.add_parser("schemas", help="manage custom-resource schemas",
                                  description="Generate or fetch the schemas used for custom resources.")
    schema_commands = schemas.add_subparsers(dest="schemas_command", metavar="ACTION", parser_class=Parser)
    generate = schema_commands.add_parser(
        "generate", help="regenerate schemas/generated from the pinned cloudcoil model packages (offline)")
    generate.add_argument("--out", default="schemas/generated", metavar="DIR")
    sync = schema_commands.add_parser("sync", help="fetch the CRDs in schemas/sources.yaml into schemas/crds")
    sync.add_argument("--sources", default="schemas/sources.yaml", metavar="FILE")
    sync.add_argument("--out", default="schemas/crds", metavar="DIR")
    return parser


def cmd_validate(args: argparse.Namespace) -> int:
    from scripts import report
    from scripts.validate import Options, parse_shard, run

    options = Options(
        repo=Path(args.repo), targets=args.target, stages=list(args.stage or STAGES),
        kubernetes_version=args.kubernetes_version, jobs=args.jobs,
        shard=parse_shard(args.shard) if args.shard else None, progress=True)
    if not options.repo.is_dir():
        raise UsageError(f"--repo {args.repo}: not a directory")
    result = run(options)
    if args.report_json:
        report.write_json(args.report_json, result)
    if args.junit:
        report.write(args.junit, report.to_junit(result))
    if args.sarif:
        import json

        report.write(args.sarif, json.dumps(report.to_sarif(result, options.repo), indent=2) + "\n")
    if args.quiet:
        for finding in result.findings:
            print(report._line(finding))
    else:
        report.human(result, options.stages)
    return EXIT_OK if result.ok else EXIT_FINDINGS


def cmd_schemas(args: argparse.Namespace) -> int:
    from scripts import crdschemas

    if args.schemas_command == "generate":
        written = crdschemas.write_generated(Path(args.out))
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

    from scripts import report

    merged = report.merge([report.load_json_report(path) for path in args.reports])
    if args.out:
        report.write(args.out, json.dumps(merged, indent=2) + "\n")
    summary = report.markdown_summary(merged)
    if args.markdown_summary:
        with open(args.markdown_summary, "a", encoding="utf-8") as stream:
            stream.write(summary)
    print(summary, end="")
    return EXIT_OK if merged["ok"] else EXIT_FINDINGS


COMMANDS = {"validate": cmd_validate, "report": cmd_report, "schemas": cmd_schemas}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return EXIT_USAGE
        return COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"python -m scripts: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except InputError as exc:
        print(f"python -m scripts: error: {exc}", file=sys.stderr)
        return EXIT_FINDINGS
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FINDINGS
