"""Online training: the learner, deduplication, the trainer daemon, its Kafka I/O and telemetry."""
