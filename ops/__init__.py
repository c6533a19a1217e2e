"""Trainer daemon, snapshots and registry, A/B evaluator, metrics, reports and the CLI."""
