"""The client agent of a managed machine: it evaluates the advertisements of its signed
policy, locates and downloads their content, and runs their programs.

- `client.py`: the evaluation cycle, the program runner and the run history;
- `client_cache.py`: the verified package cache the programs run from.

Its link to the site (registration, policy, status) is `peerdp.machine`. May import the
domain, the libraries and `peerdp.machine`; never a DP or the site, the CLI, typer or Rich.
"""
