"""Human in the loop: a run parks until a person approves (or denies) the agent's tool calls.

A tool declared with ``requires_approval=True`` ends ``agent.run(...)`` with
``DeferredToolRequests`` instead of running. :func:`wait_for_approvals` waits durably for the
decision -- a Perdure signal, so the run is parked as a row, holding no process, for as long as
the person takes -- and returns the ``DeferredToolResults`` to resume the agent with. The
approved tool then runs once, as a step of the resumed agent run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic_ai import DeferredToolRequests, DeferredToolResults, ToolApproved, ToolDenied

from perdure.workflow.signals import wait_for_signal

__all__ = ["wait_for_approvals"]


async def wait_for_approvals(requests: DeferredToolRequests, *, signal: str = "approvals",
                             timeout: timedelta | float | None = None) -> DeferredToolResults:
    """Wait for the signal ``signal`` deciding ``requests.approvals``; the results for the agent.

    The signal's payload is ``True`` or ``False`` (for every pending call), or a dict from
    tool call id to ``True``, ``False`` or a denial message (a string, shown to the model). A
    call the payload does not name is denied, and so is every call when the payload is neither
    (no side effect without an explicit approval; the model is told why). Raises
    ``SignalTimeout`` after ``timeout``.
    """
    payload: Any = await wait_for_signal(signal, timeout)
    decisions: dict[str, bool | ToolApproved | ToolDenied] = {}
    for call in requests.approvals:
        if isinstance(payload, bool):
            decision: Any = payload
        elif isinstance(payload, dict):
            decision = payload.get(call.tool_call_id, False)
        else:
            decision = (f"the approval (signal {signal!r}) was unreadable: {payload!r}; it must "
                        "be true, false or a dict of tool call ids")
        if isinstance(decision, str):
            decisions[call.tool_call_id] = ToolDenied(decision)
        else:
            decisions[call.tool_call_id] = bool(decision)
    return DeferredToolResults(approvals=decisions)
