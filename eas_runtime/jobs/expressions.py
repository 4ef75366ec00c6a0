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

Bounds: 2,000 characters, 300 syntax nodes (each evaluated at most once), integers of at most
100,000 bits, format widths of at most 1,000, ``pow`` with a modulus on keys of at most 4,096
bits. Sizes are counted deeply in *items* (characters, list and dict members, a member reached
twice counted twice: :mod:`eas_runtime.jobs._bounds`): every value an expression makes, and its
result, has at most 100,000 items, and an operation whose result would pass that (repetition,
concatenation, ``sum``, literals, ``str`` and ``format`` of a list) is refused before it runs;
one evaluation makes at most 1,000,000 items in all and runs at most 2 s, checked inside every
loop; a structure evaluated together (one task's parameters) has at most 300,000 items, and the
evaluations of one job make at most :data:`~eas_runtime.jobs.plan.MAX_JOB_EVALUATION_ITEMS`
(:func:`shared_budget`). A rejected expression raises :class:`ExpressionError`, whose message
quotes the expression, the reason and the limit. The interpreter itself is
:mod:`eas_runtime.jobs._interpreter`.
"""
from __future__ import annotations

import ast
import contextlib
import functools
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from eas_runtime.jobs._bounds import MAX_EVALUATION_ITEMS, MAX_INT_BITS, MAX_ITEMS, MAX_SECONDS, Budget, Fail
from eas_runtime.jobs._interpreter import (
    BINARY,
    BUILTINS,
    COMPARE,
    CONSTANTS,
    DEFAULT_RANDOM,
    MAX_DEPTH,
    MAX_FORMAT_WIDTH,
    PENDING,
    Compiled,
    Ctx,
    Namespace,
    NotYetKnown,
    _Pending,
    build,
    check_data,
    random_namespace,
)

__all__ = ["CONSTANTS", "MAX_CHARS", "MAX_DEPTH", "MAX_EVALUATION_ITEMS", "MAX_FORMAT_WIDTH", "MAX_INT_BITS",
           "MAX_ITEMS", "MAX_NODES", "MAX_SECONDS", "MAX_STRUCTURE_ITEMS", "PENDING", "Env", "ExpressionError",
           "Namespace", "NotYetKnown", "check", "evaluate", "evaluate_structure", "is_expression", "parse",
           "random_namespace", "shared_budget", "uses_requested_metadata"]

MAX_CHARS = 2_000
MAX_NODES = 300
#: Items of a structure evaluated together (the parameters of one task, a loop's values).
MAX_STRUCTURE_ITEMS = 300_000


class ExpressionError(ValueError):
    """An expression that is not allowed or cannot be evaluated; the message quotes it."""


def is_expression(value: Any) -> bool:
    return isinstance(value, str) and value.strip()[:1] in ("'", '"', "(")


NAMES = frozenset({"constants", "metadata", "requested_metadata", "random", "math", *BUILTINS})


# ---------------------------------------------------------------------- static checks
_ALLOWED_NODES = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.BinOp, ast.UnaryOp, ast.BoolOp,
    ast.Compare, ast.IfExp, ast.Subscript, ast.Slice, ast.Attribute, ast.Call, ast.keyword,
    ast.Tuple, ast.List, ast.Dict, ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd,
    *BINARY, *COMPARE,
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
    deterministic = True
    for nodes, node in enumerate(ast.walk(tree), start=1):
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

    __slots__ = ("memo", "metadata", "random", "requested")

    def __init__(self, metadata: dict | None = None,
                 requested: dict | _Pending | None = None,
                 rng: Namespace | None = None):
        self.metadata = metadata if isinstance(metadata, dict) else dict(metadata or {})
        self.requested = {} if requested is None else requested
        self.random = rng or DEFAULT_RANDOM
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
    deterministic = _parse(value)[1]
    ctx = Ctx(env, time.monotonic() + MAX_SECONDS)
    try:
        result = check_data(_compiled(value)(ctx), 0, ctx)
        if deterministic:
            env.memo[text] = result
        return result
    except NotYetKnown:
        raise
    except ExpressionError:
        raise
    except Fail as exc:
        raise ExpressionError(f"expression {_quote(text)} failed: {exc}") from None
    except RecursionError:
        raise ExpressionError(f"expression {_quote(text)} failed: nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - any error of the computation is the expression's
        raise ExpressionError(f"expression {_quote(text)} failed: {_describe(exc)}") from None
    finally:
        _charge_shared(ctx.made, text)


#: [items made so far, limit, what is limited] of the evaluations of one job (see shared_budget).
_SHARED: ContextVar[list | None] = ContextVar("eas_expressions_shared_budget", default=None)


@contextlib.contextmanager
def shared_budget(limit: int, what: str) -> Iterator[None]:
    """Bound the items made by all the evaluations inside the block together (one job's:
    thousands of tasks each evaluating a costly expression add up even when each is bounded)."""
    token = _SHARED.set([0, limit, what])
    try:
        yield
    finally:
        _SHARED.reset(token)


def _charge_shared(items: int, text: str) -> None:
    shared = _SHARED.get()
    if shared is None:
        return
    shared[0] += items
    if shared[0] > shared[1]:
        raise ExpressionError(f"expression {_quote(text)}: the expressions of {shared[2]} make more than "
                              f"{shared[1]} items in all, the limit")


@functools.lru_cache(maxsize=8192)
def _compiled(expression: str) -> Compiled:
    return build(_parse(expression)[0].body)


def evaluate_structure(value: Any, env: Env | None = None, *, depth: int = 0,
                       limit: int = MAX_STRUCTURE_ITEMS) -> Any:
    """Evaluate every item of nested lists and dicts (dict keys too, as the prototype did).
    The result is sized as it is made: ExpressionError once it passes ``limit`` items."""
    budget = Budget(deadline=float("inf"))
    return _evaluate_structure(value, env, depth, limit, budget, [0])


def _evaluate_structure(value: Any, env: Env | None, depth: int, limit: int, budget: Budget,
                        used: list[int]) -> Any:
    if depth > MAX_DEPTH:
        raise ExpressionError(f"parameters nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            k = evaluate(key, env)
            if not isinstance(k, str):
                raise ExpressionError(f"key {key!r} evaluates to {k!r}, which is not a string")
            _count(1 + len(k), used, limit)
            out[k] = _evaluate_structure(item, env, depth + 1, limit, budget, used)
        return out
    if isinstance(value, (list, tuple)):
        _count(len(value), used, limit)
        return [_evaluate_structure(item, env, depth + 1, limit, budget, used) for item in value]
    result = evaluate(value, env)
    _count(budget.size(result, limit - used[0]), used, limit)
    return result


def _count(items: int, used: list[int], limit: int) -> None:
    used[0] += items
    if used[0] > limit:
        raise ExpressionError(f"the evaluated values pass {limit} items, the limit for one task's parameters "
                              "(characters and list or dict members, nested ones counted each time they are "
                              "reached)")


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
