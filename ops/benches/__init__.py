"""Benchmarks behind `mmn bench`, one module each (see ops.cli.bench)."""
