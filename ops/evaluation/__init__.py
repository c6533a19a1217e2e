"""Evaluation: metrics and AUC, the offline experiment, held-out scoring, the A/B evaluator."""
