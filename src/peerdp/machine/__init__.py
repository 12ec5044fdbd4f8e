"""What every managed machine shares: its link to its site.

A standard DP, a branch DP and a client agent each register with the site's
management point once (the identity is kept in the data directory), fetch and verify
their signed policy, report status messages, and (the DPs) keep the URL they serve at
known to the site. Those pieces live here, used by the roles in `peerdp.dp` and
`peerdp.agents`.

May import the domain and the libraries (`peerdp.content`, `peerdp.transfer`,
`peerdp.security`, `peerdp.net`, `peerdp.config`); never a role (`site`, `dp`,
`agents`), the admin client, the CLI or the demo, and never typer or Rich.
"""
