"""The `peerdp` command: the only module tree that talks to a terminal.

`main.py` assembles the command groups. Role commands (`site_cmd`, `dp_cmd`,
`agents_cmd`: `site serve`, `dp serve`, `branch serve`, `client run`) read options, build
the role's settings and start it, passing in how to announce lines (`serving.py`) and draw
progress (`progress.py`); a role's `ConfigError` becomes a one-line usage error here. Admin
commands (`commands/`, one module per API resource) call the site through
`peerdp.admin_client` (`connection.py` turns its `AdminError` into the one-line failure)
and print tables or JSON (`output.py`); `resources.py` holds the generic commands and
`Lookup`, the one resolver that finds an object from its ID or its name for every command.
A role that cannot reach the site or is refused by it fails in one line, exit code 1
(`serving.py`).

May import everything below it; typer and Rich are used here and in `peerdp.demo` only.
"""
