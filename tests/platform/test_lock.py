"""requirements.lock and pyproject.toml agree: every direct dependency (runtime and `dev`) is pinned, inside
its range, with everything it needs in turn; and the environment running the tests has the pinned versions
(so "the tests passed" means "with these versions")."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def lock() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version and ";" not in line and "@" not in line, f"not an exact pin: {line!r}"
        key = canonicalize_name(name)
        assert key not in pins, f"{name} pinned twice"
        pins[key] = Version(version)
    return pins


def direct() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]


def applies(req: Requirement, extras: set[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": e}) for e in extras | {""})


def test_every_direct_dependency_is_pinned_inside_its_range():
    pins = lock()
    problems = []
    for req in direct():
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req.name}: not in requirements.lock")
        elif not req.specifier.contains(pin, prereleases=True):
            problems.append(f"{req.name}: lock pins {pin}, pyproject.toml wants {req.specifier}")
    assert problems == [], "update requirements.lock (docs/installing.md)"


def test_the_lock_is_closed_under_what_the_pinned_packages_require():
    pins = lock()
    missing, todo, seen = [], [(r, set(r.extras)) for r in direct()], set()
    while todo:
        req, extras = todo.pop()
        key = (canonicalize_name(req.name), frozenset(extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue  # not installed here: the first test still requires it pinned
        for raw in dist.requires or []:
            sub = Requirement(raw)
            if not applies(sub, extras):
                continue
            if canonicalize_name(sub.name) not in pins:
                missing.append(f"{sub.name} (needed by {req.name})")
            todo.append((sub, set(sub.extras)))
    assert sorted(set(missing)) == []


def test_the_test_environment_has_the_pinned_versions():
    drift = []
    for name, pin in lock().items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            continue
        if installed != pin:
            drift.append(f"{name}: installed {installed}, locked {pin}")
    assert drift == [], "reinstall with `make` (the venv drifted) or re-lock (docs/installing.md)"
