from signals_helpers import btc_1h  # noqa: F401  (session fixture shared by the signal tests)
