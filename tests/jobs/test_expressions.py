"""The safe expression evaluator: the prototype's string rules and names, and nothing more."""
from __future__ import annotations

import math
import os
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eas_runtime.jobs.expressions import (
    CONSTANTS,
    MAX_CHARS,
    MAX_NODES,
    PENDING,
    Env,
    ExpressionError,
    NotYetKnown,
    evaluate,
    evaluate_structure,
    is_expression,
    uses_requested_metadata,
)

META = {"tda": "tls", "tda_index": 0, "size": 0.5, "size_index": 3, "cadence": 900, "cadence_index": 1}
REQUESTED = {"transit_detection": {"outcome": "PASS", "period": 50.0}}


def ev(text, metadata=META, requested=REQUESTED):
    return evaluate(text, Env(dict(metadata), requested))


# ---------------------------------------------------------------------- the prototype's rules
@pytest.mark.parametrize("value, expected", [
    ("plain text", "plain text"), ("  padded  ", "padded"), ("", ""), ("{size_index}.gz", "{size_index}.gz"),
    (730, 730), (0.5, 0.5), (None, None), (True, True), ([1, "(2)"], [1, "(2)"]),
    ("(1 + 2)", 3), ("'a' 'b'", "ab"), ('"x"', "x"), ("  (7 * constants.day)", 7),
])
def test_string_rule_strings_starting_with_a_quote_or_bracket_are_expressions(value, expected):
    assert ev(value) == expected
    assert is_expression(value) == (isinstance(value, str) and value.strip()[:1] in "'\"(" and bool(value.strip()))


def test_constants_are_the_prototypes():
    assert ev("(constants.Rearth)") == 0.08911486
    assert ev("(constants.plato_noise)") == 0.000315
    assert ev("(constants.month)") == 28 and ev("(constants.year)") == 365.25 and ev("(constants.day)") == 1
    assert ev("(constants.jupiter_radius)") == 71492e3 and ev("(constants.phy_AU)") == 149597870700
    assert ev("(constants.sun_radius / constants.jupiter_radius)") == CONSTANTS["sun_radius"] / 71492e3


def test_metadata_format_keeps_integer_indices_integers():
    assert ev("'evsize_{tda_index}_{cadence_index}_{size_index}.gz'.format(**metadata)") == "evsize_0_1_3.gz"
    assert ev("'transit_search_{tda}'.format(**metadata)") == "transit_search_tls"
    assert ev("'{size:.3f} {0} {1!r}'.format(1, 'x', **metadata)") == "0.500 1 'x'"


def test_the_expressions_of_the_prototype_job_files():
    assert ev("(pow(metadata['size']/365.25, 2/3))") == pytest.approx((0.5 / 365.25) ** (2 / 3))
    assert 0 <= ev("(random.random() * 200)") < 200
    assert ev("(requested_metadata['transit_detection']['outcome'] == 'PASS')") is True
    md = {**META, "my_while_loop_index": 3}
    assert ev("(requested_metadata['transit_detection']['outcome'] == 'PASS') and "
              "(metadata['my_while_loop_index'] < 3)", md) is False


@pytest.mark.parametrize("text, expected", [
    ("(min(3, 1, 2) + max([4, 5]) + abs(-2))", 8), ("(int('12') + float('0.5'))", 12.5),
    ("(str(3) + str(0.5))", "30.5"), ("(round(2.567, 2))", 2.57), ("(math.log10(1000))", 3.0),
    ("(math.sqrt(16) + math.floor(2.7))", 6.0), ("(1 if metadata['size'] > 0.1 else 2)", 1),
    ("(metadata.get('missing', 7))", 7), ("('a,b'.split(','))", ["a", "b"]),
    ("([1, 2, 3][1:])", [2, 3]), ("({'a': 1}['a'])", 1), ("('tls' in ['tls', 'bls'])", True),
    ("(not metadata['size_index'] == 3 or False)", False), ("(len('abc') ** 2 // 2 % 3)", 1),
    ("(-metadata['size'])", -0.5), ("('x'.upper().zfill(3))", "00X"), ("(2 ** -1)", 0.5),
    ("(1 < 2 < 3)", True), ("((1, 2))", [1, 2]), ("(sum([1, 2.5]))", 3.5), ("(bool(0))", False),
])
def test_allowed_operations(text, expected):
    assert ev(text) == expected


def test_random_functions_are_allowed():
    assert 2 <= ev("(random.uniform(2, 3))") <= 3
    assert ev("(random.randint(4, 4))") == 4


def test_requested_metadata_before_it_exists_is_not_yet_known():
    with pytest.raises(NotYetKnown):
        evaluate("(requested_metadata['x']['y'])", Env({}, PENDING))
    with pytest.raises(NotYetKnown):
        evaluate("'{a}'.format(**requested_metadata)", Env({}, PENDING))
    assert evaluate("(1 if True else requested_metadata['x'])", Env({}, PENDING)) == 1
    assert uses_requested_metadata({"a": ["(requested_metadata['x'])"]})
    assert not uses_requested_metadata({"a": ["(metadata['x'])", "requested_metadata"]})


def test_structures_are_evaluated_keys_included():
    assert evaluate_structure({"'k_{size_index}'.format(**metadata)": ["(1+1)", {"x": "(metadata['tda'])"}]},
                              Env(META)) == {"k_3": [2, {"x": "tls"}]}


# ---------------------------------------------------------------------- what is rejected, and why
@pytest.mark.parametrize("text, reason", [
    ("(__import__('os').system('true'))", "name '__import__' is not allowed"),
    ("(().__class__.__bases__[0].__subclasses__())", "no names starting with '_'"),
    ("(metadata.__class__)", "attribute '__class__' is not allowed"),
    ("(constants._members)", "attribute '_members' is not allowed"),
    ("('{0.__class__}'.format(1))", "no attribute access"),
    ("('{0.real}'.format(1))", "no attribute access"),
    ("('{:>99999999}'.format(1))", "format width 99999999 exceeds"),
    ("('{:{w}}'.format(1, w=5))", "nested fields"),
    ("(lambda: 1)", "lambda is not allowed"),
    ("([x for x in [1]])", "comprehensions are not allowed"),
    ("({x: 1 for x in [1]})", "comprehensions are not allowed"),
    ("(sum(x for x in [1]))", "generator expressions are not allowed"),
    ("((y := 3))", "assignment (:=) is not allowed"),
    ("(f'{metadata}')", "f-strings are not allowed"),
    ("('%s' % 'x')", "'%' formatting of strings is not allowed"),
    ("(open('/etc/passwd'))", "name 'open' is not allowed"),
    ("(eval('1'))", "name 'eval' is not allowed"),
    ("(getattr(metadata, 'keys'))", "name 'getattr' is not allowed"),
    ("(globals())", "name 'globals' is not allowed"),
    ("(os)", "name 'os' is not defined"),
    ("('a' * 10 ** 9)", "more than 100000"),
    ("(10 ** 10 ** 8)", "exceeds 100000 bits"),
    ("(pow(7, 10 ** 9))", "exceeds 100000 bits"),
    ("([0] * 10 ** 7)", "more than 100000"),
    ("(('a' * 1000).replace('', 'b' * 1000))", "replace would make more than"),
    ("(metadata.pop('size'))", "has no allowed attribute 'pop'"),
    ("(metadata.items())", "has no allowed attribute 'items'"),
    ("(random.seed(1))", "random has no attribute 'seed'"),
    ("(random.random)", "not data"),
    ("(math)", "not data"),
    ("(1/0)", "ZeroDivisionError"),
    ("(metadata['nope'])", "no key 'nope'"),
    ("(requested_metadata['transit_detection']['sde'])", "no key 'sde'"),
    ("(metadata['size'](1))", "can be called"),
    ("(constants.Rearth(1))", "a float cannot be called"),
    ("(abs(x=1))", "keyword arguments are not allowed"),
    ("(min(*[1, 2]))", "*-unpacking"),
    ("(1 +)", "not valid Python syntax"),
    ("(yield 1)", "yield"),
    ("(b'abc')", "is not allowed"),
])
def test_rejected_expressions_name_the_expression_and_the_reason(text, reason):
    with pytest.raises(ExpressionError) as info:
        ev(text)
    message = str(info.value)
    assert text.strip()[:30] in message or repr(text.strip())[:30] in message
    if reason:
        assert reason in message


def test_size_limits():
    with pytest.raises(ExpressionError, match=f"the limit is {MAX_CHARS}"):
        ev("(" + "1+" * MAX_CHARS + "1)")
    with pytest.raises(ExpressionError, match=f"more than {MAX_NODES} parts"):
        ev("(" + "+".join(["1"] * (MAX_NODES // 2)) + ")")
    with pytest.raises(ExpressionError, match="syntax|nested"):
        ev("(" * 300 + "1" + ")" * 300)


# ---------------------------------------------------------------------- nothing ever executes
MARKER_CODE = [
    "__import__('pathlib').Path({m!r}).touch()", "open({m!r}, 'w')", "exec('open({m!r},\"w\")')",
    "().__class__.__base__.__subclasses__()", "[c for c in ().__class__.__base__.__subclasses__()]",
    "(lambda: open({m!r}, 'w'))()", "'{{0.__init__.__globals__}}'.format(metadata)",
    "metadata.__class__.__init__", "getattr(constants, '__dict__')", "random.__dict__",
    "breakpoint()", "compile('1', 'x', 'eval')", "vars()", "type(1)", "object.__subclasses__()",
]
FRAGMENTS = ["metadata", "requested_metadata", "constants", "random", "math", ".", "__class__", "__globals__",
             "__import__", "(", ")", "[", "]", "'a'", "'{0}'", ".format", "**", "*", "+", "1", "0.5",
             "lambda x: x", " for ", " in ", " if ", " else ", ",", ":", "=", "open", "'{m}'", "Rearth",
             "['size']", "get", "__subclasses__()", "min", "pow", "10", "not ", " and ", "{", "}"]


@st.composite
def hostile_text(draw, marker: str):
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.sampled_from(MARKER_CODE)).format(m=marker)
    if kind == 1:
        parts = draw(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=14))
        return ("(" + "".join(parts) + ")").replace("{m}", marker)
    if kind == 2:
        return "(" + draw(st.text(max_size=40)) + ")"
    return draw(st.text(max_size=40))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hostile_expressions_fail_cleanly_and_never_run_code(tmp_path, data):
    marker = str(tmp_path / "MARKER")
    text = data.draw(hostile_text(marker))
    modules = set(sys.modules)
    try:
        value = evaluate(text, Env(dict(META), dict(REQUESTED)))
    except ExpressionError as exc:
        assert str(exc)
    else:
        assert value is None or isinstance(value, (str, int, float, bool, list, dict))
    assert not os.path.exists(marker)
    assert set(sys.modules) == modules


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20))
def test_structures_evaluate_or_fail_cleanly(value):
    try:
        evaluate_structure(value, Env(dict(META)))
    except ExpressionError:
        pass


def test_results_are_data_only():
    for text in ("(float('inf'))", "(math.inf)"):
        assert math.isinf(ev(text))            # a number; the compiler rejects it as a parameter
