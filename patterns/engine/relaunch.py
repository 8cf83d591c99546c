"""Starting a run again after its process was lost with its machine (a Dask worker died).

The run keeps its id and record; what it committed at its checkpoints stays, what it staged
after the last one is dropped (the same rollback as a failed run's), and the new process
starts from the state and stream positions of that checkpoint. So every row lands exactly
once: rows committed before the loss are not read again, rows staged but not committed are
written again by the new process.

The lost process may live on (a network partition rather than a dead machine): its token is
revoked first, so nothing it sends afterwards is staged or committed, and the new process
gets a token of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from patterns import wire

if TYPE_CHECKING:
    from patterns.engine.dataplane import DataPlane
    from patterns.engine.session import RunSession


def fresh_start(dataplane: DataPlane, session: RunSession, config: dict[str, Any],
                params: dict[str, Any], cancelled: bool,
                inline_limit: int) -> dict[str, Any] | None:
    """Revoke the lost process's token, roll ``session`` back to its last checkpoint and
    return the config of a fresh start: ``config`` with a new token and the run's first
    facts as of that checkpoint. None when the run must not start again: it was cancelled,
    or its final checkpoint (its whole work) is already committed."""
    dataplane.unregister(session)
    # (a new token and the staging dropped together, once a commit under way has landed or
    # not: a request of the lost process on its way stages and commits nothing after it)
    session.revoke()
    if cancelled or session.finished or session.closed:
        return None
    session.renew_requests()
    dataplane.register(session)
    fresh = {key: value for key, value in config.items() if key != "run_info"}
    fresh["token"] = session.token
    info = wire.encode({**session.run_info(), "parameters": params}).decode()
    if len(info) <= inline_limit:
        fresh["run_info"] = info
    return fresh
