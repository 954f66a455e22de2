"""The component spec parser: ``NAME`` or ``NAME:key=value,...`` with Python-literal values."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zoo import ComponentSpec, ComponentSpecError, parse_spec

# --- valid specs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "kwargs"),
    [
        ("relu", "relu", {}),
        ("  relu  ", "relu", {}),
        ("LeakyReLU", "LeakyReLU", {}),
        ("leakyrelu:negative_slope=0.2", "leakyrelu", {"negative_slope": 0.2}),
        (" leakyrelu : negative_slope = 0.2 ", "leakyrelu", {"negative_slope": 0.2}),
        ("x:a=1,b=2.5,c='s'", "x", {"a": 1, "b": 2.5, "c": "s"}),
        ("x:a=-1,b=-2.5,c=-0.0", "x", {"a": -1, "b": -2.5, "c": -0.0}),
        ("x:a=True,b=False,c=None", "x", {"a": True, "b": False, "c": None}),
        ("x:a=1e-3", "x", {"a": 0.001}),
        ('x:s="double"', "x", {"s": "double"}),
        ("x:d={'k':(1,2)}", "x", {"d": {"k": (1, 2)}}),
        ("x:a=()", "x", {"a": ()}),
    ],
)
def test_valid_specs(text, name, kwargs):
    spec = parse_spec(text)
    assert spec == ComponentSpec(name, kwargs)
    assert list(spec.kwargs) == list(kwargs)  # argument order is kept


def test_values_keep_their_literal_types():
    spec = parse_spec("x:i=3,f=3.0,b=True,n=None,s='3',t=(3,),l=[3]")
    assert [type(v) for v in spec.kwargs.values()] == [
        int,
        float,
        bool,
        type(None),
        str,
        tuple,
        list,
    ]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("data:split=balanced", "balanced"),
        ("data:split=by_class", "by_class"),
        ("data:root=some/dir.v2-final", "some/dir.v2-final"),
        ("data:flag=true", "true"),  # not Python's True: a bare word, so a string
    ],
)
def test_bare_words_are_strings(text, value):
    (parsed,) = parse_spec(text).kwargs.values()
    assert parsed == value
    assert isinstance(parsed, str)


def test_tuple_value_does_not_split():
    assert parse_spec("mlp:hidden=(256,128)") == ComponentSpec("mlp", {"hidden": (256, 128)})


def test_commas_inside_brackets_and_quotes_do_not_split():
    spec = parse_spec("x:a=(1,2),b='c,d',c=[1,[2,3]]")
    assert spec == ComponentSpec("x", {"a": (1, 2), "b": "c,d", "c": [1, [2, 3]]})


def test_commas_inside_dict_and_double_quotes_do_not_split():
    spec = parse_spec('x:d={"a,b": [1, 2], "c": (3,)},s="e,f"')
    assert spec.kwargs == {"d": {"a,b": [1, 2], "c": (3,)}, "s": "e,f"}


def test_escaped_quote_inside_string():
    assert parse_spec(r"x:s='it\'s,ok',n=1").kwargs == {"s": "it's,ok", "n": 1}


def test_brackets_inside_quotes_are_ignored():
    assert parse_spec("x:s='(]',n=1").kwargs == {"s": "(]", "n": 1}


def test_component_spec_passes_through_unchanged():
    spec = ComponentSpec("relu", {"inplace": True})
    assert parse_spec(spec) is spec


def test_with_kwargs_adds_and_overrides():
    spec = ComponentSpec("leakyrelu", {"negative_slope": 0.2, "inplace": False})
    updated = spec.with_kwargs(negative_slope=0.3)
    assert updated == ComponentSpec("leakyrelu", {"negative_slope": 0.3, "inplace": False})
    assert spec.kwargs == {"negative_slope": 0.2, "inplace": False}  # the original is unchanged


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "has no name"),
        ("   ", "has no name"),
        (":a=1", "has no name"),
        ("x:a", "is not key=value"),
        ("x:a=1,b", "'b' is not key=value"),
        ("x:1a=2", "'1a=2' is not key=value"),
        ("x:a-b=2", "is not key=value"),
        ("x:=2", "is not key=value"),
        ("x:a=1,a=2", "argument 'a' is given twice"),
        ("x:a=1)", "unbalanced ')'"),
        ("x:a=(1]", "unbalanced ']'"),
        ("x:a=(1", "unclosed bracket"),
        ("x:a=[1,(2]", "unbalanced"),
        ("x:a='b", "unclosed '"),
        ('x:a="b', 'unclosed "'),
        ("x:a=1,", "stray comma"),
        ("x:,a=1", "stray comma"),
        ("x:a=1,,b=2", "stray comma"),
        ("x:", "stray comma"),
        ("x:a=1+", "not a Python literal"),
        ("x:a=foo()", "not a Python literal"),
        ("x:a=__import__('os')", "not a Python literal"),
        ("x:a=1 2", "not a Python literal"),
    ],
)
def test_invalid_specs(text, message):
    with pytest.raises(ComponentSpecError) as info:
        parse_spec(text)
    assert message in str(info.value)


def test_non_literal_error_names_key_and_value():
    with pytest.raises(ComponentSpecError) as info:
        parse_spec("act:alpha=1+")
    message = str(info.value)
    assert "'alpha'" in message
    assert "'1+'" in message


def test_error_quotes_the_spec():
    with pytest.raises(ComponentSpecError) as info:
        parse_spec("leakyrelu:negative_slope=0.2,negative_slope=0.3")
    assert "leakyrelu:negative_slope=0.2,negative_slope=0.3" in str(info.value)


@pytest.mark.parametrize("value", [None, 3, ["relu"], b"relu"])
def test_non_string_spec_is_rejected(value):
    with pytest.raises(ComponentSpecError, match="must be a string"):
        parse_spec(value)


def test_spec_error_is_a_value_error():
    # The CLI and callers may catch ValueError; ComponentSpecError must stay one.
    with pytest.raises(ValueError):
        parse_spec("x:a")


# --- round trip --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        ComponentSpec("relu"),
        ComponentSpec("leakyrelu", {"negative_slope": 0.2}),
        ComponentSpec("mlp", {"hidden": (256, 128), "bias": True}),
        ComponentSpec("data", {"split": "balanced", "root": None, "s": "a,b'c\"d"}),
        ComponentSpec("x", {"nested": [1, [2, (3,)]], "neg": -1, "d": {"k": "v"}}),
    ],
)
def test_str_round_trips(spec):
    text = str(spec)
    assert parse_spec(text) == spec
    assert str(parse_spec(text)) == text


def test_str_format():
    assert str(ComponentSpec("relu")) == "relu"
    spec = ComponentSpec("leakyrelu", {"negative_slope": 0.2, "tag": "a"})
    assert str(spec) == "leakyrelu:negative_slope=0.2,tag='a'"


IDENTIFIERS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
INTS = st.integers(min_value=-(10**30), max_value=10**30)
LITERALS = st.one_of(
    INTS,
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.text(max_size=20),
    st.lists(INTS, max_size=5).map(tuple),
    st.lists(INTS, max_size=5),
)


@given(name=IDENTIFIERS, kwargs=st.dictionaries(IDENTIFIERS, LITERALS, max_size=6))
def test_property_str_round_trips(name, kwargs):
    spec = ComponentSpec(name, kwargs)
    parsed = parse_spec(str(spec))
    assert parsed == spec
    # ``==`` does not tell True from 1 or 0.0 from -0.0; the reprs do.
    assert repr(parsed.kwargs) == repr(kwargs)
    for value in parsed.kwargs.values():
        if isinstance(value, float):
            assert math.isfinite(value)


SPEC_ALPHABET = st.sampled_from(list("ab_1-.:=,()[]{}'\"\\ +x9\t\n"))
SPEC_LIKE_TEXT = st.text(alphabet=SPEC_ALPHABET, max_size=30)


@given(text=st.one_of(st.text(max_size=40), SPEC_LIKE_TEXT, SPEC_LIKE_TEXT.map("x:".__add__)))
def test_property_parse_never_raises_anything_else(text):
    try:
        result = parse_spec(text)
    except ComponentSpecError:
        return
    assert isinstance(result, ComponentSpec)
    assert result.name
    assert result.name == result.name.strip()
