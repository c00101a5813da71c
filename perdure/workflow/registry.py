"""The workflows one engine serves: every (name, version) pair, and which version new starts use.

Several versions of a workflow may be served at once (``Engine(workflows=[flow_v1, flow_v2])``):
a run is pinned to the version it started with, so one deployment drains the old runs while new
starts use the *default* version of the name — the one declared ``@workflow(..., default=True)``,
else the highest version (compared part by part, numbers as numbers: ``"10" > "9" > "2.1"``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from perdure.errors import InvalidConfiguration
from perdure.workflow.definitions import Workflow

__all__ = ["Registry", "version_order"]

_PARTS = re.compile(r"(\d+)")


def version_order(version: str) -> tuple[tuple[int, int, str], ...]:
    """A sort key for version strings: digit runs compare as numbers, the rest as text."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part)
                 for part in _PARTS.split(version) if part)


class Registry(Mapping[str, Workflow[Any, Any]]):
    """The workflows of one engine. As a mapping it is *name → default version*; a run's exact
    code is found with :meth:`version`."""

    def __init__(self, workflows: Iterable[Workflow[Any, Any]] | Workflow[Any, Any] = ()) -> None:
        if isinstance(workflows, Workflow):
            workflows = [workflows]
        by_key: dict[tuple[str, str], Workflow[Any, Any]] = {}
        for wf in workflows:
            if not isinstance(wf, Workflow):
                raise InvalidConfiguration(
                    f"{wf!r} is not a workflow: decorate it with @workflow")
            known = by_key.get((wf.name, wf.version))
            if known is not None and known is not wf:
                raise InvalidConfiguration(
                    f"two workflows are named {wf.name!r} with version {wf.version!r}; give "
                    "one another version (@workflow(version=...)) or another name")
            by_key[(wf.name, wf.version)] = wf
        self._by_key = by_key
        self._defaults: dict[str, Workflow[Any, Any]] = {}
        for name in dict.fromkeys(n for n, _ in by_key):
            versions = self.versions(name)
            declared = [wf for wf in versions if wf.default]
            if len(declared) > 1:
                raise InvalidConfiguration(
                    f"workflow {name!r} declares more than one default version "
                    f"({', '.join(repr(w.version) for w in declared)}); mark one only")
            self._defaults[name] = declared[0] if declared else versions[-1]

    # -- the mapping: name -> default -------------------------------------------------------

    def __getitem__(self, name: str) -> Workflow[Any, Any]:
        return self._defaults[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._defaults)

    def __len__(self) -> int:
        return len(self._defaults)

    # -- exact versions ---------------------------------------------------------------------

    def version(self, name: str, version: str) -> Workflow[Any, Any] | None:
        """The code of ``name`` at ``version``, or None."""
        return self._by_key.get((name, version))

    def versions(self, name: str) -> list[Workflow[Any, Any]]:
        """Every version of ``name`` served, oldest first."""
        found = [wf for (n, _), wf in self._by_key.items() if n == name]
        return sorted(found, key=lambda wf: version_order(wf.version))

    def has(self, wf: object) -> bool:
        """Whether ``wf`` itself (this object, at its version) is registered."""
        return isinstance(wf, Workflow) and self._by_key.get((wf.name, wf.version)) is wf

    def all(self) -> list[Workflow[Any, Any]]:
        """Every registered workflow, each version once."""
        return list(self._by_key.values())

    def pairs(self) -> list[tuple[str, str]]:
        """Every (name, version) served."""
        return list(self._by_key)

    def describe(self) -> str:
        """``"flow (1, 2*), other (1*)"``: names, versions, the default starred."""
        parts = []
        for name in sorted(self._defaults):
            default = self._defaults[name]
            shown = ", ".join(wf.version + ("*" if wf is default else "")
                              for wf in self.versions(name))
            parts.append(f"{name} ({shown})")
        return ", ".join(parts) or "none"
