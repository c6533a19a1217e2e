"""Benchmarks behind `mmn bench`, one module each (see ops.commands.bench)."""
