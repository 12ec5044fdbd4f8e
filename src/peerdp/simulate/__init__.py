"""`peerdp simulate`: a discrete-event simulation of a deployment, driving the real rule.

A scenario (`scenario.py`, a TOML file) describes a site: the head office and its
branches with their networks, the DPs, the clients, packages and advertisements, how
clients fetch policy and retry, and events (a DP down, a link cut, a new source version).
`world.py` turns it into the domain's own objects. The simulator (`engine.py`) then runs
the deployment on a simulated clock: content-location answers and on-demand provisioning
come from `peerdp.domain.location` (the module the management point uses), every change
of a package's DP list goes through `peerdp.domain.dp_states`' transition table, failed
attempts follow `peerdp.domain.programs` and `peerdp.domain.backoff`, and policy arrives
as `peerdp.domain.policy_polling` says. Transfers are flows sharing link bandwidth
(`network.py`). `results.py` summarises a run; `plots.py` draws it. `forecast.py` is the
dry run on a real site's facts (`peerdp simulate --advertisement`): the same rule,
without a clock.
"""
