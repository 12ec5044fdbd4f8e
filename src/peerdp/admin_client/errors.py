"""The one error the admin client raises."""

from __future__ import annotations


class AdminError(Exception):
    """A call to the site's admin API, or an upload, that did not succeed.

    `message` says what went wrong in one sentence a person can act on (it is what the
    CLI prints); `status` is the HTTP status of the site's answer, or None when there was
    no answer to have one (a refused connection, a timeout, a folder that cannot be sent).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __repr__(self) -> str:
        return f"AdminError({self.message!r}, status={self.status!r})"
