"""The two distribution-point roles and what they share.

- `standard.py`: the standard DP (`peerdp dp serve`), which holds what the site's
  distribution manager pushes to it;
- `branch.py`: the branch DP (`peerdp branch serve`), which pulls the packages its signed
  policy assigns from the site's standard DPs;
- what both share: the content store they serve from (`store.py`, through the
  `ContentSource` of `source.py`), the `/content` routes (`routes.py`, access tokens
  checked with the site's key), the HTTP stack under them (`http/`) and the zero-copy
  uvicorn protocol that sends file bodies (`zerocopy.py`).

Both register with the site and report through `peerdp.machine`. May import the domain,
the libraries and `peerdp.machine`; never the client agent, the site, the CLI, typer or Rich.
"""
