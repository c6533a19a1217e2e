"""What the `mmn` commands (ops.cli) and the benches (ops.benches) declare their options
with: typed commands on tyro (typed.py), option values (values.py) and the options they
share. The CLI finds the benches' options without the benches importing the CLI.
"""
