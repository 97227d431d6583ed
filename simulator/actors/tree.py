"""The live actor tree: every nursery and task under a root task, with the charger each
serves, what it waits on, and each charger supervisor's restarts and crashes.

Built from trio's public introspection only (``Task.child_nurseries``, ``Nursery.child_tasks``,
``Task.name``, ``Task.iter_await_frames``). :class:`TreeBuilder` walks once, synchronously
(:meth:`~TreeBuilder.node`: a consistent snapshot) or with a checkpoint every
:data:`TREE_STEP` tasks (:meth:`~TreeBuilder.node_stepwise`: the fleet runs on meanwhile).
``simulator.simulation.Simulation.tree`` is the way in.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from types import CodeType, FrameType
from typing import Final

import msgspec
import trio

from simulator.actors.charger import ChargerControl, CrashRecord


class Supervision(msgspec.Struct, frozen=True):
    """What a charger's supervisor knows: how many times it has restarted the charger and its
    last crashes (oldest first, at most ``CRASHES_KEPT``; ``t`` in seconds since the run
    started)."""

    charger: str
    restarts: int
    crashes: tuple[CrashRecord, ...] = ()


class TaskNode(msgspec.Struct, frozen=True):
    """One task of the live actor tree: its ``name``, the tasks of its nurseries
    (``children``), the ``charger`` it serves (None: the fleet's own tasks), what it waits on
    (``waits_on``: ``function (file:line)`` of the innermost frame of its await stack outside
    trio, then the trio call it waits in; None for the task that builds the tree, which is
    running) and, for a charger's supervisor task, its :class:`Supervision`."""

    name: str
    children: tuple[TaskNode, ...] = ()
    kind: str = "task"
    charger: str | None = None
    waits_on: str | None = None
    supervisor: Supervision | None = None



CHARGER_TASKS: Final = ("charger ", "link ", "connector ", "transfer ")
"""Name prefixes of the tasks that serve one charger: the prefix, then the charger's id (then,
for some, more words: ``connector CP-1/2``, ``transfer CP-1 upload``). Their unnamed subtasks
serve the same charger."""

SUPERVISOR_TASK: Final = "charger "
"""The name prefix of a charger's supervisor task (``charger CP-1``: ``supervise_charger``)."""

TREE_STEP: Final = 500
"""Tasks :meth:`TreeBuilder.node_stepwise` looks at between two checkpoints."""


class TreeBuilder:
    """One walk over the task tree under a root, keeping the tasks that serve ``only`` (None:
    every task); crash times count from ``t0``. Remembers what it found out
    about each code object (whether it is trio's, where it is), as most tasks run the same few
    functions."""

    def __init__(self, controls: Mapping[str, ChargerControl], current: trio.lowlevel.Task,
                 only: str | None, t0: float) -> None:
        self._controls = controls
        self._t0 = t0
        self._current = current
        self._only = only
        self._trio: dict[CodeType, bool] = {}
        self._where: dict[CodeType, str] = {}
        self._seen = 0

    def node(self, task: trio.lowlevel.Task, serves: str | None) -> TaskNode | None:
        """``task``'s node and those below it (None: filtered out)."""
        charger = self._charger(task, serves)
        if self._only is not None and charger not in (None, self._only):
            return None
        children = tuple(
            node for nursery in task.child_nurseries for child in nursery.child_tasks
            if (node := self.node(child, charger)) is not None
        )
        return self._make(task, serves, charger, children)

    async def node_stepwise(self, task: trio.lowlevel.Task,
                            serves: str | None) -> TaskNode | None:
        """:meth:`node`, with a checkpoint every :data:`TREE_STEP` tasks."""
        self._seen += 1
        if self._seen % TREE_STEP == 0:
            await trio.lowlevel.checkpoint()
        charger = self._charger(task, serves)
        if self._only is not None and charger not in (None, self._only):
            return None
        children: list[TaskNode] = []
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                if (node := await self.node_stepwise(child, charger)) is not None:
                    children.append(node)
        return self._make(task, serves, charger, tuple(children))

    def _charger(self, task: trio.lowlevel.Task, serves: str | None) -> str | None:
        return serves if serves is not None else _charger_named(task.name, self._controls)

    def _make(self, task: trio.lowlevel.Task, serves: str | None, charger: str | None,
              children: tuple[TaskNode, ...]) -> TaskNode | None:
        if self._only is not None and charger is None and not children:
            return None
        name = task.name
        supervisor = None
        if serves is None and charger is not None and name == SUPERVISOR_TASK + charger:
            control = self._controls[charger]
            crashes = tuple(msgspec.structs.replace(crash, t=crash.t - self._t0)
                            for crash in control.crashes)
            supervisor = Supervision(charger=charger, restarts=control.restarts, crashes=crashes)
        return TaskNode(
            name=name, children=children, charger=charger,
            waits_on=None if task is self._current else self._waits_on(task),
            supervisor=supervisor,
        )

    def _waits_on(self, task: trio.lowlevel.Task) -> str | None:
        """``function (file:line)`` of the innermost frame of ``task``'s await stack that is
        not trio's, then ``-> trio <function>`` for the trio call it waits in (if any)."""
        inner: tuple[FrameType, int] | None = None
        callee: CodeType | None = None
        for frame, line in task.iter_await_frames():
            code = frame.f_code
            of_trio = self._trio.get(code)
            if of_trio is None:
                of_trio = self._trio[code] = _is_trio(frame)
            if not of_trio:
                inner, callee = (frame, line), None
            elif callee is None and inner is not None:
                callee = code
        if inner is None:
            return None
        frame, line = inner
        where = self._where.get(frame.f_code)
        if where is None:
            where = self._where[frame.f_code] = \
                f"{frame.f_code.co_qualname} ({_file_of(frame)}"
        return f"{where}:{line})" + ("" if callee is None else f" -> trio {callee.co_qualname}")


def _charger_named(name: str, known: Mapping[str, object]) -> str | None:
    """The charger a task named ``name`` serves, by :data:`CHARGER_TASKS` (None: not one)."""
    for prefix in CHARGER_TASKS:
        if name.startswith(prefix):
            candidate = name[len(prefix):]
            while candidate:  # the longest known id before a space or a slash
                if candidate in known:
                    return candidate
                cut = max(candidate.rfind(" "), candidate.rfind("/"))
                if cut <= 0:
                    break
                candidate = candidate[:cut]
    return None


def _is_trio(frame: FrameType) -> bool:
    module = frame.f_globals.get("__name__", "")
    return isinstance(module, str) and (module == "trio" or module.startswith("trio."))


def _file_of(frame: FrameType) -> str:
    """The frame's file from its top package down (``simulator/actors/fleet.py``)."""
    module = frame.f_globals.get("__name__")
    parts = PurePath(frame.f_code.co_filename).parts
    depth = len(module.split(".")) if isinstance(module, str) and module else 1
    if parts and parts[-1] == "__init__.py":
        depth += 1
    return "/".join(parts[-depth:])


__all__ = ["CHARGER_TASKS", "SUPERVISOR_TASK", "TREE_STEP", "Supervision", "TaskNode",
           "TreeBuilder"]
