"""`python -m peerdp …`: the `peerdp` command, for launching it as a child of this interpreter."""

from peerdp.cli.main import app

app(prog_name="peerdp")
