"""What a validation depends on besides the object: the Kubernetes version
the clusters run (features change their defaults between minors)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Context:
    kubernetes_version: str = "1.34"

    @property
    def minor(self) -> int:
        return int(self.kubernetes_version.split(".")[1])

    def at_least(self, minor: int) -> bool:
        """Does the cluster run 1.<minor> or later? Use it for a feature gate
        that is on by default from that minor (name the gate in a comment)."""
        return self.minor >= minor
