"""SCCM's seven states of a package on a distribution point, and the moves between them.

`None` stands for "not on the package's DP list" (before it is added, after removal).
One more state is peerdp's own: `waiting_for_prestage`, a branch DP of a package that is
not downloaded automatically, waiting for an administrator to load a prestage archive on
it. It has no deadline: nothing happens until the administrator acts.
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
WAITING_FOR_PRESTAGE: Final = "waiting_for_prestage"
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
    WAITING_FOR_PRESTAGE,
)
PENDING: Final = frozenset({INSTALL_PENDING, INSTALL_RETRYING, REMOVAL_PENDING, REMOVAL_RETRYING})
REMOVING: Final = frozenset({REMOVAL_PENDING, REMOVAL_RETRYING, REMOVAL_FAILED})
# States from which a DP can be added to a package's DP list again (a new install_pending):
# the DP gave up, or the content is being removed.
READDABLE: Final = REMOVING | {INSTALL_FAILED}

_INSTALLING = {INSTALL_PENDING, INSTALL_RETRYING}

TRANSITIONS: Final[dict[str | None, frozenset[str | None]]] = {
    None: frozenset({INSTALL_PENDING, WAITING_FOR_PRESTAGE}),
    INSTALL_PENDING: frozenset(
        {INSTALLED, INSTALL_RETRYING, INSTALL_FAILED, REMOVAL_PENDING, WAITING_FOR_PRESTAGE}
    ),
    INSTALL_RETRYING: frozenset(
        {
            INSTALLED,
            INSTALL_PENDING,
            INSTALL_RETRYING,
            INSTALL_FAILED,
            REMOVAL_PENDING,
            WAITING_FOR_PRESTAGE,
        }
    ),
    INSTALL_FAILED: frozenset({INSTALL_PENDING, REMOVAL_PENDING, WAITING_FOR_PRESTAGE}),
    # Prestaged (installed), automatic download turned on (pending), or removed.
    WAITING_FOR_PRESTAGE: frozenset({INSTALLED, INSTALL_PENDING, REMOVAL_PENDING}),
    # An update or a refresh sends a version again: installed -> install_pending.
    # A DP that finds the content lost (its start-up check) retries; one that finds it
    # damaged (start-up check, a read, content validation) has it sent again (after_damage).
    INSTALLED: frozenset(
        {INSTALL_PENDING, INSTALL_RETRYING, REMOVAL_PENDING, WAITING_FOR_PRESTAGE}
    ),
    REMOVAL_PENDING: frozenset(
        {None, REMOVAL_RETRYING, REMOVAL_FAILED, INSTALL_PENDING, WAITING_FOR_PRESTAGE}
    ),
    # A retrying row goes back to pending when its DP makes contact again (it failed only
    # because the DP could not be reached): it is tried at once.
    REMOVAL_RETRYING: frozenset(
        {
            None,
            REMOVAL_PENDING,
            REMOVAL_RETRYING,
            REMOVAL_FAILED,
            INSTALL_PENDING,
            WAITING_FOR_PRESTAGE,
        }
    ),
    # A DP that was down when removal gave up deletes the content when it comes back, and
    # reports it: the row goes.
    REMOVAL_FAILED: frozenset({None, REMOVAL_PENDING, INSTALL_PENDING, WAITING_FOR_PRESTAGE}),
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


def install_target(branch_dp: bool, auto_download: bool) -> str:
    """Where a row goes when a version is to be installed on its DP: a branch DP of a package
    that is not downloaded automatically waits for a prestage; every other DP is sent it."""
    return WAITING_FOR_PRESTAGE if branch_dp and not auto_download else INSTALL_PENDING


def is_installing(state: str) -> bool:
    return state in _INSTALLING
