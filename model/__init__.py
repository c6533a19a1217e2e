"""MMN, its baselines and losses in PyTorch. Returns logits; knows nothing of Kafka."""
