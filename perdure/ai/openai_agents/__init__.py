"""Durable OpenAI Agents SDK agents on Perdure (the ``perdure[openai-agents]`` extra).

``await Runner.run(durable(agent), prompt)`` inside a ``@workflow``: each model call and each
function tool call of the agent (and of every agent it hands off to) is a Perdure step.
"""

from __future__ import annotations

try:
    import agents  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    from perdure.errors import InvalidConfiguration

    raise InvalidConfiguration(
        "perdure.ai.openai_agents needs the OpenAI Agents SDK: "
        "pip install 'perdure[openai-agents]'") from exc

from perdure.ai.openai_agents.models import DurableModel, PerdureModelProvider
from perdure.ai.openai_agents.wrapping import durable

__all__ = ["DurableModel", "PerdureModelProvider", "durable"]
