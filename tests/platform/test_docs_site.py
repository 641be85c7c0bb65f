"""The documentation site builds offline and strictly: `mkdocs build --strict` fails on any warning (a broken
link or anchor, a page missing from the nav), every page of docs/ is in the nav, and the built site loads
nothing from another host (no web fonts, no CDN scripts or styles), so it works without internet."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXTERNAL = re.compile(r"""<(?:link|script|img)\b[^>]*\b(?:href|src)=["']?(?:https?:)?//""", re.I)


def nav_pages(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [p for item in node for p in nav_pages(item)]
    return [p for value in node.values() for p in nav_pages(value)]


def test_every_page_is_in_the_nav():
    # mkdocs.yml uses no custom YAML tags, so the safe loader reads it
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(nav_pages(config["nav"])) == pages
    assert config["theme"]["font"] is False, "theme.font must stay false: Material would fetch Google Fonts"


def test_the_site_builds_strictly_and_offline(tmp_path):
    site = tmp_path / "site"
    # A proxy that refuses every connection: anything fetched over HTTP(S) during the build fails it.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "http_proxy": "http://127.0.0.1:9",
           "https_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
           "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": "", "NO_PROXY": ""}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                             "-d", str(site)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr
    built = {str(p.relative_to(site)) for p in site.rglob("index.html")}
    for page in ("index.html", "quickstart/index.html", "concepts/index.html", "tutorial/index.html",
                 "operations/index.html", "configuration/index.html", "cli/index.html", "api/index.html"):
        assert page in built
    offsite = {str(p.relative_to(site)): EXTERNAL.findall(p.read_text()) for p in site.rglob("*.html")}
    assert {page: found for page, found in offsite.items() if found} == {}
    api = (site / "api" / "index.html").read_text()
    assert "POST /api/kill" in api and "ControlResult" in api
