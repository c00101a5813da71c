"""Perdure: durable workflows for Python.

A workflow is a plain ``async def``; every durable operation inside it (a step, a clock read,
a random value) is journaled, so a run that dies with its process resumes on any worker
exactly where it stopped.
"""

from perdure.clock import Clock, SystemClock, VirtualClock
from perdure.engine.engine import Engine
from perdure.engine.handle import WorkflowHandle
from perdure.engine.outbox import Outbox
from perdure.engine.sync import SyncEngine, SyncHandle
from perdure.engine.webhook import WebhookSink, verify_webhook
from perdure.errors import (
    Cancelled,
    ChildFailed,
    InvalidConfiguration,
    InvalidSignature,
    LeaseLost,
    NonDeterminismError,
    NonRetryable,
    NotInWorkflow,
    PerdureError,
    RunBlocked,
    RunCancelled,
    RunFinished,
    RunNotFound,
    SerializationError,
    SignalTimeout,
    StepFailed,
    StorageUnavailable,
    UnknownWorkflowError,
    WebhookRejected,
    WorkflowFailed,
)
from perdure.records import (
    DeadLetter,
    ErrorInfo,
    JournalEntry,
    OutboxEvent,
    OutboxStats,
    RunInfo,
    RunStatus,
)
from perdure.retry import RetryPolicy
from perdure.workflow.children import ChildHandle, start_child
from perdure.workflow.definitions import Step, Workflow, step, workflow
from perdure.workflow.outbox import emit
from perdure.workflow.parallel import gather
from perdure.workflow.signals import wait_for_signal
from perdure.workflow.timers import sleep, sleep_until
from perdure.workflow.values import now, random, run_id, step_key, uuid4

__version__ = "0.1.0"

__all__ = [
    "Cancelled",
    "ChildFailed",
    "ChildHandle",
    "Clock",
    "DeadLetter",
    "Engine",
    "ErrorInfo",
    "InvalidConfiguration",
    "InvalidSignature",
    "JournalEntry",
    "LeaseLost",
    "NonDeterminismError",
    "NonRetryable",
    "NotInWorkflow",
    "Outbox",
    "OutboxEvent",
    "OutboxStats",
    "PerdureError",
    "RetryPolicy",
    "RunBlocked",
    "RunCancelled",
    "RunFinished",
    "RunInfo",
    "RunNotFound",
    "RunStatus",
    "SerializationError",
    "SignalTimeout",
    "Step",
    "StepFailed",
    "StorageUnavailable",
    "SyncEngine",
    "SyncHandle",
    "SystemClock",
    "UnknownWorkflowError",
    "VirtualClock",
    "WebhookRejected",
    "WebhookSink",
    "Workflow",
    "WorkflowFailed",
    "WorkflowHandle",
    "emit",
    "gather",
    "now",
    "random",
    "run_id",
    "sleep",
    "sleep_until",
    "start_child",
    "step",
    "step_key",
    "uuid4",
    "verify_webhook",
    "wait_for_signal",
    "workflow",
]
