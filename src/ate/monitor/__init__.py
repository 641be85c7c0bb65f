"""Operator monitoring: metrics, health and heartbeat, alerts, the operator HTTP API and dashboard.

Entry points: `MetricsRecorder` (recorder.py, hot-path figures), `StoreView` / `EngineView` (view.py, what
the API reads), `RiskControls` (controls.py, kill/resume over the risk layer), `start_monitor`
(server.py, API + heartbeat + alerts inside the engine's loop), `Notifier` (alerts.py).
"""
