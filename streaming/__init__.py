"""Event schemas, the Faust joiner, mini-batch encoding and the embedded broker.

Imports nothing of `simulator`, `model` or `ops`.
"""
