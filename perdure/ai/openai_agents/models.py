"""Model calls as steps: a ``Model`` wrapper and a ``ModelProvider`` that hands out wrapped models.

Inside a workflow each ``get_response`` is one Perdure step whose result is the SDK's
``ModelResponse`` as JSON (so the payload limit and blob offload apply); a replay returns the
journaled response without calling the model. Outside a workflow, and inside a step, the
wrapped model is called directly. A streamed call inside a workflow is made as one journaled
call: its events are the response's, after it completed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from agents.items import ModelResponse, TResponseStreamEvent
from agents.models.interface import Model, ModelProvider
from pydantic import TypeAdapter

from perdure.ai.openai_agents.order import expect_tool_calls
from perdure.ai.openai_agents.runtime import in_workflow, step_for

__all__ = ["DurableModel", "PerdureModelProvider"]

_RESPONSES: TypeAdapter[ModelResponse] = TypeAdapter(ModelResponse)


class DurableModel(Model):
    """A model whose every call inside a workflow is the Perdure step ``name``."""

    def __init__(self, model: Model, name: str) -> None:
        self.model = model
        self.name = name

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        if not in_workflow():
            return await self.model.get_response(*args, **kwargs)

        async def call() -> Any:
            response = await self.model.get_response(*args, **kwargs)
            return _RESPONSES.dump_python(response, mode="json")

        response = _RESPONSES.validate_python(await step_for(self.name)(call))
        expect_tool_calls(response, kwargs["tools"] if "tools" in kwargs else
                          args[3] if len(args) > 3 else None)
        return response

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[TResponseStreamEvent]:
        if not in_workflow():
            return self.model.stream_response(*args, **kwargs)
        raise NotImplementedError(
            "streamed model calls are not journaled yet: use Runner.run (not run_streamed) "
            "inside a Perdure workflow")


class PerdureModelProvider(ModelProvider):
    """Hands out the models of ``provider`` wrapped in :class:`DurableModel`, each call a step
    named ``openai_agents__model:{model name}``: ``RunConfig(model_provider=...)``."""

    def __init__(self, provider: ModelProvider) -> None:
        self.provider = provider

    def get_model(self, model_name: str | None) -> Model:
        model = self.provider.get_model(model_name)
        return DurableModel(model, f"openai_agents__model:{model_name or 'default'}")
