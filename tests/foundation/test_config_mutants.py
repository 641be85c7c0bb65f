"""Property: every mutation of every shipped config is either accepted (exit 0, `ok`) or refused with exit 2 and
one `<field.path>: <reason>` line per problem. Never a crash, never anything else (issue 14: 42 of 2,400 mutants
crashed `ate config validate`). More examples: ATE_CONFIG_MUTANTS=2400."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from cli_support import run_ate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [ROOT / "config.example.json", *sorted((ROOT / "configs").glob("*.json"))]
KEYS = {"ATE_BINANCE_API_KEY": "k", "ATE_BINANCE_API_SECRET": "s", "ATE_BACKPACK_API_KEY": "k",
        "ATE_BACKPACK_API_SECRET": "s"}
FIELD_LINE = re.compile(r"^[A-Za-z0-9_.\-]+: \S")
RAW = "\u0000RAW\u0000"  # a placeholder replaced by raw text json.dumps cannot write

VALUES = st.one_of(
    st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e308, -1, 0, 1e-9, 999, 10**9, "", "not a url",
                     "http://example.com", "0.0.0.0", None, True, [], {}, "Infinity", "NaN", "1e999"]),
    st.integers(), st.floats(), st.text(max_size=20), st.booleans(),
    st.sampled_from([RAW + "1" * 5000, RAW + "[" * 5000 + "]" * 5000, RAW + "-Infinity", RAW + "1e99999"]),
)


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*prefix, i))


def replaced(doc, path, value):
    if not path:
        return value
    head, *rest = path
    out = dict(doc) if isinstance(doc, dict) else list(doc)
    out[head] = replaced(doc[head], tuple(rest), value)
    return out


@st.composite
def mutants(draw) -> bytes:
    source = draw(st.sampled_from(SHIPPED))
    doc = json.loads(source.read_text())
    kind = draw(st.sampled_from(["value", "value", "value", "delete", "unknown", "duplicate", "bytes", "truncate"]))
    every = list(paths(doc))
    where = draw(st.sampled_from(every[1:]))
    if kind == "value":
        value = draw(VALUES)
        raw = value.removeprefix(RAW) if isinstance(value, str) and value.startswith(RAW) else None
        text = json.dumps(replaced(doc, where, RAW if raw is not None else value), indent=2)
        return (text.replace(json.dumps(RAW), raw) if raw is not None else text).encode()
    if kind == "delete":
        parent = replaced(doc, (), doc)
        node = parent
        for p in where[:-1]:
            node = node[p]
        node.pop(where[-1]) if isinstance(node, dict) else node.pop(where[-1])
        return json.dumps(parent).encode()
    if kind == "unknown":
        return json.dumps(replaced(doc, where, {"surprise": 1}) if draw(st.booleans()) else {**doc, "surprise": 1}).encode()
    text = json.dumps(doc, indent=2)
    if kind == "duplicate":  # a top-level key written twice, the second with another value
        key = draw(st.sampled_from(sorted(doc)))
        return (text[:-2] + f',\n  "{key}": ' + json.dumps(draw(VALUES.filter(lambda v: not str(v).startswith(RAW))))
                + "\n}").encode()
    data = text.encode()
    at = draw(st.integers(0, len(data)))
    if kind == "bytes":
        return data[:at] + bytes([draw(st.integers(0x80, 0xFF))]) + data[at:]
    return data[:at]


@settings(max_examples=int(os.environ.get("ATE_CONFIG_MUTANTS", "300")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutant=mutants())
def test_every_mutant_is_accepted_or_refused_field_by_field(mutant, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for k, v in KEYS.items():
        monkeypatch.setenv(k, v)
    path = tmp_path / "mutant.json"
    path.write_bytes(mutant)
    path.chmod(0o600)  # inline simulator keys are allowed in an owner-only file
    code, out, err = run_ate(["config", "validate", str(path)], capsys)
    assert "Traceback" not in out + err
    if code == 0:
        assert out == "ok\n" and err == ""
    else:
        assert code == 2, err
        lines = err.splitlines()
        assert lines and all(FIELD_LINE.match(line) for line in lines), err


def test_the_shipped_configs_themselves_are_accepted(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for k, v in KEYS.items():
        monkeypatch.setenv(k, v)
    for source in SHIPPED:
        code, out, err = run_ate(["config", "validate", str(source)], capsys)
        assert (code, out, err) == (0, "ok\n", ""), source
