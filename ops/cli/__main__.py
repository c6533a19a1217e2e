"""`python -m ops.cli`: the `mmn` command."""

import sys

from ops.cli.main import main

sys.exit(main())
