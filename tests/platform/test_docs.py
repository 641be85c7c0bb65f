"""The documentation cannot drift: every relative link in docs/ and the README resolves, and the generated
reference pages (configuration, command line, HTTP API) equal what `ate docs` prints from the code. The
tutorial is executed by test_tutorial.py, the site built by test_docs_site.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ate.cli import app

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md", ROOT / "examples" / "strategies" / "README.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    broken = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = (doc.parent / target.split("#")[0]).resolve()
        if not path.exists():
            broken.append(target)
    assert broken == []


def test_configuration_reference_is_generated_from_the_schema():
    from ate.config.reference import markdown_reference

    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == markdown_reference(), \
        "docs/configuration.md is stale: run `ate docs config > docs/configuration.md`"
    assert "## `strategies.custom[]`" in committed and "| `class` | string | required | length ≥ 1 |" in committed


def test_cli_reference_is_generated_from_the_commands():
    from ate.cli_reference import markdown_reference

    committed = (ROOT / "docs" / "cli.md").read_text()
    assert committed == markdown_reference(app), "docs/cli.md is stale: run `ate docs cli > docs/cli.md`"
    assert "## `ate data download`" in committed and "| `--venue` | required." in committed


def test_http_api_reference_is_generated_from_the_openapi_schema():
    from ate.monitor.api_reference import markdown_reference, openapi_schema

    committed = (ROOT / "docs" / "api.md").read_text()
    assert committed == markdown_reference(), "docs/api.md is stale: run `ate docs api > docs/api.md`"
    # every operation the running API documents is on the page, under its own heading
    for path, methods in openapi_schema()["paths"].items():
        for method in methods:
            assert f"## `{method.upper()} {path}`" in committed
    assert "## `POST /api/kill`" in committed and "| `reason` | string | no | length ≥ 1, length ≤ 200" in committed


def test_ate_docs_prints_each_generated_page():
    runner = CliRunner()
    for page, name in (("config", "configuration.md"), ("cli", "cli.md"), ("api", "api.md")):
        result = runner.invoke(app, ["docs", page])
        assert result.exit_code == 0, result.output
        assert result.stdout == (ROOT / "docs" / name).read_text()
