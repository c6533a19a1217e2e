"""Command-line options shared by the `mmn` commands (ops.cli) and the benches (ops.benches).

Both declare their options through these modules, so the CLI can discover the benches
without the benches importing the CLI.
"""
