"""The bounded interpreter behind :mod:`eas_runtime.jobs.expressions`.

A checked syntax tree is turned into closures (:func:`build`) that can only do what this module
names: read the names of the job format, do arithmetic and comparisons whose results stay
within the size limits, call the functions and methods listed here, and format strings with
plain fields and bounded widths. Every value an operation makes is accounted for by the
evaluation's :class:`~eas_runtime.jobs._bounds.Budget` (deep size, items made in all, deadline),
before the operation runs when its size can be predicted. Errors are raised as :class:`Fail`
(the caller quotes the expression) or :class:`NotYetKnown` (``requested_metadata`` read before
it exists).
"""
from __future__ import annotations

import ast
import functools
import math
import operator
import random as _random
import re
from collections.abc import Callable, Mapping
from typing import Any

from eas_runtime.jobs._bounds import MAX_INT_BITS, MAX_ITEMS, Budget, Fail

MAX_FORMAT_WIDTH = 1_000
MAX_DEPTH = 64
#: pow(a, b, m) squares numbers of m's width once per bit of b: both are kept to key sizes.
MAX_MODULAR_BITS = 4_096

#: The prototype's constants (``plato_wp36.constants.EASConstants``), with their units.
CONSTANTS: dict[str, float] = {
    "day": 1,                      # days
    "month": 28,                   # days
    "year": 365.25,                # days
    "sun_radius": 695500e3,        # m
    "earth_radius": 6371e3,        # m
    "jupiter_radius": 71492e3,     # m
    "phy_AU": 149597870700,        # m
    "Rearth": 0.08911486,          # Jupiter radii
    "plato_noise": 0.000315,       # relative noise per 25 s sample (PSLS)
}


class NotYetKnown(Exception):
    """The expression reads ``requested_metadata`` before it exists (internal signal: the
    compiler defers the value to run time)."""


class Namespace:
    """A read-only bag of named values reachable by attribute (``constants.Rearth``)."""

    __slots__ = ("_members", "_name", "callables")

    def __init__(self, name: str, members: Mapping[str, Any]):
        self._name = name
        self._members = dict(members)
        self.callables = frozenset(id(v) for v in self._members.values() if callable(v))

    def member(self, attr: str) -> Any:
        try:
            return self._members[attr]
        except KeyError:
            raise Fail(f"{self._name} has no attribute {attr!r}; it has {sorted(self._members)}") from None

    def __repr__(self) -> str:
        return f"<{self._name}>"


class _Pending:
    """Stands for ``requested_metadata`` while the tasks it comes from have not run."""

    def __repr__(self) -> str:
        return "<requested_metadata, known at run time>"


PENDING = _Pending()


# ---------------------------------------------------------------------- bounded operations
# Each takes the evaluation (``c``) first; sequences are sized before they are made.
def _mul(c: Ctx, a: Any, b: Any) -> Any:
    for seq, n in ((a, b), (b, a)):
        if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
            items = c.size(seq) * max(n, 0)
            c.expect(items, "repetition")
            return c.record(seq * n, items)
    if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
        raise Fail(f"integer product exceeds {MAX_INT_BITS} bits")
    return a * b


def _pow(c: Ctx, a: Any, b: Any, mod: Any = None) -> Any:
    if mod is None and isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1 \
            and a.bit_length() * b > MAX_INT_BITS:
        raise Fail(f"{a} ** {b} exceeds {MAX_INT_BITS} bits")
    if mod is not None:
        for label, v in (("exponent", b), ("modulus", mod)):
            if isinstance(v, int) and v.bit_length() > MAX_MODULAR_BITS:
                raise Fail(f"pow() with a modulus: the {label} exceeds {MAX_MODULAR_BITS} bits")
        return pow(a, b, mod)
    return a ** b


def _add(c: Ctx, a: Any, b: Any) -> Any:
    if type(a) is type(b) and isinstance(a, (str, list, tuple)):
        items = c.size(a) + c.size(b)
        c.expect(items, "+")
        return c.record(a + b, items)
    return a + b


def _plain(fn: Callable[[Any, Any], Any]) -> Callable[[Ctx, Any, Any], Any]:
    return lambda c, a, b: fn(a, b)


BINARY: dict[type, Callable[[Ctx, Any, Any], Any]] = {
    ast.Add: _add, ast.Sub: _plain(operator.sub), ast.Mult: _mul, ast.Div: _plain(operator.truediv),
    ast.FloorDiv: _plain(operator.floordiv), ast.Pow: _pow,
}
COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}


def _mod(c: Ctx, a: Any, b: Any) -> Any:
    if isinstance(a, (str, bytes)):
        raise Fail("'%' formatting of strings is not allowed; use '...'.format(**metadata)")
    return a % b


BINARY[ast.Mod] = _mod


# ---------------------------------------------------------------------- str.format, bounded
_SPEC = re.compile(r"^(?:.?[<>=^])?[+\- ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d+))?[bcdeEfFgGnosxX%]?$")
_FIELD = re.compile(r"^(?P<head>[A-Za-z_][A-Za-z0-9_]*|\d*)(?P<rest>(?:\[[^\]]+\])*)$")
_INDEX = re.compile(r"\[([^\]]+)\]")


@functools.lru_cache(maxsize=4096)
def _format_plan(template: str) -> tuple:
    """Parse a format string once: literal text and fields; no attribute access in fields,
    no nested fields, bounded widths."""
    import string
    plan: list[tuple[Any, ...]] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise Fail(f"bad format string: {exc}") from None
    auto = 0
    for literal, field, spec, conversion in parsed:
        if field is None:
            plan.append((literal, None, None, None, None))
            continue
        m = _FIELD.match(field)
        if not m:
            raise Fail(f"format field {{{field}}} is not allowed: use a name, a number or "
                        "name[key] (no attribute access)")
        head = m.group("head")
        if head.startswith("_"):
            raise Fail(f"format field {{{field}}} is not allowed")
        if head == "":
            head, auto = auto, auto + 1
        elif head.isdigit():
            head = int(head)
        keys = tuple(int(k) if k.isdigit() else k for k in _INDEX.findall(m.group("rest")))
        spec = spec or ""
        if "{" in spec:
            raise Fail(f"nested fields in format spec {spec!r} are not allowed")
        sm = _SPEC.match(spec)
        if not sm:
            raise Fail(f"format spec {spec!r} is not allowed")
        for part in ("width", "precision"):
            if sm.group(part) and int(sm.group(part)) > MAX_FORMAT_WIDTH:
                raise Fail(f"format {part} {sm.group(part)} exceeds {MAX_FORMAT_WIDTH}")
        if conversion not in (None, "s", "r"):
            raise Fail(f"format conversion !{conversion} is not allowed")
        plan.append((literal, head, keys, spec, conversion))
    return tuple(plan)


def _safe_format(c: Ctx, template: str, *args: Any, **kwargs: Any) -> str:
    return _safe_format_map(c, template, args, kwargs)


def _safe_format_map(c: Ctx, template: str, args: tuple | list, kwargs: dict) -> str:
    """``template.format(*args, **kwargs)``; each field's text is limited to what is left of
    MAX_ITEMS characters before it is made (lists and dicts are printed piece by piece)."""
    out: list[str] = []
    size = 0
    for literal, head, keys, spec, conversion in _format_plan(template):
        c.tick()
        out.append(literal)
        size += len(literal)
        if head is None:
            continue
        try:
            value = args[head] if isinstance(head, int) else kwargs[head]
        except IndexError:
            raise Fail(f"format field {{{head}}} has no positional argument") from None
        except KeyError:
            raise Fail(f"format field {{{head}}} names no key of the mapping given; it has "
                        f"{sorted(kwargs)}") from None
        for key in keys:
            value = subscript(value, key)
        left = MAX_ITEMS - size
        if conversion is not None:
            value = c.text(value, left, quote=conversion == "r", data_only=True)
        kind = type(value)
        if kind is list or kind is tuple or kind is dict:
            if spec:
                raise Fail(f"format spec {spec!r} cannot be applied to a {kind.__name__}")
            text = c.text(value, left, data_only=True)
        elif kind is str or kind is int or kind is float or kind is bool or value is None:
            if kind is str and len(value) > left:
                raise Fail(f"formatted string exceeds {MAX_ITEMS} characters")
            text = format(value, spec)
        else:
            raise Fail(f"format field {{{head}}} is a {kind.__name__}, not data (a number, string, "
                        "boolean, list or dict)")
        size += len(text)
        if size > MAX_ITEMS:
            raise Fail(f"formatted string exceeds {MAX_ITEMS} characters")
        out.append(text)
    return "".join(out)


def _safe_replace(s: str, old: str, new: str, count: int = -1) -> str:
    n = s.count(old) if old else len(s) + 1
    if count >= 0:
        n = min(n, count)
    if len(s) + n * max(len(new) - len(old), 0) > MAX_ITEMS:
        raise Fail(f"replace would make more than {MAX_ITEMS} characters")
    return s.replace(old, new, count)


def _safe_zfill(s: str, width: int) -> str:
    if width > MAX_FORMAT_WIDTH:
        raise Fail(f"zfill width {width} exceeds {MAX_FORMAT_WIDTH}")
    return s.zfill(width)


#: Methods called with the evaluation first (they loop, so they look at the clock).
_WITH_CTX = frozenset({_safe_format})
_STR_METHODS: dict[str, Callable[..., Any]] = {
    "format": _safe_format, "lower": str.lower, "upper": str.upper, "strip": str.strip,
    "lstrip": str.lstrip, "rstrip": str.rstrip, "replace": _safe_replace, "zfill": _safe_zfill,
    "startswith": str.startswith, "endswith": str.endswith, "split": str.split,
}
_DICT_METHODS: dict[str, Callable[..., Any]] = {"get": dict.get}
METHOD_NAMES = frozenset(_STR_METHODS) | frozenset(_DICT_METHODS)


class _Method:
    __slots__ = ("fn", "target")

    def __init__(self, fn, target):
        self.fn, self.target = fn, target


def _safe_round(x: Any, n: Any = None) -> Any:
    if n is not None and isinstance(n, int) and abs(n) > MAX_FORMAT_WIDTH:
        raise Fail(f"round() to {n} digits is not allowed")
    return round(x) if n is None else round(x, n)


def _safe_str(c: Ctx, value: Any = "") -> str:
    return c.text(value, MAX_ITEMS)


def _safe_sum(c: Ctx, values: Any, start: Any = 0) -> Any:
    """sum(), in slices between looks at the clock; lists are added in place, once their total
    size is known (the builtin would copy the growing list once per member)."""
    if isinstance(start, str):
        raise Fail("sum() cannot add strings")
    if not isinstance(values, (list, tuple)):
        return sum(values, start)
    if isinstance(start, (list, tuple)):
        items = c.size(start)
        for n, member in enumerate(values):
            if type(member) is not type(start):
                raise Fail(f"sum() of {type(start).__name__}s met a {type(member).__name__} at index {n}")
            items += c.size(member)
            if items > MAX_ITEMS:
                c.expect(items, "sum()")
            if n % 1024 == 1023:
                c.tick()
        c.expect(items, "sum()")
        out = list(start)
        for n, member in enumerate(values):
            out.extend(member)
            if n % 1024 == 1023:
                c.tick()
        return c.record(out if type(start) is list else tuple(out), items)
    total = start
    for i in range(0, len(values), 4096):
        c.tick()
        total = sum(values[i:i + 4096], total)
        if type(total) is int and total.bit_length() > MAX_INT_BITS:
            raise Fail(f"integer result exceeds {MAX_INT_BITS} bits")
    return total


BUILTINS: dict[str, Callable[..., Any]] = {
    "abs": abs, "bool": bool, "float": float, "int": int, "len": len, "max": max,
    "min": min, "pow": _pow, "round": _safe_round, "str": _safe_str, "sum": _safe_sum,
}
#: Builtins called with the evaluation first.
_BUILTINS_WITH_CTX = frozenset(id(f) for f in (_pow, _safe_str, _safe_sum))
_MATH = Namespace("math", {name: getattr(math, name) for name in (
    "log10", "log", "log2", "exp", "sqrt", "floor", "ceil", "sin", "cos", "tan", "asin",
    "acos", "atan", "atan2", "radians", "degrees", "hypot", "isfinite", "pi", "e", "inf")})
_CONSTANTS = Namespace("constants", CONSTANTS)
_ALLOWED_CALLABLES = frozenset(id(f) for f in (*BUILTINS.values(), *_MATH._members.values())
                               if callable(f))


def random_namespace(rng: _random.Random | None = None) -> Namespace:
    rng = rng or _random.Random()
    return Namespace("random", {"random": rng.random, "uniform": rng.uniform, "gauss": rng.gauss,
                                "randint": rng.randint, "choice": rng.choice})


DEFAULT_RANDOM = random_namespace()


def check_data(value: Any, depth: int = 0, budget: Budget | None = None) -> Any:
    """Only data leaves an expression: str, int, float, bool, None, lists and str-keyed dicts,
    of at most MAX_ITEMS items (measured before the copy is made)."""
    if depth == 0:
        budget = budget or Budget()
        if type(value) is int and value.bit_length() > MAX_INT_BITS:
            raise Fail(f"integer result exceeds {MAX_INT_BITS} bits")
        items = budget.size(value)
        if items > MAX_ITEMS:
            raise Fail(f"the result has more than {MAX_ITEMS} items, the limit per value (characters and "
                       "list or dict members, nested ones counted each time they are reached)")
    return _copy_data(value, depth)


_FLAT_DATA = frozenset({str, int, float, bool, type(None)})


def _copy_data(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise Fail(f"result nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        if _FLAT_DATA.issuperset(map(type, value)):       # numbers and strings only: copied at C speed
            return list(value)
        return [_copy_data(v, depth + 1) for v in value]
    if isinstance(value, dict):
        if _FLAT_DATA.issuperset(map(type, value.values())) and all(type(k) is str for k in value):
            return dict(value)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise Fail(f"dict key {k!r} is not a string")
            out[k] = _copy_data(v, depth + 1)
        return out
    raise Fail(f"the result is a {type(value).__name__}, not data (a number, string, "
                "boolean, list or dict)")


def subscript(base: Any, index: Any) -> Any:
    if isinstance(base, _Pending):
        raise NotYetKnown()
    if isinstance(base, dict):
        try:
            return base[index]
        except KeyError:
            keys = sorted(map(str, base))
            shown = keys if len(keys) <= 20 else keys[:20] + ["..."]
            raise Fail(f"no key {index!r} (keys: {shown})") from None
        except TypeError:
            raise Fail(f"key {index!r} cannot be looked up") from None
    if isinstance(base, (list, tuple, str)):
        if isinstance(index, slice) or (isinstance(index, int) and not isinstance(index, bool)):
            try:
                return base[index]
            except IndexError:
                raise Fail(f"index {index} is out of range (length {len(base)})") from None
        raise Fail(f"a {type(base).__name__} index must be an integer, got {index!r}")
    raise Fail(f"a {type(base).__name__} cannot be subscripted")


class Ctx(Budget):
    """One evaluation: the environment (``metadata``, ``requested_metadata``, ``random``: see
    ``expressions.Env``) and its budget (deadline, sizes, items made)."""

    __slots__ = ("env",)

    def __init__(self, env: Any, deadline: float):
        super().__init__(deadline)
        self.env = env


Compiled = Callable[[Ctx], Any]


def build(node: ast.AST) -> Compiled:
    """Turn a checked syntax tree into nested closures (built once per expression)."""
    kind = type(node)
    if type(node) is ast.Constant:
        value = node.value
        return lambda c: value
    if type(node) is ast.Name:
        return _name(node.id)
    if type(node) is ast.Attribute:
        base, attr = build(node.value), node.attr
        return lambda c: _attribute(base(c), attr)
    if type(node) is ast.Subscript:
        base, index = build(node.value), build(node.slice)
        if type(node.slice) is ast.Slice:           # a slice makes a value: account for it
            return lambda c: c.made_value(subscript(base(c), index(c)))
        return lambda c: subscript(base(c), index(c))
    if type(node) is ast.Slice:
        parts = [None if p is None else build(p) for p in (node.lower, node.upper, node.step)]
        return lambda c: _slice([None if p is None else p(c) for p in parts])
    if type(node) is ast.Call:
        return _call(node)
    if type(node) is ast.BinOp:
        left, right, op = build(node.left), build(node.right), BINARY[type(node.op)]

        def binary(c):
            a = left(c)
            b = right(c)
            c.tick()
            return c.made_value(op(c, a, b))
        return binary
    if type(node) is ast.UnaryOp:
        operand, op = build(node.operand), type(node.op)
        if op is ast.Not:
            return lambda c: not operand(c)
        if op is ast.USub:
            return lambda c: -operand(c)
        return lambda c: +operand(c)
    if type(node) is ast.BoolOp:
        items, is_and = [build(v) for v in node.values], type(node.op) is ast.And

        def boolean(c):
            value = None
            for item in items:
                value = item(c)
                if (not value) if is_and else value:
                    return value
            return value
        return boolean
    if type(node) is ast.Compare:
        first = build(node.left)
        rest = [(COMPARE[type(op)], build(comp)) for op, comp in zip(node.ops, node.comparators)]

        def compare(c):
            left = first(c)
            for op, comparator in rest:
                right = comparator(c)
                if not op(left, right):
                    return False
                left = right
            return True
        return compare
    if type(node) is ast.IfExp:
        test, body, orelse = build(node.test), build(node.body), build(node.orelse)
        return lambda c: body(c) if test(c) else orelse(c)
    if type(node) is ast.Tuple or type(node) is ast.List:
        elts = [build(e) for e in node.elts]

        def sequence(c):
            out, items = [], len(elts)
            for e in elts:                          # sized member by member, as they are made
                value = e(c)
                items += c.size(value)
                if items > MAX_ITEMS:
                    c.expect(items, "a list")
                out.append(value)
            c.expect(items, "a list")
            return c.made_value(c.record(out, items))
        return sequence
    if type(node) is ast.Dict:
        keys = [k for k in node.keys if k is not None]
        if len(keys) != len(node.keys):
            raise Fail("**-unpacking in dict literals is not allowed")
        pairs = [(build(k), build(v)) for k, v in zip(keys, node.values)]

        def mapping(c):
            out, items = {}, 0
            for k, v in pairs:
                key, value = k(c), v(c)
                items += 1 + c.size(key) + c.size(value)
                if items > MAX_ITEMS:
                    c.expect(items, "a dict")
                out[key] = value
            c.tick()
            return c.made_value(out)                # measured again: a repeated key replaces
        return mapping
    raise Fail(f"{kind.__name__} is not allowed")


def _name(name: str) -> Compiled:
    if name == "metadata":
        return lambda c: c.env.metadata
    if name == "requested_metadata":
        def requested(c):
            if c.env.requested is PENDING:
                raise NotYetKnown()
            return c.env.requested
        return requested
    if name == "random":
        return lambda c: c.env.random
    fixed = {"constants": _CONSTANTS, "math": _MATH}.get(name) or BUILTINS.get(name)
    if fixed is None:
        raise Fail(f"name {name!r} is not defined")
    return lambda c: fixed


def _slice(parts: list) -> slice:
    for p in parts:
        if p is not None and (not isinstance(p, int) or isinstance(p, bool)):
            raise Fail(f"slice bounds must be integers, got {p!r}")
    return slice(*parts)


def _attribute(base: Any, attr: str) -> Any:
    if isinstance(base, Namespace):
        return base.member(attr)
    if isinstance(base, str) and attr in _STR_METHODS:
        return _Method(_STR_METHODS[attr], base)
    if isinstance(base, dict) and attr in _DICT_METHODS:
        return _Method(_DICT_METHODS[attr], base)
    if isinstance(base, _Pending):
        raise NotYetKnown()
    raise Fail(f"a {type(base).__name__} has no allowed attribute {attr!r}")


def _call(node: ast.Call) -> Compiled:
    for a in node.args:
        if isinstance(a, ast.Starred):
            raise Fail("*-unpacking of arguments is not allowed")
    func = build(node.func)
    args = [build(a) for a in node.args]
    keywords = [(kw.arg, build(kw.value)) for kw in node.keywords]
    spread_only = len(keywords) == 1 and keywords[0][0] is None

    def call(c):
        c.tick()
        fn = func(c)
        values = [a(c) for a in args]
        kwargs: dict[str, Any] = {}
        for name, value_of in keywords:
            value = value_of(c)
            if name is not None:
                kwargs[name] = value
                continue
            if isinstance(value, _Pending):
                raise NotYetKnown()
            if not isinstance(value, dict):
                raise Fail(f"** needs a mapping, got {type(value).__name__}")
            if spread_only and isinstance(fn, _Method) and fn.fn is _safe_format:
                return c.made_value(_safe_format_map(c, fn.target, values, value))  # '...'.format(**metadata)
            kwargs.update(value)
        if isinstance(fn, _Method):
            if fn.fn in _WITH_CTX:
                return c.made_value(fn.fn(c, fn.target, *values, **kwargs))
            return c.made_value(fn.fn(fn.target, *values, **kwargs))
        if id(fn) in _ALLOWED_CALLABLES or id(fn) in c.env.random.callables:
            if kwargs:
                raise Fail(f"keyword arguments are not allowed for {getattr(fn, '__name__', 'this function')}()")
            if id(fn) in _BUILTINS_WITH_CTX:
                return c.made_value(fn(c, *values))
            return c.made_value(fn(*values))
        raise Fail(f"a {type(fn).__name__} cannot be called")
    return call
