"""Size and time accounting for the expression interpreter (:mod:`eas_runtime.jobs._interpreter`).

The size of a value is counted deeply, in *items*: a string counts its characters, a list,
tuple or dict its members plus the size of each member (keys included), an integer wider than
64 bits about its number of decimal digits, any other value nothing beyond its place. A member
reached twice is counted twice: ``[[0] * 100000] * 1000`` is 100,001,000 items although it
holds two lists, because that is what printing, storing or concatenating it costs. The count of
a value is therefore an upper bound of the work and memory of any operation that walks it, and
about the length of its text (25 characters per item at most, for lists of floats).

An operation that makes a value predicts its size from its operands and is refused before it
runs when the prediction passes :data:`MAX_ITEMS`; one whose size cannot be predicted is
linear in its operands and is measured after. Each evaluation may also make at most
:data:`MAX_EVALUATION_ITEMS` items in all, which bounds its memory and time (deterministically;
the wall-clock deadline, checked inside every loop here, is the backstop).
"""
from __future__ import annotations

import time
from typing import Any

MAX_SECONDS = 2.0
#: Items (characters, members) of one value: every intermediate value and every result.
MAX_ITEMS = 100_000
#: Items made by one evaluation in all (the sum of the sizes of the values it made).
MAX_EVALUATION_ITEMS = 1_000_000
MAX_INT_BITS = 100_000
_SMALL_INT_BITS = 64
_TICK = 4096                     # items walked between two looks at the clock

_CONTAINERS = (list, tuple, dict)
_SCALARS = (float, bool, type(None))
_INTS = {int, bool}
_DATA = {str, int, float, bool, type(None)}
_ITEMS = "characters and list or dict members, nested ones counted each time they are reached"


class Fail(Exception):
    """Reason an evaluation failed (wrapped into ExpressionError with the expression)."""


def int_items(value: int) -> int:
    """The size of an integer: nothing when it fits 64 bits, else about its decimal digits."""
    bits = value.bit_length()
    return 0 if bits <= _SMALL_INT_BITS else bits * 3 // 10


class Budget:
    """The accounts of one evaluation: the deadline, the items made so far and the sizes of the
    containers already measured (by ``id``; the value is kept so that the id stays its own)."""

    __slots__ = ("deadline", "made", "sizes")

    def __init__(self, deadline: float | None = None):
        self.deadline = time.monotonic() + MAX_SECONDS if deadline is None else deadline
        self.made = 0
        self.sizes: dict[int, tuple[Any, int]] = {}

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise Fail(f"evaluation took longer than {MAX_SECONDS} s")

    # ------------------------------------------------------------------ measuring
    def size(self, value: Any, limit: int = MAX_ITEMS) -> int:
        """The deep size of ``value``, or some number above ``limit`` as soon as it passes it."""
        kind = type(value)
        if kind is str:
            return len(value)
        if kind is int:
            return int_items(value)
        if kind is list or kind is tuple or kind is dict:
            hit = self.sizes.get(id(value))
            if hit is not None:
                return hit[1]
            total = self._walk(value, limit)
            if total <= limit:
                self.sizes[id(value)] = (value, total)
            return total
        return 0

    def _walk(self, value: Any, limit: int) -> int:
        # Grouped by type with C-level passes: a list of 100,000 numbers is measured in
        # milliseconds; only nested containers are visited one by one.
        total = len(value)
        if total > limit:
            return total
        members = [m for pair in value.items() for m in pair] if type(value) is dict else value
        kinds = set(map(type, members))
        if str in kinds:
            total += sum(map(len, [m for m in members if type(m) is str]))
        if int in kinds:
            ints = members if kinds <= _INTS else [m for m in members if type(m) is int]
            if max(map(int.bit_length, ints)) > _SMALL_INT_BITS:
                total += sum(map(int_items, ints))
        nested = kinds.intersection(_CONTAINERS)
        if not nested or total > limit:
            return total
        for n, member in enumerate(members):
            if type(member) in nested:
                total += self.size(member, limit - total)
                if total > limit:
                    return total
                if n % _TICK == _TICK - 1:
                    self.tick()
        return total

    def record(self, value: Any, items: int) -> Any:
        """Remember the size of a container just made whose size was predicted."""
        if type(value) in _CONTAINERS:
            self.sizes[id(value)] = (value, items)
        return value

    # ------------------------------------------------------------------ making
    def expect(self, items: int, what: str) -> None:
        """Refuse an operation that would make ``items`` items, before it runs (the value is
        accounted for by :meth:`made_value` once made)."""
        if items > MAX_ITEMS:
            raise Fail(f"{what} would make {items} items, more than {MAX_ITEMS}, the limit per value "
                       f"({_ITEMS})")
        if self.made + items > MAX_EVALUATION_ITEMS:
            raise Fail(f"the expression makes more than {MAX_EVALUATION_ITEMS} items in all "
                       f"(each value at most {MAX_ITEMS})")

    def made_value(self, value: Any) -> Any:
        """Account for a value an operation has just made (size measured after)."""
        if type(value) is int and value.bit_length() > MAX_INT_BITS:
            raise Fail(f"integer result exceeds {MAX_INT_BITS} bits")
        items = self.size(value)
        if items > MAX_ITEMS:
            raise Fail(f"a value has more than {MAX_ITEMS} items, the limit per value ({_ITEMS})")
        self.made += max(items, 1)
        if self.made > MAX_EVALUATION_ITEMS:
            raise Fail(f"the expression makes more than {MAX_EVALUATION_ITEMS} items in all "
                       f"(each value at most {MAX_ITEMS})")
        return value

    # ------------------------------------------------------------------ text
    def text(self, value: Any, limit: int, *, quote: bool = False, data_only: bool = False) -> str:
        """``str(value)`` (``repr`` when ``quote``), refused as soon as it would pass ``limit``
        characters: a container is printed member by member, each length checked before the
        next is added, and a container reached twice is printed once. ``data_only`` refuses
        anything but numbers, strings, booleans, None, lists and dicts."""
        if type(value) is str and not quote:
            if len(value) > limit:
                raise Fail(f"the text would have {len(value)} characters, more than the limit of {limit}")
            return value
        too_long = Fail(f"the text of a {type(value).__name__} would pass the limit of {limit} characters")
        rendered: dict[int, str] = {}

        def scalar(v: Any) -> str:
            kind = type(v)
            if kind is str:
                if len(v) > limit:
                    raise too_long
                return repr(v)
            if kind is int or kind in _SCALARS or not data_only:
                return repr(v)
            raise Fail(f"a {kind.__name__} is not data (a number, string, boolean, list or dict)")

        def render(v: Any, depth: int) -> str:
            if type(v) not in _CONTAINERS:
                return scalar(v)
            done = rendered.get(id(v))
            if done is not None:
                return done
            if depth > 200:
                raise Fail("value nested too deeply to print")
            self.tick()
            members = [m for pair in v.items() for m in pair] if type(v) is dict else v
            if 3 * len(members) > limit + 2:          # a member and its separator: 3 characters at least
                raise too_long
            kinds = set(map(type, members))
            if kinds.isdisjoint(_CONTAINERS):        # flat: printed at C speed
                if data_only and not kinds <= _DATA:
                    scalar(next(m for m in members if type(m) not in _DATA))      # raises: not data
                if str in kinds and sum(map(len, [m for m in members if type(m) is str])) > limit:
                    raise too_long
                pieces = list(map(repr, members))
            else:
                pieces, used = [], 0
                for member in members:
                    piece = render(member, depth + 1)
                    used += len(piece) + 2
                    if used > limit:
                        raise too_long
                    pieces.append(piece)
            if type(v) is dict:
                text = "{" + ", ".join(map("{}: {}".format, pieces[::2], pieces[1::2])) + "}"
            elif type(v) is list:
                text = "[" + ", ".join(pieces) + "]"
            else:
                text = "(" + ", ".join(pieces) + ("," if len(pieces) == 1 else "") + ")"
            if len(text) > limit:
                raise too_long
            rendered[id(v)] = text
            return text

        return render(value, 0)


def deep_size(value: Any, limit: int, sizes: dict | None = None) -> int:
    """The deep size of ``value`` (see the module docstring), or some number above ``limit`` as
    soon as it passes it. ``sizes`` is a memo that may be shared between calls that see the
    same containers (it keeps them alive); no deadline."""
    budget = Budget(deadline=float("inf"))
    if sizes is not None:
        budget.sizes = sizes
    return budget.size(value, limit)
