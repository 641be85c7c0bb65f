"""Operator monitoring: metrics, health and heartbeat, alerts, the operator HTTP API and dashboard.

Entry points: `MetricsRecorder` (recorder.py, hot-path figures), `StoreView` / `EngineView` (view.py, what
the API reads), `RiskControls` (controls.py, kill/resume over the risk layer), `start_monitor`
(server.py, API + alert delivery inside the engine's loop), `Notifier` (alerts.py), `AlertFeed`
(alert_feed.py: the events table into the notifier), `EngineObserver` (observer.py: alerts, venue pauses,
the wall-clock dead-man and heartbeat of a running engine).
"""
