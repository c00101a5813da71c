"""Perdure: durable workflows for Python.

A workflow is a plain ``async def``; every durable operation inside it (a step, a clock read,
a random value) is journaled, so a run that dies with its process resumes on any worker
exactly where it stopped. While it runs, clients read what it publishes (events, streams),
ask it questions (requests) and complete the callbacks it waits for. Schedules start runs on
cron expressions.
"""

from perdure.clock import Clock, SystemClock, VirtualClock
from perdure.codec.compression import Compressed
from perdure.codec.encryption import Encrypted
from perdure.codec.envelope import PayloadCodec
from perdure.engine.engine import Engine
from perdure.engine.handle import WorkflowHandle
from perdure.engine.outbox import Outbox
from perdure.engine.serverless import RunOnceSummary, TickSummary
from perdure.engine.sync import SyncEngine, SyncHandle
from perdure.engine.webhook import WebhookSink, verify_webhook
from perdure.errors import (
    BlobMissing,
    CallbackAlreadyCompleted,
    CallbackFailed,
    CallbackNotFound,
    CallbackTimeout,
    Cancelled,
    ChildFailed,
    DecryptionError,
    EventTimeout,
    InvalidConfiguration,
    InvalidCursor,
    InvalidSignature,
    JournalFormatError,
    LeaseLost,
    NonDeterminismError,
    NonRetryable,
    NotInWorkflow,
    PayloadTooLarge,
    PayloadUnavailable,
    PerdureError,
    ReplayMismatch,
    RequestRejected,
    RequestTimeout,
    RunBlocked,
    RunCancelled,
    RunFinished,
    RunNotFound,
    ScheduleNotFound,
    SerializationError,
    SignalTimeout,
    StepFailed,
    StorageUnavailable,
    StreamClosed,
    UnknownWorkflowError,
    WebhookRejected,
    WorkflowFailed,
)
from perdure.flow.definitions import Limit, Queue, Rate
from perdure.flow.records import FlowReport, LimitState, QueueState
from perdure.flow.schedules import Overlap, Schedule, ScheduleInfo
from perdure.observe.health import Readiness
from perdure.records import (
    Activity,
    DeadLetter,
    ErrorInfo,
    Incarnation,
    JournalEntry,
    OutboxEvent,
    OutboxStats,
    ResumeRecord,
    RunInfo,
    RunPage,
    RunStatus,
    WorkerInfo,
)
from perdure.retry import RetryPolicy
from perdure.storage.blobs import BlobStore
from perdure.storage.directory import DirectoryBlobs
from perdure.workflow.callbacks import Callback, callback
from perdure.workflow.children import ChildHandle, start_child
from perdure.workflow.continuation import ContinueAsNew, journal_size
from perdure.workflow.definitions import Step, Workflow, step, workflow
from perdure.workflow.events import set_event
from perdure.workflow.outbox import emit
from perdure.workflow.parallel import gather
from perdure.workflow.patches import deprecate_patch, patched
from perdure.workflow.requests import Request, wait_for_request
from perdure.workflow.signals import wait_for_signal
from perdure.workflow.streams import Stream, stream
from perdure.workflow.tags import set_tags
from perdure.workflow.timers import sleep, sleep_until
from perdure.workflow.values import now, random, run_id, step_key, uuid4

__version__ = "0.1.0"

__all__ = [
    "Activity",
    "BlobMissing",
    "BlobStore",
    "Callback",
    "CallbackAlreadyCompleted",
    "CallbackFailed",
    "CallbackNotFound",
    "CallbackTimeout",
    "Cancelled",
    "ChildFailed",
    "ChildHandle",
    "Clock",
    "Compressed",
    "ContinueAsNew",
    "DeadLetter",
    "DecryptionError",
    "DirectoryBlobs",
    "Encrypted",
    "Engine",
    "ErrorInfo",
    "EventTimeout",
    "Incarnation",
    "FlowReport",
    "InvalidConfiguration",
    "InvalidCursor",
    "InvalidSignature",
    "JournalEntry",
    "JournalFormatError",
    "LeaseLost",
    "Limit",
    "LimitState",
    "NonDeterminismError",
    "NonRetryable",
    "NotInWorkflow",
    "Outbox",
    "OutboxEvent",
    "OutboxStats",
    "Overlap",
    "PayloadCodec",
    "PayloadTooLarge",
    "PayloadUnavailable",
    "PerdureError",
    "Readiness",
    "ReplayMismatch",
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
    "RunOnceSummary",
    "RunNotFound",
    "RunPage",
    "RunStatus",
    "Schedule",
    "ScheduleInfo",
    "ScheduleNotFound",
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
    "TickSummary",
    "UnknownWorkflowError",
    "VirtualClock",
    "WebhookRejected",
    "WebhookSink",
    "WorkerInfo",
    "Workflow",
    "WorkflowFailed",
    "WorkflowHandle",
    "callback",
    "deprecate_patch",
    "emit",
    "gather",
    "journal_size",
    "now",
    "patched",
    "random",
    "run_id",
    "set_event",
    "set_tags",
    "sleep",
    "sleep_until",
    "start_child",
    "step",
    "step_key",
    "stream",
    "uuid4",
    "verify_webhook",
    "wait_for_request",
    "wait_for_signal",
    "workflow",
]
