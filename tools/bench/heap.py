"""Heap accounting for ``tools/bench/memory.py``: what the objects of one running charger weigh.

Everything here reads the heap through public interfaces only: trio's task tree
(``trio.lowlevel.current_root_task``, ``Task.child_nurseries``, ``Nursery.child_tasks``,
``Task.coro``), the frames of the tasks' coroutines (``cr_frame.f_locals``, ``cr_await``) and
the garbage collector (``gc.get_objects``, ``gc.get_referents``); it never names a private
attribute of the simulator, so it keeps working when the simulator's classes are reshaped.

- :class:`Census`: every object the collector tracks, grouped by type: count and
  ``sys.getsizeof`` bytes, and what a run added to it. Untracked objects (str, bytes, int,
  float) are not in it: they are in the tracemalloc figures of ``memory.py``.
- :func:`charger_subtrees`: the task tree of a fleet: each charger's task (named ``charger ID``
  for the ids a ``Simulation`` lists) with its descendants.
- :func:`charger_objects`: a breadth-first walk of ``gc.get_referents`` from every charger's
  tasks at once; each object belongs to the charger that reaches it first, and within the charger
  reported (the last: it loses every tie, so it owns nothing shared) to the first of its main
  objects that reaches it: the objects its tasks hold in their frames (machine, connectors,
  channels, the WebSocket connection, ...), in the order of :data:`PRIORITY`. What none of them
  reaches is the tasks' own: coroutines, frames, closures. The walk never enters modules,
  module dictionaries, classes, code or tasks and nurseries outside the chargers.

Call the walkers from a Trio task (they read the running task tree) after ``gc.collect()``;
they allocate about 100 bytes per object walked, and block the event loop while they run.
"""

from __future__ import annotations

import gc
import statistics
import sys
import types
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import trio

BARRIER_TYPES: Final = (types.ModuleType, type, types.CodeType)
"""Objects the walk never enters: shared by every charger by construction."""
PRIORITY: Final = ("simulator.machines", "trio_websocket", "wsproto", "websockets", "simulator",
                   "trio")
"""The main objects of a charger, by the top of their type's module, in the order they claim
what they reach: the machine first, then the WebSocket connection, the actor's own objects
(its transport then holds what the connection does not), trio's channels and events."""


def type_name(obj: object) -> str:
    """``module.QualName`` of ``obj``'s type."""
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


@dataclass
class Census:
    """The objects the collector tracks, by type: how many and their ``sys.getsizeof`` bytes."""

    counts: Counter[str] = field(default_factory=Counter)
    sizes: Counter[str] = field(default_factory=Counter)

    @classmethod
    def take(cls) -> Census:
        """Count now (``gc.unfreeze()`` first, or the frozen objects are missing)."""
        census = cls()
        for obj in gc.get_objects():
            name = type_name(obj)
            census.counts[name] += 1
            census.sizes[name] += sys.getsizeof(obj)
        return census

    def growth(self, before: Census, top: int) -> tuple[list[dict[str, Any]], int, int]:
        """The ``top`` types by bytes gained since ``before``, and the total objects and bytes
        gained."""
        sizes, counts = self.sizes.copy(), self.counts.copy()
        sizes.subtract(before.sizes)
        counts.subtract(before.counts)
        rows = [{"type": name, "count": counts[name], "bytes": size}
                for name, size in sizes.most_common(top)]
        return rows, sum(counts.values()), sum(sizes.values())


def walk_tasks(task: trio.lowlevel.Task) -> Iterator[trio.lowlevel.Task]:
    """``task`` and its descendants."""
    yield task
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            yield from walk_tasks(child)


def charger_subtrees(identities: Iterable[str]) -> list[list[trio.lowlevel.Task]]:
    """The tasks of each running charger of ``identities`` (the task ``charger ID`` and its
    descendants), in the order of ``identities``."""
    names = {f"charger {identity}": index for index, identity in enumerate(identities)}
    root = trio.lowlevel.current_root_task()
    found = sorted((names[task.name], task)
                   for task in (walk_tasks(root) if root is not None else ())
                   if task.name in names)
    return [list(walk_tasks(task)) for _, task in found]


def coroutine_frames(task: trio.lowlevel.Task) -> Iterator[types.FrameType]:
    """The frames of ``task``'s coroutine chain, outermost first."""
    awaitable: Any = task.coro
    while awaitable is not None:
        frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "gi_frame", None)
        if frame is None:
            return
        yield frame
        awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "gi_yieldfrom",
                                                                     None)


def main_objects(tasks: Iterable[trio.lowlevel.Task]) -> list[tuple[str, object]]:
    """The objects a charger's tasks hold in their frames' locals, labelled ``Type (name)``,
    each once, in :data:`PRIORITY` order (objects of other packages are left out)."""
    found: dict[int, tuple[int, str, object]] = {}
    for task in tasks:
        for frame in coroutine_frames(task):
            for name, value in frame.f_locals.items():
                module = type(value).__module__
                rank = next((i for i, top in enumerate(PRIORITY)
                             if module == top or module.startswith(top + ".")), None)
                if (rank is None or id(value) in found
                        or isinstance(value, (*BARRIER_TYPES, trio.lowlevel.Task))):
                    continue  # (tasks have rows of their own)
                found[id(value)] = (rank, f"{type(value).__qualname__} ({name})", value)
    return [(label, value) for _, label, value in sorted(found.values(), key=lambda f: f[0])]


@dataclass
class ChargerHeap:
    """What :func:`charger_objects` found: bytes and objects per charger, and for the charger
    reported, per main object."""

    chargers: int = 0
    bytes_per_charger: list[int] = field(default_factory=list)
    objects_per_charger: list[int] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    """``{"object", "shallow", "bytes", "objects"}`` for each main object, then the tasks."""

    def median_bytes(self) -> float:
        return statistics.median(self.bytes_per_charger) if self.bytes_per_charger else 0.0


def charger_objects(identities: Iterable[str]) -> ChargerHeap:
    """Walk the heap from the tasks of every charger of ``identities`` at once (see the module
    docstring)."""
    subtrees = charger_subtrees(identities)
    result = ChargerHeap(chargers=len(subtrees))
    if not subtrees:
        return result
    inside = {id(task) for tasks in subtrees for task in tasks}
    inside |= {id(nursery) for tasks in subtrees for task in tasks
               for nursery in task.child_nurseries}
    stop = {id(vars(module)) for module in list(sys.modules.values())
            if isinstance(module, types.ModuleType)}
    stop.add(id(__builtins__))

    def blocked(obj: object) -> bool:
        if id(obj) in stop or isinstance(obj, BARRIER_TYPES):
            return True
        return isinstance(obj, trio.lowlevel.Task | trio.Nursery) and id(obj) not in inside

    owner: dict[int, int] = {}
    reported = len(subtrees) - 1
    mine: dict[int, object] = {}
    totals = [0] * len(subtrees)
    counts = [0] * len(subtrees)
    frontier: list[tuple[object, int]] = [(task, index) for index, tasks in enumerate(subtrees)
                                          for task in tasks]
    while frontier:
        reached: list[tuple[object, int]] = []
        for obj, index in frontier:
            if id(obj) in owner or blocked(obj):
                continue
            owner[id(obj)] = index
            totals[index] += sys.getsizeof(obj)
            counts[index] += 1
            if index == reported:
                mine[id(obj)] = obj
            reached.extend((ref, index) for ref in gc.get_referents(obj) if id(ref) not in owner)
        frontier = reached
    result.bytes_per_charger, result.objects_per_charger = totals, counts
    claimed: set[int] = set()

    def claim(root: object) -> tuple[int, int]:
        """Bytes and objects of what ``root`` reaches first (never through a task but its
        own: a channel or an event reaches the tasks waiting on it)."""
        size = objects = 0
        stack = [root]
        while stack:
            obj = stack.pop()
            if id(obj) in claimed or id(obj) not in mine or (
                    obj is not root and isinstance(obj, trio.lowlevel.Task)):
                continue
            claimed.add(id(obj))
            size += sys.getsizeof(obj)
            objects += 1
            stack.extend(gc.get_referents(obj))
        return size, objects

    rows = []
    for label, obj in main_objects(subtrees[reported]):
        if id(obj) in claimed or id(obj) not in mine:
            continue
        size, objects = claim(obj)
        rows.append({"object": label, "shallow": sys.getsizeof(obj), "bytes": size,
                     "objects": objects})
    result.rows = sorted(rows, key=lambda row: -row["bytes"])
    for task in subtrees[reported]:
        size, objects = claim(task)
        result.rows.append({"object": f"task {task.name}", "shallow": sys.getsizeof(task),
                            "bytes": size, "objects": objects})
    rest = [obj for key, obj in mine.items() if key not in claimed]
    if rest:
        result.rows.append({"object": "(reached otherwise)", "shallow": 0,
                            "bytes": sum(sys.getsizeof(obj) for obj in rest),
                            "objects": len(rest)})
    return result
