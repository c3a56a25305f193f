"""Mermaid ``stateDiagram-v2`` of a machine, read from its transitions ``Machine``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rustok_core.state_machine._guard import Guard
from rustok_core.state_machine._machine import StateMachine

if TYPE_CHECKING:
    from rustok_core.state_machine._entity import Entity
    from rustok_core.state_machine._state import State


def to_mermaid(subject: type[Entity[State]] | StateMachine) -> str:
    """Render an entity class's machine (or a machine) as a Mermaid ``stateDiagram-v2``.

    The diagram is generated from the transitions ``Machine`` itself: one arrow per
    (trigger, source) edge labelled with the trigger and, in brackets, its guard; an
    arrow from ``[*]`` into the initial state, and into ``[*]`` from every state that has
    no way out. States are shown by their class names, in declaration order.

    Example::

        print(to_mermaid(ContentNode))
    """
    machine = subject if isinstance(subject, StateMachine) else subject.state_machine
    label = {s.state_name: s.__name__ for s in machine.states}
    lines = ["stateDiagram-v2", f"    [*] --> {label[machine.initial.state_name]}"]
    has_exit: set[str] = set()
    for state in machine.states:
        source = state.state_name
        for trigger, event in machine.machine.events.items():
            for transition in event.transitions.get(source, []):
                text = trigger
                guards = [c.func for c in transition.conditions if isinstance(c.func, Guard)]
                if guards:
                    text += " [" + ", ".join(g.name for g in guards) + "]"
                dest = transition.dest or source
                lines.append(f"    {label[source]} --> {label[dest]}: {text}")
                if dest != source:
                    has_exit.add(source)
    lines.extend(
        f"    {label[s.state_name]} --> [*]" for s in machine.states if s.state_name not in has_exit
    )
    return "\n".join(lines) + "\n"
