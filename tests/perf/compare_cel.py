"""Compare the three CEL runtimes on PyPI on the rules our CRDs carry.

Not a test (pytest does not collect it). Run it in a scratch venv that has
all three, from the repository root:

    python3.11 -m venv /tmp/cel && /tmp/cel/bin/pip install -r requirements.txt \
        common-expression-language==0.10.0 cel-python==0.5.0
    /tmp/cel/bin/python tests/perf/compare_cel.py

It prints, per runtime (and for "ours": cel-expr-python with the Kubernetes
functions scripts/stages/celrules.py declares): how many of the distinct rules in schemas/generated
compile, how many of the reference cases evaluate to the API server's answer
(without any Kubernetes function added: what the library gives), and the
time of 20,000 evaluations of a scalar rule and of a rule over an object.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted({r["rule"] for p in (ROOT / "schemas" / "generated").rglob("*.json")
                for r in json.loads(p.read_text()).get("x-cel", [])})
CASES = [  # (rule, self, what the API server answers)
    ("duration(self) >= duration('1ms')", "500us", False),
    ("duration(self) >= duration('1ms')", "2s", True),
    ('self != "*"', "*", False),
    ("0 < self && self <= 65535", 70000, False),
    ("self.all(l1, self.exists_one(l2, l1.number == l2.number))", [{"number": 80}, {"number": 80}], False),
    ('self.startsWith("unix://") ? (self.substring(7, 8) == "/" || self.substring(7, 8) == "@") : true',
     "unix://x", False),
    ("[has(self.basicAuth), has(self.authorization), has(self.oauth2)].filter(x, x).size() <= 1",
     {"basicAuth": {}, "oauth2": {}}, False),
    ("self.all(key, 0 < int(key) && int(key) <= 65535)", {"8080": {}, "0": {}}, False),
    ('url(self).getScheme() in ["http", "https"]', "ftp://x", False),
    ('self.all(key, size(key) < 63 && key.matches("^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$"))',
     {"http-1": 1, "-x": 2}, False),
]
OBJECT = {"selector": {"matchLabels": {"a": "b"}}, "url": "x", "phase": "AUTHN", "pluginConfig": {"a": [1, 2, 3]}}


def runtime(name: str):
    if name == "ours":  # cel-expr-python with the Kubernetes functions of scripts/stages/celrules.py
        sys.path.insert(0, str(ROOT))
        from scripts.stages import celrules
        env = celrules.Environment()._env
        return env.compile, lambda program, value: program.eval(data={"self": value}).value()
    if name == "common-expression-language":
        import cel
        return cel.compile, lambda program, value: program.execute({"self": value})
    if name == "cel-python":
        import celpy
        env = celpy.Environment()
        return (lambda text: env.program(env.compile(text)),
                lambda program, value: program.evaluate({"self": celpy.json_to_cel(value)}))
    from cel_expr_python import cel
    from cel_expr_python.ext import ext_strings
    env = cel.NewEnv(variables={"self": cel.Type.DYN}, extensions=[ext_strings.ExtStrings()])
    return env.compile, lambda program, value: program.eval(data={"self": value}).value()


def main() -> None:
    for name in ("ours", "cel-expr-python", "common-expression-language", "cel-python"):
        try:
            compile_, evaluate = runtime(name)
        except ImportError:
            print(f"{name}: not installed")
            continue
        compiled = 0
        for text in RULES:
            try:
                compile_(text)
                compiled += 1
            except Exception:  # noqa: BLE001 - each library raises its own
                pass
        right = 0
        for text, value, expected in CASES:
            with contextlib.suppress(Exception):  # a wrong answer and an error count alike
                right += evaluate(compile_(text), value) == expected
        timings = []
        for text, value in (("duration(self) >= duration('1ms')", "2s"),
                            ("(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) <= 1", OBJECT)):
            program = compile_(text)
            started = time.perf_counter()
            for _ in range(20000):
                evaluate(program, value)
            timings.append(time.perf_counter() - started)
        print(f"{name}: {compiled}/{len(RULES)} rules compile, {right}/{len(CASES)} cases right, "
              f"20k evals: scalar {timings[0]:.3f} s, object {timings[1]:.3f} s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
