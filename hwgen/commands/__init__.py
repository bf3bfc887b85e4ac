"""One module per ``hwgen`` subcommand (see hwgen/cli.py)."""
