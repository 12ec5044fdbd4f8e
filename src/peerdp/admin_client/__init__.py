"""The admin client: a typed library for one site's admin API (`/api/v1`).

`AdminClient` makes the calls (bearer token, base URL, JSON in and out); `checked_folder`
and `send_folder` send a package folder as a streamed tar archive. Every failure is an
`AdminError` with a one-sentence `message` and the HTTP `status` (None without an answer);
progress is reported to a callback. No terminal output here: the CLI, the demo and the
benchmarks decide how to show errors and progress.

It may import only the libraries below it (`domain`, `content`, `net`, `security`): never
the roles (`site`, `dp`, `machine`, `agents`) nor the faces (`cli`, `demo`).
"""

from peerdp.admin_client.api import (
    API_PREFIX,
    CA_FILE_ENV,
    SITE_ENV,
    TOKEN_ENV,
    AdminClient,
    Params,
    describe_error,
    site_url,
)
from peerdp.admin_client.errors import AdminError
from peerdp.admin_client.upload import (
    Entry,
    FolderChanged,
    OnProgress,
    archive_chunks,
    archive_size,
    checked_folder,
    send_folder,
)

__all__ = [
    "API_PREFIX",
    "CA_FILE_ENV",
    "SITE_ENV",
    "TOKEN_ENV",
    "AdminClient",
    "AdminError",
    "Entry",
    "FolderChanged",
    "OnProgress",
    "Params",
    "archive_chunks",
    "archive_size",
    "checked_folder",
    "describe_error",
    "send_folder",
    "site_url",
]
