"""Sub-commands of `mmn`, one module each, each exposing `register(subparsers)`."""
