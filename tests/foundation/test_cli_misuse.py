"""Every subcommand misused the ways operators misuse them: each ends with its exit code and a message that
says what is wrong and where to look, never a traceback (issue 14: 33 tracebacks in 146 cases)."""

from __future__ import annotations

import gzip
import json
import os
import socket
from pathlib import Path

import pytest
from cli_support import run_ate

from ate.cli_boundary import ExitCode
from ate.store import Store

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
CANDLES = DATA / "binance_spot_BTCUSDT_1m_2026-03-15_2026-03-22.csv.gz"
USAGE, INPUT, UNAVAILABLE, INCOMPLETE = ExitCode.USAGE, ExitCode.INPUT, ExitCode.UNAVAILABLE, ExitCode.INCOMPLETE
FROM_TO = ["--from", "2026-03-15", "--to", "2026-03-16"]


class World:
    """Files every case can point at, in one temporary directory (`{d}` in the table)."""

    def __init__(self, d: Path) -> None:
        self.d = d
        self.busy = socket.create_server(("127.0.0.1", 0))
        self.busy_port = self.busy.getsockname()[1]
        (d / "garbage.db").write_bytes(b"not a database at all " * 100)
        store = Store(f"sqlite:///{d / 'full.db'}")
        store.close()
        raw = (d / "full.db").read_bytes()
        (d / "truncated.db").write_bytes(raw[: len(raw) // 3])
        (d / "corrupt.csv.gz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(7, 71)))
        (d / "truncated.csv.gz").write_bytes(CANDLES.read_bytes()[:400])
        (d / "plain.csv").write_text("a,b\n1,2\n")
        (d / "notjson.json").write_text('{"mode": "paper",, }')
        (d / "stray.json").write_bytes(b'{"mode": "paper", "run_id": "x\xff"}')
        (d / "grid_bad.json").write_text("[1, 2")
        self.config("good")
        self.config("garbage_store", store={"url": f"sqlite:///{d / 'garbage.db'}"})
        self.config("truncated_store", store={"url": f"sqlite:///{d / 'truncated.db'}"})
        self.config("busy_port", monitor={"port": self.busy_port})
        self.config("not_a_url", store={"url": "not a url"})
        self.config("kill_nowhere", kill_switch={"file": str(d / "missing" / "EMERGENCY_STOP")})
        # `ate kill` creates the kill file's directory (the last line of defence does what it can): a second one
        self.config("run_kill_nowhere", kill_switch={"file": str(d / "absent" / "EMERGENCY_STOP")})
        self.config("file_as_dir", store={"url": f"sqlite:///{d / 'plain.csv' / 'ate.db'}"})
        ro = d / "readonly"
        ro.mkdir()
        self.config("readonly_store", store={"url": f"sqlite:///{ro / 'sub' / 'ate.db'}"})
        ro.chmod(0o500)
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            down = f"http://127.0.0.1:{closed.getsockname()[1]}"  # nothing listens there: the venue is down
        self.config("venues_down", venues={
            "binance": {"spot_rest_url": down, "usdm_rest_url": down}, "backpack": {"rest_url": down},
            "deribit": {"enabled": False}})
        demo = json.loads((ROOT / "configs" / "demo.json").read_text())
        demo["store"] = {"url": f"sqlite:///{d / 'demo.db'}"}
        (d / "demo.json").write_text(json.dumps(demo))
        (d / "demo.json").chmod(0o600)  # it holds the simulator's (inline) keys
        for m in demo["sim"]["markets"]:  # the same demo, from anywhere, with its monitor port taken
            m.update({k: str(ROOT / v) for k, v in m.items() if k in ("data", "history", "funding")})
        demo["monitor"] = {"port": self.busy_port}
        demo["kill_switch"] = {"file": str(d / "EMERGENCY_STOP")}
        (d / "demo_busy.json").write_text(json.dumps(demo))
        (d / "demo_busy.json").chmod(0o600)

    def config(self, name: str, **sections) -> None:
        cfg = {"mode": "paper", "run_id": "misuse", "store": {"url": f"sqlite:///{self.d / 'ate.db'}"},
               "kill_switch": {"file": str(self.d / "EMERGENCY_STOP")}, "monitor": {"port": 0},
               "venues": {"deribit": {"enabled": False}}, **sections}
        (self.d / f"{name}.json").write_text(json.dumps(cfg))


# (argv with {d} for the world's directory, exit code, text the output must contain)
CASES = [
    (["--bogus"], USAGE, "error: No such option: --bogus"),
    (["nosuchcommand"], USAGE, "error: No such command 'nosuchcommand'"),
    (["config", "validate"], USAGE, "error: Missing argument 'path'"),
    (["config", "validate", "{d}/nothere.json"], USAGE, "config: cannot read {d}/nothere.json"),
    (["config", "validate", "{d}/notjson.json"], USAGE, "malformed JSON in {d}/notjson.json at line 1 column 18"),
    (["config", "validate", "{d}/stray.json"], USAGE, "at line 1 column 31: byte 0xff is not UTF-8 text"),
    (["config", "validate", "{d}/not_a_url.json"], USAGE, "store.url: 'not a url' is not a database URL"),
    (["config", "validate", "{d}/kill_nowhere.json"], USAGE, "kill_switch.file: directory {d}/missing does not exist"),
    (["config", "validate", "{d}/garbage.db"], USAGE, "garbage.db at line 1 column 1: Expecting value"),
    (["config", "schema", "extra"], USAGE, "error: Got unexpected extra argument(s) (extra)"),
    (["data", "info"], USAGE, "error: Missing argument 'path'"),
    (["data", "info", "{d}/nothere.csv.gz"], USAGE, "does not exist"),
    (["data", "info", "{d}"], USAGE, "is a directory"),
    (["data", "info", "{d}/corrupt.csv.gz"], INPUT, "damaged file"),
    (["data", "info", "{d}/truncated.csv.gz"], INPUT, "damaged file (EOFError"),
    (["data", "info", "{d}/plain.csv"], INPUT, "is not a candle, funding or DVOL file"),
    (["data", "info", str(DATA / "binance_usdm_BTCUSDT_funding.csv")], ExitCode.OK, "7,323"),
    (["data", "info", str(DATA / "deribit_BTC_DVOL_1d.csv")], ExitCode.OK, "1,885"),
    (["data", "download"], USAGE, "error: Missing option '--venue'"),
    (["data", "download", "--venue", "nowhere", "--symbol", "X", *FROM_TO], USAGE, "--venue 'nowhere': one of"),
    (["data", "download", "--venue", "binance", "--symbol", "BTCUSDT", "--interval", "7x", *FROM_TO], USAGE,
     "--interval '7x': one of"),
    (["docs", "nonsense"], USAGE, "error: No such command 'nonsense'"),
    (["status"], USAGE, "error: Missing option '--config'"),
    (["status", "-c", "{d}/nothere.json"], USAGE, "config: cannot read"),
    (["status", "-c", "{d}/garbage_store.json"], INPUT, "error: the store cannot be used: file is not a database"),
    (["status", "-c", "{d}/truncated_store.json"], INPUT, "error: the store cannot be used: database disk image is "
                                                           "malformed"),
    (["status", "-c", "{d}/not_a_url.json"], USAGE, "store.url: 'not a url' is not a database URL"),
    (["status", "-c", "{d}/file_as_dir.json"], INPUT, "error: "),
    (["status", "-c", "{d}/good.json", "--json", "extra"], USAGE, "unexpected extra argument"),
    (["kill"], USAGE, "error: which engine? `ate kill`"),
    (["kill", "-c", "{d}/garbage_store.json"], INCOMPLETE, "HALTED NOT persisted: the store cannot be used"),
    (["kill", "-c", "{d}/truncated_store.json"], INCOMPLETE, "ok      kill file {d}/EMERGENCY_STOP written"),
    (["kill", "-c", "{d}/kill_nowhere.json"], ExitCode.OK, "HALTED persisted"),
    (["resume"], USAGE, "error: which engine? `ate resume`"),
    (["resume", "-c", "{d}/garbage_store.json"], INCOMPLETE, "ACTIVE not persisted: the store cannot be used"),
    (["promote", "-c", "{d}/garbage_store.json"], INPUT, "error: the store cannot be used"),
    (["promote", "-c", "{d}/truncated_store.json", "--check"], INPUT, "error: the store cannot be used"),
    (["close-all"], USAGE, "error: Missing option '--config'"),
    (["close-all", "-c", "{d}/good.json", "--venue", "nowhere"], USAGE, "error: --venue: unknown venue(s) nowhere"),
    (["close-all", "-c", "{d}/good.json", "--timeout", "0"], USAGE, "error: Invalid value for '--timeout'"),
    (["run", "-c", "{d}/good.json", "--mode", "yolo"], USAGE, "mode: 'yolo' is not one of"),
    (["run", "-c", "{d}/good.json", "--paper", "--canary-mode"], USAGE, "mode: conflicting choices"),
    (["run", "-c", "{d}/nothere.json"], USAGE, "config: cannot read"),
    (["run", "-c", "{d}/run_kill_nowhere.json"], USAGE, "kill_switch.file: directory {d}/absent does not exist"),
    (["run", "-c", "{d}/venues_down.json", "--quiet"], UNAVAILABLE, "error: venue: binance"),
    (["run", "-c", "{d}/demo_busy.json", "--quiet"], INPUT,  # the simulator's DVOL file is relative to the root
     "error: data/deribit_BTC_DVOL_1d.csv: no such file or directory (relative paths are taken from the "
     "working directory {d})"),
    (["dashboard", "--config", "{d}/garbage_store.json"], INPUT, "error: the store cannot be used"),
    (["dashboard", "--config", "{d}/busy_port.json"], UNAVAILABLE, "change monitor.port in the config"),
    (["signals", "--config", "{d}/good.json", "--data", "{d}/nothere.csv.gz"], USAGE, "does not exist"),
    (["signals", "--config", "{d}/good.json", "--data", "{d}/corrupt.csv.gz", "--out", "{d}/s.csv"], INPUT,
     "error: corrupt compressed file"),
    (["signals", "--config", "{d}/good.json", "--data", str(CANDLES), "--equity", "-1"], USAGE, "Invalid value for '--equity'"),
    (["backtest", "--config", "{d}/good.json", "--from", "yesterday", "--to", "2026-03-16"], USAGE,
     "'yesterday' is not a date"),
    (["backtest", "--config", "{d}/good.json", *FROM_TO, "--data", "binance:BTCUSDT={d}/corrupt.csv.gz"], INPUT,
     "error: corrupt compressed file"),
    (["backtest", "--config", "{d}/good.json", *FROM_TO], USAGE,  # the default data is relative to the repo root
     "data: no candles for the primary market binance:BTCUSDT"),
    (["backtest", "--config", "{d}/good.json", *FROM_TO, "--data", "nonsense"], USAGE, "data: "),
    (["compare", "--config", "{d}/garbage_store.json", *FROM_TO, "--data", f"binance:BTCUSDT={DATA}/"
      "binance_spot_BTCUSDT_1h.csv.gz", "--data", f"dvol={DATA}/deribit_BTC_DVOL_1d.csv"], INPUT,
     "error: the store cannot be used"),
    (["sweep", "--config", "{d}/good.json", "--grid", "{d}/nothere.json", *FROM_TO], USAGE,
     "grid: cannot read {d}/nothere.json"),
    (["sweep", "--config", "{d}/good.json", "--grid", "{d}/grid_bad.json", *FROM_TO], USAGE,
     "grid: cannot read {d}/grid_bad.json: Expecting ','"),
    (["simulate", "-c", "{d}/good.json"], USAGE, "sim: the config has no 'sim' section"),
    (["simulate", "-c", "{d}/demo.json", "--faults", "bogus=1"], USAGE, "--faults"),
    (["simulate", "-c", "{d}/demo.json"], INPUT, "relative paths are taken from the working directory {d}"),
    (["check", "--config", "{d}/nothere.json"], USAGE, "config: cannot read"),
    (["ticker", "--config", "{d}/good.json", "--venue", "nowhere"], USAGE, "venue must be one of"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("misuse"))
    yield w
    w.busy.close()
    (w.d / "readonly").chmod(0o700)


def _fmt(text: str, w: World) -> str:
    return text.replace("{d}", str(w.d))


@pytest.mark.parametrize(("argv", "code", "expected"), CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_misuse_ends_with_a_message_and_an_exit_code(world, argv, code, expected, capsys, monkeypatch):
    monkeypatch.chdir(world.d)  # `ate simulate` outside the repository root, and no stray files in the repo
    monkeypatch.setenv("ATE_ERROR_LOG", str(world.d / "errors.log"))
    got, out, err = run_ate([_fmt(a, world) for a in argv], capsys)
    both = out + err
    assert "Traceback" not in both
    assert got == code, both
    assert _fmt(expected, world) in both, both
    # the boundary's lines name what and where, one line each (`ate run` also logs warnings to stderr by design)
    if code != ExitCode.OK and "error:" in err and argv[0] != "run":
        assert all(line.startswith("error: ") for line in err.splitlines() if line), err


def test_read_only_directory(world, capsys):
    config = world.d / "readonly_store.json"
    if os.geteuid() == 0:  # root writes through permission bits: use a file system that refuses even root
        if not Path("/sys").is_dir():
            pytest.skip("no read-only file system to write into")
        world.config("sys_store", store={"url": "sqlite:////sys/ate-misuse/ate.db"})
        config = world.d / "sys_store.json"
    got, out, err = run_ate(["status", "-c", str(config)], capsys)
    assert got == INPUT and "Traceback" not in out + err
    assert err.startswith("error: cannot write ") and "(make the directory writable or point store.url" in err, err


def test_an_unexpected_failure_is_one_line_with_the_traceback_in_the_error_log(world, capsys, monkeypatch):
    log = world.d / "unexpected.log"
    monkeypatch.setenv("ATE_ERROR_LOG", str(log))
    monkeypatch.setattr("ate.data.loaders.data_info", lambda path: 1 / 0)  # a bug, as the boundary sees one
    got, out, err = run_ate(["data", "info", str(CANDLES)], capsys)
    assert got == ExitCode.INTERNAL
    assert err == f"error: unexpected ZeroDivisionError: division by zero (traceback in {log}; rerun with --debug)\n"
    assert "Traceback (most recent call last)" in log.read_text() and "1 / 0" in log.read_text()
    got, out, err = run_ate(["--debug", "data", "info", str(CANDLES)], capsys)
    assert got == ExitCode.INTERNAL and "Traceback (most recent call last)" in err


def test_run_with_the_monitor_port_taken_names_the_setting(world, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    got, out, err = run_ate(["run", "-c", str(world.d / "demo_busy.json"), "--quiet"], capsys)
    assert got == UNAVAILABLE and "Traceback" not in out + err
    assert err.startswith("error: address already in use: ") and f"'127.0.0.1', {world.busy_port}" in err, err
    assert err.endswith("another process holds the port: stop it, or change monitor.port in the config (0 picks a "
                        "free port; --port-base for `ate simulate`))\n"), err


def test_help_keeps_square_brackets(capsys):
    got, out, _ = run_ate(["sweep", "--help"], capsys)
    assert got == 0 and 'JSON {"dotted.path": [values]}' in out


def test_corrupt_gzip_of_every_kind_is_a_clean_error(world, capsys):
    path = world.d / "flipped.csv.gz"
    raw = bytearray(gzip.compress(CANDLES.read_bytes()[:2000]))
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    got, out, err = run_ate(["data", "info", str(path)], capsys)
    assert got == INPUT and err.startswith(f"error: {path}: damaged file"), err

