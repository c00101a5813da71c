"""Durable Pydantic AI agents on Perdure (the ``perdure[pydantic-ai]`` extra).

``Agent(model, tools=[...], capabilities=[PerdureDurability()])``, then ``await agent.run(...)``
inside a ``@workflow``: each model request and each tool call is a Perdure step.
"""

from __future__ import annotations

try:
    import pydantic_ai  # noqa: F401
    from pydantic_ai.durable_exec import BaseDurabilityCapability  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    from perdure.errors import InvalidConfiguration

    raise InvalidConfiguration(
        "perdure.ai.pydantic_ai needs Pydantic AI with its durable-execution API: "
        "pip install 'perdure[pydantic-ai]'") from exc

from perdure.ai.pydantic_ai.approvals import wait_for_approvals
from perdure.ai.pydantic_ai.durability import TOOL_CONFIG_KEY, PerdureDurability
from perdure.ai.pydantic_ai.events import event_data
from perdure.ai.pydantic_ai.options import StepOptions

__all__ = ["TOOL_CONFIG_KEY", "PerdureDurability", "StepOptions", "event_data",
           "wait_for_approvals"]
