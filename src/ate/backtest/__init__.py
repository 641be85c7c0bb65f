"""Backtests: replay recorded data through the live engine (`runner`), statistics (`stats`), round trips
(`trades`), the HTML report (`report`), shadow-vs-backtest comparison (`compare`), parameter sweeps
(`sweep`), and the `ate backtest | compare | sweep` commands (`commands`)."""
