"""The demo's application code: an order-fulfilment saga, written as a plain ``async def``.

    reserve_inventory  ->  charge_payment  ->  create_shipment  ->  send_confirmation
    (undo: release)        (undo: refund)

Each step's side effect is recorded in an external ledger (see ``demo/ledger.py``) so the demo
can count how often it *really* executed. The steps take some tens of milliseconds, like calls
to real services, so that killing a worker lands in the middle of them.

Two things go wrong on purpose, deterministically:

* about 1 order in 8 is addressed to a place no courier serves: ``create_shipment`` raises
  ``perdure.NonRetryable``, the run fails, and Perdure runs the saga's compensations
  (refund, then release) in reverse order;
* the payment gateway times out on the first call for cards from "SlowBank"; the step's
  ``RetryPolicy`` retries it after a short back-off and the second attempt succeeds.

Run a worker for these workflows yourself with::

    perdure worker demo.orders:engine
"""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass
from decimal import Decimal

import perdure
from demo import ledger
from perdure import Engine, NonRetryable, RetryPolicy, step, workflow

__all__ = [
    "Fulfilment",
    "Order",
    "Receipt",
    "Reservation",
    "Shipment",
    "charge_payment",
    "create_shipment",
    "engine",
    "fulfil_order",
    "make_orders",
    "release_inventory",
    "refund_payment",
    "reserve_inventory",
    "send_confirmation",
]

# -- the data: plain dataclasses, journaled with their types (Decimal stays Decimal) ---------


@dataclass(frozen=True)
class Order:
    id: str
    customer: str
    sku: str
    quantity: int
    amount: Decimal
    card: str
    address: str


@dataclass(frozen=True)
class Reservation:
    order_id: str
    reservation_id: str


@dataclass(frozen=True)
class Receipt:
    order_id: str
    amount: Decimal
    charge_id: str


@dataclass(frozen=True)
class Shipment:
    order_id: str
    tracking_number: str


@dataclass(frozen=True)
class Fulfilment:
    """What a completed run returns."""

    order_id: str
    reservation_id: str
    charge_id: str
    tracking_number: str
    confirmation_id: str


SLOW_BANK = "slowbank"  # the payment gateway times out on the first call for these cards
UNDELIVERABLE = "1 Sunken Road, Atlantis"  # no courier delivers here


def make_orders(n: int) -> list[Order]:
    """``n`` orders ``order-001``...; every 8th cannot be shipped, every 3rd has a slow bank."""
    skus = ["kettle", "teapot", "mug", "grinder"]
    return [
        Order(
            id=f"order-{i:03d}",
            customer=f"customer-{i:03d}",
            sku=skus[i % len(skus)],
            quantity=1 + i % 3,
            amount=Decimal(f"{10 + i}.{i % 100:02d}"),
            card=f"{SLOW_BANK}-visa" if i % 3 == 2 else "bigbank-visa",
            address=UNDELIVERABLE if i % 8 == 6 else f"{i} High Street, Springfield",
        )
        for i in range(1, n + 1)
    ]


# -- talking to the outside world --------------------------------------------------------------


async def call_service(effect: str) -> str:
    """Simulate a call to an external service whose side effect is ``effect``.

    The request takes a while to arrive, the service performs the effect (a ledger row, with
    this step's idempotency key), and the response takes a while to come back. A worker killed
    after the effect but before Perdure journals the step's result makes the next worker run
    the step again: steps are at-least-once. The idempotency key is what lets a real service
    (a payment API, a mailer) recognise the repeat and perform the effect only once.
    """
    await asyncio.sleep(random.uniform(0.02, 0.06))  # the request travels
    key = ledger.record(effect)  # the side effect happens, out there, durably
    await asyncio.sleep(random.uniform(0.01, 0.03))  # the response travels back
    return key


# -- the steps ---------------------------------------------------------------------------------


async def release_inventory(order: Order, result: Reservation) -> None:
    """Compensation of ``reserve_inventory``: put the stock back."""
    await call_service("release_inventory")


@step(compensate=release_inventory)
async def reserve_inventory(order: Order) -> Reservation:
    key = await call_service("reserve_inventory")
    return Reservation(order.id, reservation_id=f"res-{key}")


async def refund_payment(order: Order, result: Receipt) -> None:
    """Compensation of ``charge_payment``: it receives the charge's receipt as ``result=``."""
    await call_service("refund_payment")


# A short back-off so the retry is visible within the demo (the default starts at 1 s).
GATEWAY_RETRY = RetryPolicy(max_attempts=3, initial_delay=0.05, jitter=0.0)


@step(compensate=refund_payment, retry=GATEWAY_RETRY)
async def charge_payment(order: Order) -> Receipt:
    if order.card.startswith(SLOW_BANK) and ledger.first_call(perdure.step_key()):
        await asyncio.sleep(0.03)
        raise ConnectionError("payment gateway timed out")  # retried: same key next time
    key = await call_service("charge_payment")
    return Receipt(order.id, order.amount, charge_id=f"ch-{key}")


@step
async def create_shipment(order: Order) -> Shipment:
    if order.address == UNDELIVERABLE:
        # Retrying cannot fix an address: fail the step at once, which fails the run and
        # makes Perdure compensate the steps that completed, newest first.
        raise NonRetryable(f"no courier delivers to {order.address!r}")
    key = await call_service("create_shipment")
    return Shipment(order.id, tracking_number=f"trk-{key}")


@step
async def send_confirmation(order: Order, shipment: Shipment) -> str:
    key = await call_service("send_confirmation")
    return f"mail-{key}"


# -- the workflow: ordinary code; every step call is journaled ---------------------------------


@workflow(version="1")
async def fulfil_order(order: Order) -> Fulfilment:
    reservation = await reserve_inventory(order)
    receipt = await charge_payment(order)
    shipment = await create_shipment(order)
    confirmation = await send_confirmation(order, shipment)
    return Fulfilment(order.id, reservation.reservation_id, receipt.charge_id,
                      shipment.tracking_number, confirmation)


# -- the engine: what `perdure worker demo.orders:engine` runs ---------------------------------

DATABASE_URL = os.environ.get("PERDURE_DATABASE_URL", "sqlite:///demo-data/perdure.db")
if DATABASE_URL == "sqlite:///demo-data/perdure.db":
    os.makedirs("demo-data", exist_ok=True)  # so a worker can start before `python -m demo`

engine = Engine(DATABASE_URL, workflows=[fulfil_order])
