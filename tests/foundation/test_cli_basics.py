from pathlib import Path

from typer.testing import CliRunner

from ate import __version__
from ate.cli import app

DATA = Path(__file__).resolve().parents[2] / "data"
runner = CliRunner()


def test_version_and_help():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout.strip() == f"ate {__version__}"
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0 and "config" in res.stdout and "data" in res.stdout


def test_data_info_on_real_file():
    res = runner.invoke(app, ["data", "info", str(DATA / "binance_spot_BTCUSDT_1m_2026-03-15_2026-03-22.csv.gz")])
    assert res.exit_code == 0
    assert "10,080" in res.stdout and "2026-03-15 09:38" in res.stdout and "0 (0 bars missing)" in res.stdout
