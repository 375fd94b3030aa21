"""Failure-spike detection: 5-minute series from the rollups (series), the beta-binomial
test (stats), the detectors (detectors), alert episodes (episodes), the alert store and
its lifecycle (alerts), every tunable (settings), and one run over the store (run)."""
