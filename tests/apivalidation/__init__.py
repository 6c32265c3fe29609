"""Test cases for the API server's validation (scripts/stages/apivalidation):
one module of cases per module of checks, collected here."""

from __future__ import annotations

import importlib
import pkgutil

from tests.apivalidation.cases import Case


def all_cases() -> list[Case]:
    cases: list[Case] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("cases_"):
            cases += importlib.import_module(f"{__name__}.{info.name}").CASES
    return cases
