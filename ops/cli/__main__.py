"""`python -m ops.cli`: the `mmn` command."""

import gc
import sys

from ops.cli.main import main

code = main()
# What is left is the interpreter's teardown: skip the collection of every object the
# command built (seconds on a loaded machine, after the command's last line).
gc.freeze()
sys.exit(code)
