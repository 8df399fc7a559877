"""The `healthswarm` command line: thin Typer commands that call the library and print with Rich."""
