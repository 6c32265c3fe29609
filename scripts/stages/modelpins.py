"""Model versions pinned by digest, as the overlays write them and the
model-fetcher reads them.

A slot's model version is `VERSION@sha256:HEX` (one configMapGenerator
literal, e.g. `v2=2024.09.0@sha256:...`), where HEX is the sha256 of the
version's manifest `SHA256SUMS` in the model store: one `sha256sum` line
per file of the model. The fetcher checks the manifest against HEX, fetches
only the files it lists and checks each of them, so one digest pins every
file of a multi-file model; version and digest live in one literal, so no
edit (`promote`, `canary step`) can carry one without the other. The
fetcher's shell test (base/workload/deployment.yaml) accepts exactly what
PIN accepts; a test keeps them in step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PIN = re.compile(r"^(?P<version>[A-Za-z0-9][A-Za-z0-9._-]*)@sha256:(?P<digest>[0-9a-f]{64})\Z")
MANIFEST = "SHA256SUMS"
MODEL_VERSION_ENV = "MODEL_VERSION"  # the env var the fetcher and the server read the pin from


@dataclass(frozen=True)
class ModelPin:
    version: str
    digest: str  # 64 lowercase hex digits, without "sha256:"

    def __str__(self) -> str:
        return f"{self.version}@sha256:{self.digest}"

    @property
    def short(self) -> str:
        """For tables: the version and the first 12 hex digits."""
        return f"{self.version}@sha256:{self.digest[:12]}"


def parse_pin(value: object) -> ModelPin | None:
    """The pin in a model literal's value, or None if it is not one."""
    match = PIN.match(value) if isinstance(value, str) else None
    return ModelPin(match["version"], match["digest"]) if match else None
