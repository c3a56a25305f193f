"""State machine benchmark: one typed transition against a transitions Machine per object.

Figures, each beside its baseline measured in this same process:

- one typed transition (``ContentNode[Draft].publish``: machine check, new state, record,
  copy of the entity), median, vs building a transitions ``Machine`` for one object with
  the same graph (the design we avoid); target: at most 1/10 of the baseline;
- the run-time check alone (the machine's event table) vs transitions'
  ``Machine.get_transitions`` answering the same question;
- the size of one content node (tracemalloc, the node and what it owns), vs the size of a
  per-object ``Machine``; target: under 1 KB (an order must stay this light; the content
  node is the same shape);
- one typed order transition (``Order[Confirmed].pay``: rules, machine check, new state,
  record, copy), median, vs a transitions ``Machine`` per object with the order graph;
  target: at most 1/10 of the baseline;
- the size of one order (tracemalloc, with its ``Money`` total), vs the per-object
  ``Machine``; target: under 1 KB.

Run: ``python tools/bench/bench_state_machine.py``.
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from transitions import Machine

sys.path.insert(0, str(Path(__file__).parent))

from _report import Figure, emit, median, per_call_ns
from rustok_commerce import Money, Order, Pending
from rustok_content import CONTENT_MACHINE, ContentNode, Draft

BENCH = "state_machine"
NUMBER = 500  # calls per sample
REPEAT = 200  # samples
SIZE_SAMPLES = 2000  # objects allocated to measure the size of one
AT = datetime(2025, 1, 1, tzinfo=UTC)
TENANT = uuid4()

STATES = ["draft", "published", "archived"]
TRANSITIONS: list[dict[str, str | list[str]]] = [
    {"trigger": "publish", "source": "draft", "dest": "published"},
    {"trigger": "archive", "source": "published", "dest": "archived"},
    {"trigger": "restore", "source": "archived", "dest": "draft"},
    {"trigger": "update", "source": ["draft", "published"], "dest": "="},
]


ORDER_STATES = ["pending", "confirmed", "paid", "shipped", "delivered", "cancelled"]
ORDER_TRANSITIONS: list[dict[str, str | list[str]]] = [
    {"trigger": "confirm", "source": "pending", "dest": "confirmed"},
    {"trigger": "pay", "source": "confirmed", "dest": "paid"},
    {"trigger": "ship", "source": "paid", "dest": "shipped"},
    {"trigger": "deliver", "source": "shipped", "dest": "delivered"},
    {"trigger": "cancel", "source": ["pending", "confirmed"], "dest": "cancelled"},
    {"trigger": "cancel_with_refund", "source": "paid", "dest": "cancelled"},
]


class _Model:
    """What a per-object design would attach its Machine to."""


def _per_object_machine() -> object:
    model = _Model()
    Machine(
        model=model,
        states=STATES,
        transitions=TRANSITIONS,
        initial="draft",
        auto_transitions=False,
    )
    return model


def _per_object_order_machine() -> object:
    model = _Model()
    Machine(
        model=model,
        states=ORDER_STATES,
        transitions=ORDER_TRANSITIONS,
        initial="pending",
        auto_transitions=False,
    )
    return model


def _new_order(index: int) -> Order[Pending]:
    return Order.new_pending(
        tenant_id=TENANT,
        customer_id=uuid4(),
        total=Money.of(f"{index}.99", "EUR"),
        at=datetime.now(UTC),
    )


def _new_node(index: int) -> ContentNode[Draft]:
    return ContentNode.new_draft(
        tenant_id=TENANT,
        kind="article",
        title=f"Article number {index}",
        slug=f"article-{index}",
        author_id=uuid4(),
        at=datetime.now(UTC),
    )


def _bytes_per_object(make: Callable[[int], object]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [make(i) for i in range(SIZE_SAMPLES)]
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    pointers = sys.getsizeof(kept)  # the list holding them is not part of an object
    del kept
    return (after - before - pointers) / SIZE_SAMPLES


def main() -> None:
    draft = ContentNode.new_draft(
        tenant_id=TENANT, kind="article", title="Hello", slug="hello", at=AT
    )
    published = draft.publish(at=AT)
    assert published.version == 2  # the measured call does what it says

    transition = median(per_call_ns(lambda: draft.publish(at=AT), number=NUMBER, repeat=REPEAT))
    machine = median(per_call_ns(_per_object_machine, number=20, repeat=REPEAT))
    check = median(
        per_call_ns(
            lambda: CONTENT_MACHINE._lookup("publish", "draft"), number=NUMBER, repeat=REPEAT
        )
    )
    library = CONTENT_MACHINE.machine
    get_transitions = median(
        per_call_ns(
            lambda: library.get_transitions(trigger="publish", source="draft"),
            number=NUMBER,
            repeat=REPEAT,
        )
    )
    node_size = _bytes_per_object(_new_node)
    machine_size = _bytes_per_object(lambda i: _per_object_machine())

    confirmed = Order.new_pending(
        tenant_id=TENANT, customer_id=uuid4(), total=Money.of("49.90", "EUR"), at=AT
    ).confirm(at=AT)
    assert confirmed.pay("pi_1", "card", at=AT).version == 3
    order_transition = median(
        per_call_ns(lambda: confirmed.pay("pi_1", "card", at=AT), number=NUMBER, repeat=REPEAT)
    )
    order_machine = median(per_call_ns(_per_object_order_machine, number=20, repeat=REPEAT))
    order_size = _bytes_per_object(_new_order)
    order_machine_size = _bytes_per_object(lambda i: _per_object_order_machine())
    order_transition_us = order_transition / 1000

    transition_us = transition / 1000
    emit(
        [
            Figure(
                bench=BENCH,
                name="typed transition (median)",
                value=transition_us,
                unit="us",
                baseline_name="transitions Machine per object",
                baseline_value=machine / 1000,
                target="<= 0.1x",
                met=transition <= machine / 10,
            ),
            Figure(
                bench=BENCH,
                name="run-time check (median)",
                value=check / 1000,
                unit="us",
                baseline_name="Machine.get_transitions",
                baseline_value=get_transitions / 1000,
            ),
            Figure(
                bench=BENCH,
                name="one content node (tracemalloc)",
                value=node_size,
                unit="bytes",
                baseline_name="transitions Machine per object",
                baseline_value=machine_size,
                target="< 1024 bytes",
                met=node_size < 1024,
            ),
            Figure(
                bench=BENCH,
                name="typed order transition (median)",
                value=order_transition_us,
                unit="us",
                baseline_name="transitions Machine per order",
                baseline_value=order_machine / 1000,
                target="<= 0.1x",
                met=order_transition <= order_machine / 10,
            ),
            Figure(
                bench=BENCH,
                name="one order (tracemalloc)",
                value=order_size,
                unit="bytes",
                baseline_name="transitions Machine per order",
                baseline_value=order_machine_size,
                target="< 1024 bytes",
                met=order_size < 1024,
            ),
        ]
    )


if __name__ == "__main__":
    main()
