"""Subcommands of the ``plantbimoe`` console script (registered in `plantbimoe.cli.SUBCOMMANDS`)."""
