"""Imports point down the layering of DESIGN.md ("Layout"), never up nor sideways.

The ranks below are the "may import" column of DESIGN.md's table read as an order: an area may import only
areas of a strictly lower rank, so two areas of one rank know nothing of each other (risk and signals,
strategies and execution). Every import counts, also one inside a function: a lazy import is still a
dependency, and the usual way an upward one hides.

One departure from the table: it lets `venues` import `model` only, but venue parsers build
`ate.data.candles.Candle`, so `data` sits below `venues` here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ate

RANKS: dict[str, int] = {
    # the package's own __init__ (the version) and the logging set-up import nothing of ate
    "ate": 0, "logs": 0, "model": 0,
    "config": 1, "data": 1, "store": 1,
    "signals": 2, "risk": 2, "venues": 2,
    "strategies": 3, "execution": 3, "sim": 3,
    "trading": 4,
    "monitor": 5,
    "backtest": 6,
    "engine": 7,
    "cli": 8,
}
# The top: cli.py, its error boundary and reference generator, and the commands that wire several layers.
CLI = {"cli", "cli_boundary", "cli_reference", "commands"}


def area(module: str) -> str:
    """`ate.risk.state` -> "risk"; `ate.cli_boundary` -> "cli"; `ate` -> "ate"."""
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else "ate"
    return "cli" if name in CLI else name


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(module: str, is_package: bool, tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every `ate` import in the file, relative ones resolved."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
    return [(line, name) for line, name in found if name == "ate" or name.startswith("ate.")]


def violations(root: Path) -> list[str]:
    """Every import in the package at `root` that does not point down the ranks, as `file:line: a -> b`."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(root, path)
        here = area(module)
        if here not in RANKS:
            problems.append(f"{path.relative_to(root.parent)}: area {here!r} has no rank: place it in RANKS")
            continue
        for line, target in imported(module, path.name == "__init__.py", ast.parse(path.read_text(), str(path))):
            there = area(target)
            if there == here:
                continue
            if there not in RANKS or RANKS[there] >= RANKS[here]:
                problems.append(f"{path.relative_to(root.parent)}:{line}: {here} (rank {RANKS[here]}) imports "
                                f"{target} ({there}, rank {RANKS.get(there, '?')})")
    return problems


def test_every_import_points_down_the_layering():
    assert violations(Path(ate.__file__).parent) == []


def test_an_upward_import_is_found_even_inside_a_function(tmp_path):
    root = tmp_path / "ate"
    for folder in ("risk", "venues", "signals", "novel"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "risk" / "glue.py").write_text(
        "from ate.model import Side\n"  # down: fine
        "from . import glue2\n"  # same area: fine
        "def cmd():\n"
        "    from ate.cli_boundary import CommandError\n")  # up, hidden in a function
    (root / "venues" / "check.py").write_text("from ..sim.runner import run_simulator\n")  # up, relative
    (root / "signals" / "x.py").write_text("import ate.risk.state\n")  # sideways: same rank
    assert violations(root) == [
        "ate/novel/__init__.py: area 'novel' has no rank: place it in RANKS",
        "ate/risk/glue.py:4: risk (rank 2) imports ate.cli_boundary (cli, rank 8)",
        "ate/signals/x.py:1: signals (rank 2) imports ate.risk.state (risk, rank 2)",
        "ate/venues/check.py:1: venues (rank 2) imports ate.sim.runner (sim, rank 3)",
    ]
