"""SCCM's seven states of a package on a distribution point, and the moves between them.

`None` stands for "not on the package's DP list" (before it is added, after removal).
"""

from __future__ import annotations

from typing import Final

INSTALLED: Final = "installed"
INSTALL_PENDING: Final = "install_pending"
INSTALL_RETRYING: Final = "install_retrying"
INSTALL_FAILED: Final = "install_failed"
REMOVAL_PENDING: Final = "removal_pending"
REMOVAL_RETRYING: Final = "removal_retrying"
REMOVAL_FAILED: Final = "removal_failed"
REMOVED: Final = "removed"  # reported by a DP when removal is done; the row then goes
# Reported by a DP that found a held version damaged (a read failed its check, or content
# validation) and stopped serving it: not a row state, a report that moves the row.
CONTENT_DAMAGED: Final = "content_damaged"

STATES: Final = (
    INSTALLED,
    INSTALL_PENDING,
    INSTALL_RETRYING,
    INSTALL_FAILED,
    REMOVAL_PENDING,
    REMOVAL_RETRYING,
    REMOVAL_FAILED,
)
PENDING: Final = frozenset({INSTALL_PENDING, INSTALL_RETRYING, REMOVAL_PENDING, REMOVAL_RETRYING})
REMOVING: Final = frozenset({REMOVAL_PENDING, REMOVAL_RETRYING, REMOVAL_FAILED})
# States from which a DP can be added to a package's DP list again (a new install_pending):
# the DP gave up, or the content is being removed.
READDABLE: Final = REMOVING | {INSTALL_FAILED}

_INSTALLING = {INSTALL_PENDING, INSTALL_RETRYING}

TRANSITIONS: Final[dict[str | None, frozenset[str | None]]] = {
    None: frozenset({INSTALL_PENDING}),
    INSTALL_PENDING: frozenset({INSTALLED, INSTALL_RETRYING, INSTALL_FAILED, REMOVAL_PENDING}),
    INSTALL_RETRYING: frozenset(
        {INSTALLED, INSTALL_PENDING, INSTALL_RETRYING, INSTALL_FAILED, REMOVAL_PENDING}
    ),
    INSTALL_FAILED: frozenset({INSTALL_PENDING, REMOVAL_PENDING}),
    # An update or a refresh sends a version again: installed -> install_pending.
    # A DP that finds the content lost (its start-up check) retries; one that finds it
    # damaged (start-up check, a read, content validation) has it sent again (after_damage).
    INSTALLED: frozenset({INSTALL_PENDING, INSTALL_RETRYING, REMOVAL_PENDING}),
    REMOVAL_PENDING: frozenset({None, REMOVAL_RETRYING, REMOVAL_FAILED, INSTALL_PENDING}),
    # A retrying row goes back to pending when its DP makes contact again (it failed only
    # because the DP could not be reached): it is tried at once.
    REMOVAL_RETRYING: frozenset(
        {None, REMOVAL_PENDING, REMOVAL_RETRYING, REMOVAL_FAILED, INSTALL_PENDING}
    ),
    REMOVAL_FAILED: frozenset({REMOVAL_PENDING, INSTALL_PENDING}),
}


def can_move(current: str | None, new: str | None) -> bool:
    return new in TRANSITIONS.get(current, frozenset())


def reported_target(reported: str) -> str | None:
    """The row state a DP's report asks for (`removed` means the row goes)."""
    return None if reported == REMOVED else reported


def after_damage(current: str | None) -> str | None:
    """Where a row goes when its DP reports the version damaged; None: it stays.

    An installed row goes back to `install_pending`, so the site sends the content again
    (a branch DP pulls it again) and no client is sent there meanwhile. A row already on
    its way in or out stays: the content is being sent again or removed anyway.
    """
    return INSTALL_PENDING if current == INSTALLED else None


def explain_refusal(current: str | None, new: str | None) -> str:
    allowed = sorted(s or "removed" for s in TRANSITIONS.get(current, frozenset()))
    return (
        f"a package cannot move from {current or 'not listed'} to {new or 'removed'}; "
        f"from {current or 'not listed'} it may move to {', '.join(allowed) or 'nothing'}"
    )


def is_installing(state: str) -> bool:
    return state in _INSTALLING
