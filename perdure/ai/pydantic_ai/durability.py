"""``PerdureDurability``: the Pydantic AI capability that makes an agent's run durable in Perdure.

Built on Pydantic AI's public durable-execution extension point
(``pydantic_ai.durable_exec.BaseDurabilityCapability`` with a ``CallableOperationBackend``): the
base wraps the agent's model and toolsets and hands every model request, tool call and tool
argument validation to :class:`~perdure.ai.pydantic_ai.backend.PerdureOperationBackend` as one
named body, which runs it as a Perdure step. Inside a running workflow (and outside any step)
the agent is durable; anywhere else the capability steps aside and the agent is plain
Pydantic AI.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from weakref import WeakKeyDictionary

from pydantic_ai.durable_exec import (
    JSON_CODEC,
    BaseDurabilityCapability,
    DurabilityEngineSpec,
    DurableOperationId,
    JournalOperationNamer,
    RoleBasedOperationConfig,
)
from pydantic_ai.messages import AgentStreamEvent
from pydantic_ai.models import Model
from pydantic_ai.tools import AgentDepsT, RunContext

from perdure.ai.pydantic_ai.backend import PerdureOperationBackend, Unencodable
from perdure.ai.pydantic_ai.events import EventWriter, LiveWriter
from perdure.ai.pydantic_ai.options import StepOptions, checked
from perdure.workflow.context import RunContext as PerdureRun
from perdure.workflow.scope import active_run, active_step
from perdure.workflow.values import now

__all__ = ["PerdureDurability"]

#: the tool-metadata key of per-tool step options: ``metadata={"perdure": StepOptions(...)}``
#: (or ``{"perdure": False}`` to run the tool inline, not as a step)
TOOL_CONFIG_KEY = "perdure"


#: agent runs started so far by each workflow execution (a replay counts again from zero)
_agent_runs: WeakKeyDictionary[PerdureRun, dict[str, int]] = WeakKeyDictionary()


def _unencodable(exc: Exception) -> BaseException:
    return Unencodable(f"the result cannot be encoded as JSON: {exc}")


def _run_clock() -> datetime:
    return now() if _in_workflow() else datetime.now(UTC)


def _in_workflow() -> bool:
    """Inside a running workflow's own code (not inside one of its steps)."""
    return active_run.get() is not None and active_step.get() is None


@dataclass(init=False, kw_only=True)
class PerdureDurability(BaseDurabilityCapability[AgentDepsT]):
    """Make an agent durable in Perdure: attach it, then ``await agent.run(...)`` in a workflow.

    ``agent = Agent(model, name="travel", tools=[...], capabilities=[PerdureDurability()])``.
    Each model request is a step named ``{agent}__model.request`` (``.request_stream`` when
    streamed), each tool call a step named ``{agent}__function_toolset__{toolset}.call_tool:{tool}``
    (the agent's own tools are toolset ``<agent>``): the names are journaled, so renaming the
    agent, a toolset or a tool blocks the runs that are under way (an operator deploys the old
    name or resumes them) instead of mixing histories.

    ``model`` and ``tool`` are the step options of every model request and every tool call;
    ``tools`` maps a tool name to its own options (tool metadata ``{"perdure": {...}}`` takes
    precedence; ``{"perdure": False}`` runs that tool inline, not as a step). ``stream`` names a
    Perdure stream that receives every agent event (the parts of each model response once its
    step completed, tool calls and results) exactly once, in order, for
    ``handle.read_stream(stream)``. ``live_stream`` names another that receives each streamed
    model request's events (the deltas) live, from inside its step: at least once, each
    attempt opened by a ``model_request_start`` item whose ``key`` (the step key) repeats when
    the step runs again -- the mark to drop what followed the earlier one.
    """

    engine_spec = DurabilityEngineSpec(
        engine_name="Perdure",
        durable_unit_noun="step",
        durable_unit_plural="steps",
        durable_container_noun="workflow",
        # Perdure journals JSON text: values are reduced to JSON inside the step (a value that
        # cannot be is a failure of that step, not a corrupt journal row).
        codec=JSON_CODEC,
        serialization_failure=_unencodable,
        wrapped_toolset_kinds=frozenset({"function", "mcp", "dynamic"}),
        toolset_lifecycles={"function": "enter-always", "mcp": "enter-in-durable-unit",
                            "dynamic": "enter-never"},
        tool_call_result_upgrade_lenient=False,
        journal_discovery=True,
        # A step's sequence number is taken when it is called; tool calls run one after the
        # other so that their numbers are the same on every replay.
        sequential_tools_in_durable_context=True,
        tool_config_key=TOOL_CONFIG_KEY,
    )

    def __init__(self, *, name: str | None = None, models: Mapping[str, Model] | None = None,
                 model: StepOptions | None = None, tool: StepOptions | None = None,
                 tools: Mapping[str, StepOptions] | None = None,
                 stream: str | None = None, live_stream: str | None = None) -> None:
        # The handler runs inside each streamed model request's step (the base class hands it
        # the model's events live there); workflow-side events are written by
        # wrap_run_event_stream below, never through it.
        super().__init__(models=models, name=name,
                         event_stream_handler=None if live_stream is None
                         else LiveWriter(live_stream))
        self._model_options = checked(model or {}, "model requests")
        self._tool_options = checked(tool or {}, "tool calls")
        self._per_tool = {tool_name: checked(options, f"tool {tool_name!r}")
                          for tool_name, options in (tools or {}).items()}
        self._events = EventWriter(stream) if stream is not None else None
        self._backend: PerdureOperationBackend | None = None

    def _bind_to_agent(self, agent: Any) -> None:
        # The bound copy names its steps after its own agent: never reuse a backend (and its
        # namer) copied from the capability it was bound from.
        self._backend = None
        super()._bind_to_agent(agent)

    # --- where the agent runs ---

    @property
    def in_durable_context(self) -> bool:
        return _in_workflow()

    def get_default_run_id(self) -> str | None:
        """``RUN:agent:N``: the Nth agent run of this workflow run, the same on every replay."""
        if not _in_workflow():
            return None
        ctx = active_run.get()
        assert isinstance(ctx, PerdureRun)
        counts = _agent_runs.setdefault(ctx, {})
        index = counts.get(self.name, 0)
        counts[self.name] = index + 1
        return f"{ctx.run_id}:{self.name}:{index}"

    def get_default_conversation_id(self, run_id: str) -> str | None:
        """The workflow run's id: one workflow run is one conversation (see the README)."""
        if not _in_workflow():
            return None
        ctx = active_run.get()
        assert isinstance(ctx, PerdureRun)
        return ctx.run_id

    def get_run_clock(self) -> Callable[[], datetime] | None:
        """In the workflow, ``perdure.now()`` (journaled: a replay reads the same time, so an
        ``agent.run(timeout=...)`` keeps its deadline); elsewhere (inside a step) the system's."""
        return _run_clock if _in_workflow() else None

    async def get_run_start_time(self, run_id: str) -> datetime | None:
        return now() if _in_workflow() else None

    # --- the steps ---

    def get_durable_operation_backend(self) -> PerdureOperationBackend:
        if self._backend is None:
            self._backend = PerdureOperationBackend(
                namer=JournalOperationNamer(self.name),
                config=RoleBasedOperationConfig(
                    model=self._model_options, event=StepOptions(), capability=StepOptions(),
                    tool=self._tool_options, resolve_tool=self._tool_config))
        return self._backend

    def _tool_config(self, operation_id: DurableOperationId, tool: object | None,
                     tool_name: str) -> StepOptions | Literal[False]:
        base: dict[str, Any] = dict(self._tool_options)
        base.update(self._per_tool.get(tool_name, {}))
        metadata = getattr(getattr(tool, "tool_def", None), "metadata", None)
        if isinstance(metadata, Mapping) and TOOL_CONFIG_KEY in metadata:
            own = metadata[TOOL_CONFIG_KEY]
            if own is False:
                return False
            base.update(checked(own, f"tool {tool_name!r}"))
        return checked(base, f"tool {tool_name!r}")

    # --- events ---

    @property
    def has_wrap_run_event_stream(self) -> bool:
        # True makes the agent stream its model requests (so a live stream gets deltas).
        return (self._events is not None or self._event_stream_handler is not None) \
            and _in_workflow()

    async def wrap_run_event_stream(self, ctx: RunContext[AgentDepsT], *,
                                    stream: AsyncIterable[AgentStreamEvent]
                                    ) -> AsyncIterable[AgentStreamEvent]:
        if self._events is None or not _in_workflow():
            async for event in stream:
                yield event
            return
        async for event in stream:
            await self._events.write(event)
            yield event
