"""The site server (`peerdp site serve`): the database, the admin REST API, the management
point and the background services, in one FastAPI application per worker.

- `app.py`, `server.py`, `context.py`: the application, its workers and the per-site
  context (database, settings, signing key, the management point's services on `ctx.mp`);
- `admin/`: the admin API (`/api/v1`), one module per resource;
- `mp/`: the management point (`/mp/v1`) that machines talk to;
- the site's own work: `packages.py` (package versions), `provisioning.py` (adding a
  DP to a package, on demand or by an admin), `distribution.py` (the distribution manager
  that pushes content to standard DPs), `dp_rows.py`, `status.py` and `status_batch.py`
  (status messages), `notify.py` (the change bus between workers), `services.py`;
- plumbing: `auth.py`, `errors.py`, `limits.py`.

May import the domain and the libraries (`store`, `content`, `security`, `net`,
`config`); never a DP, a machine role, the client agent, the CLI, typer or Rich.
"""
