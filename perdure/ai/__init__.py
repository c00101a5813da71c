"""Durable AI agents: agent frameworks whose model calls and tool calls run as Perdure steps.

Each framework has its own sub-package, imported only by the user who asks for it, and its own
extra: ``perdure.ai.pydantic_ai`` (``perdure[pydantic-ai]``) and ``perdure.ai.openai_agents``
(``perdure[openai-agents]``). This layer uses only what runs inside a workflow
(``perdure.workflow``); nothing below it imports it.
"""
