"""Safe evaluation of the expressions in job descriptions (PARITY.md section 1).

String rule, as in the prototype: a string whose first non-blank character is ``'``, ``"`` or
``(`` is an expression; any other string is a literal (surrounding blanks removed); any other
value is itself. The prototype handed expressions to Python's ``eval``; here they are parsed
with :mod:`ast`, checked against an allow-list, and turned into closures that do only what the
allow-list names (once per distinct expression), so an expression can compute but never reach
the interpreter:

* names: ``constants``, ``metadata``, ``requested_metadata``, ``random``, ``math`` and the
  functions ``abs bool float int len max min pow round str sum``;
* literals, tuples, lists, dicts; arithmetic (``+ - * / // % **``), comparisons, ``and``/
  ``or``/``not``, ``x if c else y``, subscripts and slices;
* attributes only on the objects above (``constants.Rearth``, ``math.log10``,
  ``random.uniform``) and a few string methods (``'...'.format(**metadata)``, ``lower``,
  ``upper``, ``strip``, ``replace``, ``zfill``, ``startswith``, ``endswith``, ``split``) and
  ``metadata.get``; never a name starting with ``_``;
* no imports, lambdas, comprehensions, assignments, f-strings or ``%`` on strings.

Bounds: 2,000 characters, 300 syntax nodes (each evaluated at most once), 2 s, computed strings and lists of at most
100,000 items, integers of at most 100,000 bits, format widths of at most 1,000. A rejected
expression raises :class:`ExpressionError`, whose message quotes the expression and the reason.
"""
from __future__ import annotations

import ast
import functools
import math
import operator
import random as _random
import re
import time
from typing import Any, Callable, Mapping

MAX_CHARS = 2_000
MAX_NODES = 300
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


class ExpressionError(ValueError):
    """An expression that is not allowed or cannot be evaluated; the message quotes it."""


class NotYetKnown(Exception):
    """The expression reads ``requested_metadata`` before it exists (internal signal: the
    compiler defers the value to run time)."""


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.strip()[:1] in ("'", '"', "(")


class Namespace:
    """A read-only bag of named values reachable by attribute (``constants.Rearth``)."""

    __slots__ = ("_name", "_members", "callables")

    def __init__(self, name: str, members: Mapping[str, Any]):
        self._name = name
        self._members = dict(members)
        self.callables = frozenset(id(v) for v in self._members.values() if callable(v))

    def member(self, attr: str) -> Any:
        try:
            return self._members[attr]
        except KeyError:
            raise _Fail(f"{self._name} has no attribute {attr!r}; it has {sorted(self._members)}") from None

    def __repr__(self) -> str:
        return f"<{self._name}>"


class _Pending:
    """Stands for ``requested_metadata`` while the tasks it comes from have not run."""

    def __repr__(self) -> str:
        return "<requested_metadata, known at run time>"


PENDING = _Pending()


class _Fail(Exception):
    """Reason an evaluation failed (wrapped into ExpressionError with the expression)."""


# ---------------------------------------------------------------------- bounded operations
def _check_size(value: Any) -> Any:
    if isinstance(value, (str, list, tuple)) and len(value) > MAX_ITEMS:
        raise _Fail(f"result has {len(value)} items, more than the limit of {MAX_ITEMS}")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
        raise _Fail(f"integer result exceeds {MAX_INT_BITS} bits")
    return value


def _mul(a: Any, b: Any) -> Any:
    for seq, n in ((a, b), (b, a)):
        if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
            if len(seq) * max(n, 0) > MAX_ITEMS:
                raise _Fail(f"repetition would make {len(seq) * n} items, more than {MAX_ITEMS}")
    if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
        raise _Fail(f"integer product exceeds {MAX_INT_BITS} bits")
    return a * b


def _pow(a: Any, b: Any, mod: Any = None) -> Any:
    if mod is None and isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
        if a.bit_length() * b > MAX_INT_BITS:
            raise _Fail(f"{a} ** {b} exceeds {MAX_INT_BITS} bits")
    if mod is not None:
        return pow(a, b, mod)
    return a ** b


def _add(a: Any, b: Any) -> Any:
    return _check_size(a + b)


_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: _add, ast.Sub: operator.sub, ast.Mult: _mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Pow: _pow,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}


def _mod(a: Any, b: Any) -> Any:
    if isinstance(a, (str, bytes)):
        raise _Fail("'%' formatting of strings is not allowed; use '...'.format(**metadata)")
    return a % b


_BINARY[ast.Mod] = _mod


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
        raise _Fail(f"bad format string: {exc}") from None
    auto = 0
    for literal, field, spec, conversion in parsed:
        if field is None:
            plan.append((literal, None, None, None, None))
            continue
        m = _FIELD.match(field)
        if not m:
            raise _Fail(f"format field {{{field}}} is not allowed: use a name, a number or "
                        "name[key] (no attribute access)")
        head = m.group("head")
        if head.startswith("_"):
            raise _Fail(f"format field {{{field}}} is not allowed")
        if head == "":
            head, auto = auto, auto + 1
        elif head.isdigit():
            head = int(head)
        keys = tuple(int(k) if k.isdigit() else k for k in _INDEX.findall(m.group("rest")))
        spec = spec or ""
        if "{" in spec:
            raise _Fail(f"nested fields in format spec {spec!r} are not allowed")
        sm = _SPEC.match(spec)
        if not sm:
            raise _Fail(f"format spec {spec!r} is not allowed")
        for part in ("width", "precision"):
            if sm.group(part) and int(sm.group(part)) > MAX_FORMAT_WIDTH:
                raise _Fail(f"format {part} {sm.group(part)} exceeds {MAX_FORMAT_WIDTH}")
        if conversion not in (None, "s", "r"):
            raise _Fail(f"format conversion !{conversion} is not allowed")
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
            raise _Fail(f"format field {{{head}}} has no positional argument") from None
        except KeyError:
            raise _Fail(f"format field {{{head}}} names no key of the mapping given; it has "
                        f"{sorted(kwargs)}") from None
        for key in keys:
            value = _subscript(value, key)
        if conversion == "r":
            value = repr(value)
        elif conversion == "s":
            value = str(value)
        kind = type(value)
        if kind is not str and kind is not int and kind is not float and kind is not bool:
            _check_data(value, depth=0)
        text = format(value, spec)
        size += len(text)
        if size > MAX_ITEMS:
            raise _Fail(f"formatted string exceeds {MAX_ITEMS} characters")
        out.append(text)
    return "".join(out)


def _safe_replace(s: str, old: str, new: str, count: int = -1) -> str:
    n = s.count(old) if old else len(s) + 1
    if count >= 0:
        n = min(n, count)
    if len(s) + n * max(len(new) - len(old), 0) > MAX_ITEMS:
        raise _Fail(f"replace would make more than {MAX_ITEMS} characters")
    return s.replace(old, new, count)


def _safe_zfill(s: str, width: int) -> str:
    if width > MAX_FORMAT_WIDTH:
        raise _Fail(f"zfill width {width} exceeds {MAX_FORMAT_WIDTH}")
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
        raise _Fail(f"round() to {n} digits is not allowed")
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


_RANDOM = random_namespace()
NAMES = frozenset({"constants", "metadata", "requested_metadata", "random", "math", *BUILTINS})


# ---------------------------------------------------------------------- static checks
_ALLOWED_NODES = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.BinOp, ast.UnaryOp, ast.BoolOp,
    ast.Compare, ast.IfExp, ast.Subscript, ast.Slice, ast.Attribute, ast.Call, ast.keyword,
    ast.Tuple, ast.List, ast.Dict, ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd,
    *_BINARY, *_COMPARE,
)
_NODE_WORDS = {ast.Lambda: "lambda", ast.ListComp: "comprehensions", ast.SetComp: "comprehensions",
               ast.DictComp: "comprehensions", ast.GeneratorExp: "generator expressions",
               ast.NamedExpr: "assignment (:=)", ast.JoinedStr: "f-strings", ast.Await: "await",
               ast.Yield: "yield", ast.YieldFrom: "yield", ast.Starred: "*-unpacking",
               ast.Set: "sets"}


def parse(expression: str) -> ast.Expression:
    """Parse and check ``expression`` against the allow-list (cached); raises ExpressionError."""
    return _parse(expression)[0]


@functools.lru_cache(maxsize=8192)
def _parse(expression: str) -> tuple[ast.Expression, bool]:
    """The checked tree and whether the expression is deterministic (does not use random)."""
    if len(expression) > MAX_CHARS:
        raise ExpressionError(f"expression {_quote(expression)} is {len(expression)} characters long; "
                              f"the limit is {MAX_CHARS}")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        reason = getattr(exc, "msg", None) or str(exc) or type(exc).__name__
        raise ExpressionError(f"expression {_quote(expression)} is not valid Python syntax: {reason}") from None
    nodes = 0
    deterministic = True
    for node in ast.walk(tree):
        nodes += 1
        if nodes > MAX_NODES:
            raise ExpressionError(f"expression {_quote(expression)} has more than {MAX_NODES} parts")
        reason = _static_problem(node)
        if reason:
            raise ExpressionError(f"expression {_quote(expression)} is not allowed: {reason}")
        if isinstance(node, ast.Name) and node.id == "random":
            deterministic = False
    return tree, deterministic


def _static_problem(node: ast.AST) -> str | None:
    if not isinstance(node, _ALLOWED_NODES):
        word = _NODE_WORDS.get(type(node)) or type(node).__name__
        return f"{word} {'are' if word.endswith('s') else 'is'} not allowed"
    if isinstance(node, ast.Name) and node.id not in NAMES:
        if node.id.startswith("__") or node.id in ("eval", "exec", "open", "getattr", "globals", "locals",
                                                   "compile", "vars", "type", "object", "setattr"):
            return f"name {node.id!r} is not allowed"
        return f"name {node.id!r} is not defined; available: {', '.join(sorted(NAMES))}"
    if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
        return f"attribute {node.attr!r} is not allowed (no names starting with '_')"
    if isinstance(node, ast.keyword) and node.arg is not None and node.arg.startswith("_"):
        return f"keyword {node.arg!r} is not allowed"
    if isinstance(node, ast.Constant) and isinstance(node.value, (bytes, complex)) \
            or isinstance(node, ast.Constant) and node.value is Ellipsis:
        return f"constant {node.value!r} is not allowed"
    if isinstance(node, ast.Call) and not isinstance(node.func, (ast.Name, ast.Attribute)):
        return "only named functions and methods can be called"
    return None


def _quote(expression: str) -> str:
    text = expression if len(expression) <= 200 else expression[:200] + "..."
    return repr(text)


# ---------------------------------------------------------------------- evaluation
class Env:
    """What an expression may read: ``metadata`` (inherited job and loop parameters) and
    ``requested_metadata`` (``{task name: {key: value}}``, or :data:`PENDING` before it exists).

    Expressions cannot modify what they read, so the dicts are not copied; results of
    expressions that do not use ``random`` are remembered per Env."""

    __slots__ = ("metadata", "requested", "random", "memo")

    def __init__(self, metadata: dict | None = None,
                 requested: dict | _Pending | None = None,
                 rng: Namespace | None = None):
        self.metadata = metadata if isinstance(metadata, dict) else dict(metadata or {})
        self.requested = {} if requested is None else requested
        self.random = rng or _RANDOM
        self.memo: dict[str, Any] = {}


def evaluate(value: Any, env: Env | None = None) -> Any:
    """The value of one job-description item: expressions are evaluated, anything else is
    returned as it is (literal strings without surrounding blanks)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text or text[0] not in "'\"(":
        return text
    env = env or Env()
    if text in env.memo:
        return env.memo[text]
    tree, deterministic = _parse(value)
    try:
        result = _check_data(_compiled(value)(_Ctx(env, time.monotonic() + MAX_SECONDS)), depth=0)
        if deterministic:
            env.memo[text] = result
        return result
    except NotYetKnown:
        raise
    except ExpressionError:
        raise
    except _Fail as exc:
        raise ExpressionError(f"expression {_quote(text)} failed: {exc}") from None
    except RecursionError:
        raise ExpressionError(f"expression {_quote(text)} failed: nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - any error of the computation is the expression's
        raise ExpressionError(f"expression {_quote(text)} failed: {_describe(exc)}") from None


@functools.lru_cache(maxsize=8192)
def _compiled(expression: str) -> Compiled:
    return _build(_parse(expression)[0].body)


def evaluate_structure(value: Any, env: Env | None = None, *, depth: int = 0) -> Any:
    """Evaluate every item of nested lists and dicts (dict keys too, as the prototype did)."""
    if depth > MAX_DEPTH:
        raise ExpressionError(f"parameters nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            k = evaluate(key, env)
            if not isinstance(k, str):
                raise ExpressionError(f"key {key!r} evaluates to {k!r}, which is not a string")
            out[k] = evaluate_structure(item, env, depth=depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [evaluate_structure(item, env, depth=depth + 1) for item in value]
    return evaluate(value, env)


def uses_requested_metadata(value: Any, depth: int = 0) -> bool:
    """True when some expression in ``value`` names ``requested_metadata`` (static check)."""
    if depth > MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return any(uses_requested_metadata(k, depth + 1) or uses_requested_metadata(v, depth + 1)
                   for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(uses_requested_metadata(v, depth + 1) for v in value)
    if is_expression(value):
        return any(isinstance(n, ast.Name) and n.id == "requested_metadata" for n in ast.walk(parse(value)))
    return False


def check(value: Any) -> None:
    """Parse every expression in ``value`` (nested) without evaluating it: ExpressionError for
    one that is not allowed. Used for parts that are evaluated later (criteria)."""
    uses_requested_metadata(value)


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no key {exc.args[0]!r}" if exc.args else "missing key"
    return f"{type(exc).__name__}: {exc}"


def _check_data(value: Any, depth: int) -> Any:
    """Only data leaves an expression: str, int, float, bool, None, lists and str-keyed dicts."""
    if depth > MAX_DEPTH:
        raise _Fail(f"result nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (str, bool, int, float)):
        return _check_size(value)
    if isinstance(value, (list, tuple)):
        _check_size(value)
        return [_check_data(v, depth + 1) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise _Fail(f"dict key {k!r} is not a string")
            out[k] = _check_data(v, depth + 1)
        return out
    raise _Fail(f"the result is a {type(value).__name__}, not data (a number, string, "
                "boolean, list or dict)")


def _subscript(base: Any, index: Any) -> Any:
    if isinstance(base, _Pending):
        raise NotYetKnown()
    if isinstance(base, dict):
        try:
            return base[index]
        except KeyError:
            keys = sorted(map(str, base))
            shown = keys if len(keys) <= 20 else keys[:20] + ["..."]
            raise _Fail(f"no key {index!r} (keys: {shown})") from None
        except TypeError:
            raise _Fail(f"key {index!r} cannot be looked up") from None
    if isinstance(base, (list, tuple, str)):
        if isinstance(index, slice) or (isinstance(index, int) and not isinstance(index, bool)):
            try:
                return base[index]
            except IndexError:
                raise _Fail(f"index {index} is out of range (length {len(base)})") from None
        raise _Fail(f"a {type(base).__name__} index must be an integer, got {index!r}")
    raise _Fail(f"a {type(base).__name__} cannot be subscripted")


class _Ctx:
    __slots__ = ("env", "deadline")

    def __init__(self, env: Env, deadline: float):
        self.env, self.deadline = env, deadline


Compiled = Callable[[_Ctx], Any]


def _build(node: ast.AST) -> Compiled:  # noqa: C901 - one branch per node type
    """Turn a checked syntax tree into nested closures (built once per expression)."""
    kind = type(node)
    if kind is ast.Constant:
        value = node.value
        return lambda c: value
    if kind is ast.Name:
        return _name(node.id)
    if kind is ast.Attribute:
        base, attr = _build(node.value), node.attr
        return lambda c: _attribute(base(c), attr)
    if kind is ast.Subscript:
        base, index = _build(node.value), _build(node.slice)
        return lambda c: _subscript(base(c), index(c))
    if kind is ast.Slice:
        parts = [None if p is None else _build(p) for p in (node.lower, node.upper, node.step)]
        return lambda c: _slice([None if p is None else p(c) for p in parts])
    if kind is ast.Call:
        return _call(node)
    if kind is ast.BinOp:
        left, right, op = _build(node.left), _build(node.right), _BINARY[type(node.op)]
        return lambda c: _check_size(op(left(c), right(c)))
    if kind is ast.UnaryOp:
        operand, op = _build(node.operand), type(node.op)
        if op is ast.Not:
            return lambda c: not operand(c)
        if op is ast.USub:
            return lambda c: -operand(c)
        return lambda c: +operand(c)
    if kind is ast.BoolOp:
        items, is_and = [_build(v) for v in node.values], type(node.op) is ast.And

        def boolean(c):
            value = None
            for item in items:
                value = item(c)
                if (not value) if is_and else value:
                    return value
            return value
        return boolean
    if kind is ast.Compare:
        first = _build(node.left)
        rest = [(_COMPARE[type(op)], _build(comp)) for op, comp in zip(node.ops, node.comparators)]

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
        test, body, orelse = _build(node.test), _build(node.body), _build(node.orelse)
        return lambda c: body(c) if test(c) else orelse(c)
    if kind in (ast.Tuple, ast.List):
        elts = [_build(e) for e in node.elts]
        return lambda c: [e(c) for e in elts]
    if kind is ast.Dict:
        if any(k is None for k in node.keys):
            raise _Fail("**-unpacking in dict literals is not allowed")
        pairs = [(_build(k), _build(v)) for k, v in zip(node.keys, node.values)]
        return lambda c: {k(c): v(c) for k, v in pairs}
    raise _Fail(f"{kind.__name__} is not allowed")


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
        raise _Fail(f"name {name!r} is not defined")
    return lambda c: fixed


def _slice(parts: list) -> slice:
    for p in parts:
        if p is not None and (not isinstance(p, int) or isinstance(p, bool)):
            raise _Fail(f"slice bounds must be integers, got {p!r}")
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
    raise _Fail(f"a {type(base).__name__} has no allowed attribute {attr!r}")


def _call(node: ast.Call) -> Compiled:
    for a in node.args:
        if isinstance(a, ast.Starred):
            raise _Fail("*-unpacking of arguments is not allowed")
    func = _build(node.func)
    args = [_build(a) for a in node.args]
    keywords = [(kw.arg, _build(kw.value)) for kw in node.keywords]
    spread_only = len(keywords) == 1 and keywords[0][0] is None

    def call(c):
        if time.monotonic() > c.deadline:
            raise _Fail(f"evaluation took longer than {MAX_SECONDS} s")
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
                raise _Fail(f"** needs a mapping, got {type(value).__name__}")
            if spread_only and isinstance(fn, _Method) and fn.fn is _safe_format:
                return _safe_format_map(fn.target, values, value)       # '...'.format(**metadata)
            kwargs.update(value)
        if isinstance(fn, _Method):
            return _check_size(fn.fn(fn.target, *values, **kwargs))
        if id(fn) in _ALLOWED_CALLABLES or id(fn) in c.env.random.callables:
            if kwargs:
                raise _Fail(f"keyword arguments are not allowed for {getattr(fn, '__name__', 'this function')}()")
            return _check_size(fn(*values))
        raise _Fail(f"a {type(fn).__name__} cannot be called")
    return call
