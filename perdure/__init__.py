"""Perdure: durable workflows for Python.

A workflow is a plain ``async def``; every durable operation inside it (a step, a clock read,
a random value) is journaled, so a run that dies with its process resumes on any worker
exactly where it stopped. While it runs, clients read what it publishes (events, streams),
ask it questions (requests) and complete the callbacks it waits for.
"""

from perdure.clock import Clock, SystemClock, VirtualClock
from perdure.engine.engine import Engine
from perdure.engine.handle import WorkflowHandle
from perdure.engine.sync import SyncEngine, SyncHandle
from perdure.errors import (
    CallbackAlreadyCompleted,
    CallbackFailed,
    CallbackNotFound,
    CallbackTimeout,
    Cancelled,
    ChildFailed,
    EventTimeout,
    InvalidConfiguration,
    LeaseLost,
    NonDeterminismError,
    NonRetryable,
    NotInWorkflow,
    PerdureError,
    RequestRejected,
    RequestTimeout,
    RunBlocked,
    RunCancelled,
    RunFinished,
    RunNotFound,
    SerializationError,
    SignalTimeout,
    StepFailed,
    StorageUnavailable,
    StreamClosed,
    UnknownWorkflowError,
    WorkflowFailed,
)
from perdure.flow.definitions import Limit, Queue, Rate
from perdure.flow.records import FlowReport, LimitState, QueueState
from perdure.records import ErrorInfo, JournalEntry, ResumeRecord, RunInfo, RunStatus
from perdure.retry import RetryPolicy
from perdure.workflow.callbacks import Callback, callback
from perdure.workflow.children import ChildHandle, start_child
from perdure.workflow.definitions import Step, Workflow, step, workflow
from perdure.workflow.events import set_event
from perdure.workflow.parallel import gather
from perdure.workflow.requests import Request, wait_for_request
from perdure.workflow.signals import wait_for_signal
from perdure.workflow.streams import Stream, stream
from perdure.workflow.timers import sleep, sleep_until
from perdure.workflow.values import now, random, run_id, step_key, uuid4

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "CallbackAlreadyCompleted",
    "CallbackFailed",
    "CallbackNotFound",
    "CallbackTimeout",
    "Cancelled",
    "ChildFailed",
    "ChildHandle",
    "Clock",
    "Engine",
    "ErrorInfo",
    "EventTimeout",
    "FlowReport",
    "InvalidConfiguration",
    "JournalEntry",
    "LeaseLost",
    "Limit",
    "LimitState",
    "NonDeterminismError",
    "NonRetryable",
    "NotInWorkflow",
    "PerdureError",
    "Queue",
    "QueueState",
    "Rate",
    "Request",
    "RequestRejected",
    "RequestTimeout",
    "ResumeRecord",
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
    "Stream",
    "StreamClosed",
    "SyncEngine",
    "SyncHandle",
    "SystemClock",
    "UnknownWorkflowError",
    "VirtualClock",
    "Workflow",
    "WorkflowFailed",
    "WorkflowHandle",
    "callback",
    "gather",
    "now",
    "random",
    "run_id",
    "set_event",
    "sleep",
    "sleep_until",
    "start_child",
    "step",
    "step_key",
    "stream",
    "uuid4",
    "wait_for_request",
    "wait_for_signal",
    "workflow",
]
