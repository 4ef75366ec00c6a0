"""The bounded interpreter behind :mod:`eas_runtime.jobs.expressions`.

A checked syntax tree is turned into closures (:func:`build`) that can only do what this module
names: read the names of the job format, do arithmetic and comparisons whose results stay
within the size limits, call the functions and methods listed here, and format strings with
plain fields and bounded widths. Errors are raised as :class:`Fail` (the caller quotes the
expression) or :class:`NotYetKnown` (``requested_metadata`` read before it exists).
"""
from __future__ import annotations

import ast
import functools
import math
import operator
import random as _random
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

#: Wall-clock backstop. The language has no loops: every syntax node is evaluated at most once
#: and every operation is bounded, so work is bounded by MAX_NODES already.
MAX_SECONDS = 2.0
MAX_ITEMS = 100_000
MAX_INT_BITS = 100_000
MAX_FORMAT_WIDTH = 1_000
MAX_DEPTH = 64

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


class Fail(Exception):
    """Reason an evaluation failed (wrapped into ExpressionError with the expression)."""


# ---------------------------------------------------------------------- bounded operations
def _check_size(value: Any) -> Any:
    if isinstance(value, (str, list, tuple)) and len(value) > MAX_ITEMS:
        raise Fail(f"result has {len(value)} items, more than the limit of {MAX_ITEMS}")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise Fail(f"integer result exceeds {MAX_INT_BITS} bits")
    return value


def _mul(a: Any, b: Any) -> Any:
    for seq, n in ((a, b), (b, a)):
        if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * max(n, 0) > MAX_ITEMS:
            raise Fail(f"repetition would make {len(seq) * n} items, more than {MAX_ITEMS}")
    if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
        raise Fail(f"integer product exceeds {MAX_INT_BITS} bits")
    return a * b


def _pow(a: Any, b: Any, mod: Any = None) -> Any:
    if mod is None and isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1 \
            and a.bit_length() * b > MAX_INT_BITS:
        raise Fail(f"{a} ** {b} exceeds {MAX_INT_BITS} bits")
    if mod is not None:
        return pow(a, b, mod)
    return a ** b


def _add(a: Any, b: Any) -> Any:
    return _check_size(a + b)


BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: _add, ast.Sub: operator.sub, ast.Mult: _mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Pow: _pow,
}
COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}


def _mod(a: Any, b: Any) -> Any:
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
    plan = []
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


def _safe_format(template: str, *args: Any, **kwargs: Any) -> str:
    return _safe_format_map(template, args, kwargs)


def _safe_format_map(template: str, args: tuple | list, kwargs: dict) -> str:
    out: list[str] = []
    size = 0
    for literal, head, keys, spec, conversion in _format_plan(template):
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
        if conversion == "r":
            value = repr(value)
        elif conversion == "s":
            value = str(value)
        kind = type(value)
        if kind is not str and kind is not int and kind is not float and kind is not bool:
            check_data(value, depth=0)
        text = format(value, spec)
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


def _safe_int(x: Any = 0, *base: Any) -> int:
    return _check_size(int(x, *base))


BUILTINS: dict[str, Callable[..., Any]] = {
    "abs": abs, "bool": bool, "float": float, "int": _safe_int, "len": len, "max": max,
    "min": min, "pow": _pow, "round": _safe_round, "str": str, "sum": sum,
}
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


def check_data(value: Any, depth: int) -> Any:
    """Only data leaves an expression: str, int, float, bool, None, lists and str-keyed dicts."""
    if depth > MAX_DEPTH:
        raise Fail(f"result nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (str, bool, int, float)):
        return _check_size(value)
    if isinstance(value, (list, tuple)):
        _check_size(value)
        return [check_data(v, depth + 1) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise Fail(f"dict key {k!r} is not a string")
            out[k] = check_data(v, depth + 1)
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


class Ctx:
    """One evaluation: the environment (``metadata``, ``requested_metadata``, ``random``: see
    ``expressions.Env``) and the wall-clock deadline."""

    __slots__ = ("deadline", "env")

    def __init__(self, env: Any, deadline: float):
        self.env, self.deadline = env, deadline


Compiled = Callable[[Ctx], Any]


def build(node: ast.AST) -> Compiled:
    """Turn a checked syntax tree into nested closures (built once per expression)."""
    kind = type(node)
    if kind is ast.Constant:
        value = node.value
        return lambda c: value
    if kind is ast.Name:
        return _name(node.id)
    if kind is ast.Attribute:
        base, attr = build(node.value), node.attr
        return lambda c: _attribute(base(c), attr)
    if kind is ast.Subscript:
        base, index = build(node.value), build(node.slice)
        return lambda c: subscript(base(c), index(c))
    if kind is ast.Slice:
        parts = [None if p is None else build(p) for p in (node.lower, node.upper, node.step)]
        return lambda c: _slice([None if p is None else p(c) for p in parts])
    if kind is ast.Call:
        return _call(node)
    if kind is ast.BinOp:
        left, right, op = build(node.left), build(node.right), BINARY[type(node.op)]
        return lambda c: _check_size(op(left(c), right(c)))
    if kind is ast.UnaryOp:
        operand, op = build(node.operand), type(node.op)
        if op is ast.Not:
            return lambda c: not operand(c)
        if op is ast.USub:
            return lambda c: -operand(c)
        return lambda c: +operand(c)
    if kind is ast.BoolOp:
        items, is_and = [build(v) for v in node.values], type(node.op) is ast.And

        def boolean(c):
            value = None
            for item in items:
                value = item(c)
                if (not value) if is_and else value:
                    return value
            return value
        return boolean
    if kind is ast.Compare:
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
    if kind is ast.IfExp:
        test, body, orelse = build(node.test), build(node.body), build(node.orelse)
        return lambda c: body(c) if test(c) else orelse(c)
    if kind in (ast.Tuple, ast.List):
        elts = [build(e) for e in node.elts]
        return lambda c: [e(c) for e in elts]
    if kind is ast.Dict:
        if any(k is None for k in node.keys):
            raise Fail("**-unpacking in dict literals is not allowed")
        pairs = [(build(k), build(v)) for k, v in zip(node.keys, node.values)]
        return lambda c: {k(c): v(c) for k, v in pairs}
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
        if time.monotonic() > c.deadline:
            raise Fail(f"evaluation took longer than {MAX_SECONDS} s")
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
                return _safe_format_map(fn.target, values, value)       # '...'.format(**metadata)
            kwargs.update(value)
        if isinstance(fn, _Method):
            return _check_size(fn.fn(fn.target, *values, **kwargs))
        if id(fn) in _ALLOWED_CALLABLES or id(fn) in c.env.random.callables:
            if kwargs:
                raise Fail(f"keyword arguments are not allowed for {getattr(fn, '__name__', 'this function')}()")
            return _check_size(fn(*values))
        raise Fail(f"a {type(fn).__name__} cannot be called")
    return call
