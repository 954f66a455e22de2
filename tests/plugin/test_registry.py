"""The registry (names, lookups, conflicts, argument checks) and the plugin host that fills it."""

from __future__ import annotations

import sys
import uuid

import pytest
import torch
from torch import nn

import zoo
from zoo.plugin.components import resolve
from zoo.plugin.loading import (
    DEFAULT_PLUGINS,
    PluginHost,
    PluginInfo,
    get_host,
    get_plugin_manager,
    plugin_of,
)
from zoo.plugin.registry import Component, Registry, normalise


class Bump(nn.Module):
    """A tiny activation for plugins defined in these tests: x + offset."""

    def __init__(self, offset: float = 1.0) -> None:
        super().__init__()
        self.offset = offset

    def forward(self, x):
        return x + self.offset


def make_plugin(activations=(), architectures=()):
    """A plugin object registering ``(name, factory, aliases)`` triples of each kind."""

    class Plugin:
        @zoo.hookimpl
        def register_activations(self, register):
            for name, factory, aliases in activations:
                register(name, factory, summary=f"test activation {name}", aliases=aliases)

        @zoo.hookimpl
        def register_architectures(self, register):
            for name, factory, aliases in architectures:
                register(name, factory, summary=f"test architecture {name}", aliases=aliases)

    return Plugin()


def fresh_registry_with(*components):
    registry = Registry()
    for name, aliases in components:
        registry.registrar("activation", "test-plugin")(
            name, Bump, summary=f"{name} summary", aliases=aliases
        )
    return registry


# --- normalisation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("LeakyReLU", "leakyrelu"),
        ("leaky_relu", "leakyrelu"),
        ("leaky-relu", "leakyrelu"),
        ("Leaky-_ReLU", "leakyrelu"),
        ("relu6", "relu6"),
    ],
)
def test_normalise(name, key):
    assert normalise(name) == key


@pytest.mark.parametrize("spelling", ["LeakyReLU", "leaky_relu", "leaky-relu", "leakyrelu"])
def test_global_registry_spellings_are_one_name(spelling):
    module = zoo.create_activation(spelling)
    assert type(module) is nn.LeakyReLU


def test_fresh_registry_spellings_are_one_name():
    registry = fresh_registry_with(("LeakyReLU", ()))
    found = {
        id(registry.get("activation", s))
        for s in ("LeakyReLU", "leaky_relu", "leaky-relu", "leakyrelu", "LEAKYRELU")
    }
    assert len(found) == 1
    component = registry.get("activation", "leaky_relu")
    assert component.name == "LeakyReLU"  # the registered spelling is kept for display
    assert component.plugin == "test-plugin"
    assert component.summary == "LeakyReLU summary"


def test_kinds_are_separate_tables():
    registry = fresh_registry_with(("thing", ()))
    with pytest.raises(zoo.UnknownComponentError):
        registry.get("architecture", "thing")


# --- unknown names -----------------------------------------------------------------------------


def test_unknown_activation_suggests_close_name():
    with pytest.raises(zoo.UnknownComponentError) as info:
        zoo.create_activation("leakyrelu2")
    error = info.value
    message = str(error)
    assert "did you mean 'leakyrelu'" in message.lower()
    assert "zoo list activations" in message
    assert "'leakyrelu2'" in message
    assert error.suggestions == ["leakyrelu"]
    assert error.kind == "activation"
    assert error.name == "leakyrelu2"


def test_unknown_without_close_match_has_no_suggestion():
    with pytest.raises(zoo.UnknownComponentError) as info:
        zoo.create_activation("xyzzyqwerty")
    assert info.value.suggestions == []
    assert "did you mean" not in str(info.value).lower()
    assert "zoo list activations" in str(info.value)


def test_suggestion_through_alias_names_the_component():
    with pytest.raises(zoo.UnknownComponentError) as info:
        zoo.create_activation("swishh")
    suggestions = info.value.suggestions
    assert suggestions[0] == "silu"  # the alias 'swish' is closest; its component is suggested
    assert "swish" not in suggestions
    assert len(suggestions) == len(set(suggestions))


def test_unknown_architecture_message_names_its_kind():
    with pytest.raises(zoo.UnknownComponentError) as info:
        zoo.create_model("mlpp", input_shape=(1, 28, 28), num_classes=10)
    assert "'mlp'" in str(info.value)
    assert "zoo list architectures" in str(info.value)


def test_unknown_is_a_usage_error():
    with pytest.raises(zoo.ZooUsageError):
        zoo.create_activation("nope-not-here")


def test_fresh_registry_suggestions():
    registry = fresh_registry_with(("snake", ()), ("shake", ()), ("relu", ()))
    with pytest.raises(zoo.UnknownComponentError) as info:
        registry.get("activation", "snak")
    assert "snake" in info.value.suggestions
    assert "relu" not in info.value.suggestions


# --- conflicts ---------------------------------------------------------------------------------


def add_plugin(host, plugin, name, *, strict=True):
    """Add ``plugin`` to ``host`` as a local plugin called ``name``."""
    return host.add(plugin, PluginInfo(name, "local"), strict=strict)


def assert_duplicate(error, *plugins):
    """A conflict error: it comes from a DuplicateComponentError and names every plugin."""
    chain = [error, error.__cause__]
    assert any(isinstance(e, zoo.DuplicateComponentError) for e in chain), repr(error)
    for plugin in plugins:
        assert repr(plugin) in str(error)


def test_duplicate_name_names_both_plugins_and_leaves_nothing_half_registered():
    host = PluginHost()
    add_plugin(host, make_plugin(activations=[("Snake", Bump, ())]), "plugin-a")
    plugin_b = make_plugin(
        activations=[("wiggle", Bump, ()), ("snake", Bump, ())],
        architectures=[("b-net", Bump, ())],
    )
    with pytest.raises(zoo.ZooError) as info:
        add_plugin(host, plugin_b, "plugin-b")
    assert_duplicate(info.value, "plugin-a", "plugin-b")
    # plugin-b's registration made before the conflict is rolled back
    with pytest.raises(zoo.UnknownComponentError):
        host.registry.get("activation", "wiggle")
    with pytest.raises(zoo.UnknownComponentError):
        host.registry.get("architecture", "b-net")
    assert not host.plugin_manager.has_plugin("plugin-b")
    assert "plugin-b" not in host.plugins
    # plugin-a is untouched
    assert host.registry.get("activation", "snake").plugin == "plugin-a"
    assert [c.name for c in host.registry.components("activation")] == ["Snake"]
    assert list(host.plugins) == ["plugin-a"]


def test_duplicate_via_alias():
    host = PluginHost()
    add_plugin(host, make_plugin(activations=[("Snake", Bump, ())]), "plugin-a")
    with pytest.raises(zoo.ZooError) as info:
        add_plugin(host, make_plugin(activations=[("serpent", Bump, ("s-n-a-k-e",))]), "plugin-b")
    assert_duplicate(info.value, "plugin-a", "plugin-b")
    with pytest.raises(zoo.UnknownComponentError):
        host.registry.get("activation", "serpent")
    assert host.registry.get("activation", "snake").plugin == "plugin-a"


def test_alias_taking_an_existing_name_is_refused_even_if_its_own_name_is_new():
    host = PluginHost()
    add_plugin(host, make_plugin(activations=[("serpent", Bump, ("snake",))]), "plugin-a")
    with pytest.raises(zoo.ZooError) as info:
        add_plugin(host, make_plugin(activations=[("Snake", Bump, ())]), "plugin-b")
    assert_duplicate(info.value, "plugin-a", "plugin-b")


def test_conflict_in_a_later_kind_rolls_back_earlier_kinds():
    host = PluginHost()
    add_plugin(host, make_plugin(architectures=[("net", Bump, ())]), "plugin-a")
    plugin_b = make_plugin(activations=[("wiggle", Bump, ())], architectures=[("NET", Bump, ())])
    with pytest.raises(zoo.ZooError) as info:
        add_plugin(host, plugin_b, "plugin-b")
    assert_duplicate(info.value, "plugin-a", "plugin-b")
    assert host.registry.components("activation") == []
    assert host.registry.get("architecture", "net").plugin == "plugin-a"


def test_failed_plugin_name_can_be_reused():
    host = PluginHost()
    add_plugin(host, make_plugin(activations=[("snake", Bump, ())]), "plugin-a")
    with pytest.raises(zoo.ZooError):
        add_plugin(host, make_plugin(activations=[("snake", Bump, ())]), "plugin-b")
    add_plugin(host, make_plugin(activations=[("viper", Bump, ())]), "plugin-b")
    assert host.registry.get("activation", "viper").plugin == "plugin-b"
    assert host.plugins["plugin-b"].registered["activations"] == ["viper"]


def test_lenient_conflict_keeps_the_first_registration(capsys):
    host = PluginHost()
    add_plugin(host, make_plugin(activations=[("Snake", Bump, ())]), "plugin-a")
    plugin_b = make_plugin(activations=[("snake", nn.Tanh, ()), ("wiggle", nn.ReLU, ())])
    info = add_plugin(host, plugin_b, "plugin-b", strict=False)
    assert host.registry.get("activation", "snake").plugin == "plugin-a"
    assert host.registry.get("activation", "snake").build({}).__class__ is Bump
    assert host.registry.get("activation", "wiggle").plugin == "plugin-b"
    assert info.registered["activations"] == ["wiggle"]
    (rejected,) = info.rejected
    assert "'plugin-a'" in rejected
    assert "'plugin-b'" in rejected
    warning = capsys.readouterr().err
    assert "warning" in warning
    assert "'plugin-a'" in warning
    assert "'plugin-b'" in warning


def test_plugin_name_registered_twice():
    host = PluginHost()
    add_plugin(host, make_plugin(activations=[("snake", Bump, ())]), "plugin-a")
    with pytest.raises(zoo.PluginError, match="'plugin-a'"):
        add_plugin(host, make_plugin(activations=[("viper", Bump, ())]), "plugin-a")
    with pytest.raises(zoo.UnknownComponentError):
        host.registry.get("activation", "viper")


def test_registered_components_are_recorded_per_plugin():
    host = PluginHost()
    info = add_plugin(
        host,
        make_plugin(activations=[("snake", Bump, ("serpent",))], architectures=[("net", Bump, ())]),
        "plugin-a",
    )
    assert host.plugins["plugin-a"] is info
    assert info.status == "loaded"
    assert info.registered["activations"] == ["snake"]
    assert info.registered["architectures"] == ["net"]
    assert not any(info.registered[kind] for kind in info.registered if kind not in
                   ("activations", "architectures"))  # fmt: skip
    assert info.source == "local"


# --- invalid plugins ---------------------------------------------------------------------------


class MisspelledHook:
    @zoo.hookimpl
    def register_activation(self, register):  # the hook is register_activations
        register("snake", Bump, summary="x")


class ExtraArgument:
    @zoo.hookimpl
    def register_activations(self, register, device):
        register("snake", Bump, summary="x")


@pytest.mark.parametrize("plugin", [MisspelledHook(), ExtraArgument()], ids=["misspelled", "extra"])
def test_invalid_hook_is_rejected(plugin):
    host = PluginHost()
    with pytest.raises(zoo.PluginError, match="'bad-plugin'"):
        add_plugin(host, plugin, "bad-plugin")
    assert "bad-plugin" not in host.plugins
    assert not host.plugin_manager.has_plugin("bad-plugin")
    assert host.registry.components("activation") == []
    # the host still works afterwards
    add_plugin(host, make_plugin(activations=[("snake", Bump, ())]), "good-plugin")
    assert host.registry.get("activation", "snake").plugin == "good-plugin"


@pytest.mark.parametrize("plugin", [MisspelledHook(), ExtraArgument()], ids=["misspelled", "extra"])
def test_invalid_hook_is_skipped_when_lenient(plugin, capsys):
    host = PluginHost()
    info = add_plugin(host, plugin, "bad-plugin", strict=False)
    assert info.status == "failed"
    assert host.plugins["bad-plugin"].status == "failed"
    assert not host.plugin_manager.has_plugin("bad-plugin")
    assert host.registry.components("activation") == []
    assert "'bad-plugin'" in capsys.readouterr().err


def test_misspelled_hook_error_names_the_hook():
    with pytest.raises(zoo.PluginError) as info:
        add_plugin(PluginHost(), MisspelledHook(), "bad-plugin")
    assert "register_activation" in str(info.value)


@pytest.mark.parametrize("factory", ["not-a-reference", 42, "module:"])
def test_invalid_factory_is_a_plugin_error(factory):
    host = PluginHost()
    with pytest.raises(zoo.PluginError, match="'bad-plugin'"):
        add_plugin(host, make_plugin(activations=[("snake", factory, ())]), "bad-plugin")
    assert host.registry.components("activation") == []
    assert "bad-plugin" not in host.plugins


def test_registry_refuses_empty_name():
    with pytest.raises(ValueError, match="no name"):
        Registry().registrar("activation", "p")("  ", Bump, summary="x")


# --- lazy "module:attribute" factories ---------------------------------------------------------

LAZY_MODULE_SOURCE = """
from torch import nn


class Lazy(nn.Module):
    def forward(self, x):
        return x * 3


class Namespace:
    Lazy = Lazy
"""


@pytest.fixture
def lazy_module(tmp_path, monkeypatch):
    """The name of a module file on sys.path that nothing has imported yet."""
    name = f"zoo_test_lazy_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(LAZY_MODULE_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert name not in sys.modules
    yield name
    sys.modules.pop(name, None)


def test_string_factory_is_imported_only_when_built(lazy_module):
    host = PluginHost()
    plugin = make_plugin(
        activations=[
            ("lazy", f"{lazy_module}:Lazy", ()),
            ("lazy-nested", f"{lazy_module}:Namespace.Lazy", ()),
        ]
    )
    add_plugin(host, plugin, "lazy-plugin")
    component = host.registry.get("activation", "lazy")
    assert [c.name for c in host.registry.components("activation", "lazy*")] == [
        "lazy",
        "lazy-nested",
    ]
    assert component.target == f"{lazy_module}:Lazy"
    assert lazy_module not in sys.modules

    module = component.build({})
    assert lazy_module in sys.modules
    assert type(module) is sys.modules[lazy_module].Lazy
    assert host.registry.get("activation", "lazy-nested").build({}).__class__ is type(module)


def test_string_factory_through_global_registry(lazy_module):
    name = zoo.register_plugin(
        make_plugin(activations=[("zoo-test-lazy", f"{lazy_module}:Lazy", ())]), "test-lazy"
    )
    try:
        assert [c.name for c in zoo.list_activations("zoo-test-lazy")] == ["zoo-test-lazy"]
        assert lazy_module not in sys.modules
        module = zoo.create_activation("zoo_test_lazy")
        assert lazy_module in sys.modules
        assert module(torch.ones(2)).tolist() == [3.0, 3.0]
    finally:
        zoo.unregister_plugin(name)


def builtin_activations():
    """The torch.nn activations of the built-in plugin `activations`."""
    return [c for c in zoo.list_activations() if c.plugin == "activations"]


def test_builtin_activations_are_references():
    builtin = builtin_activations()
    assert builtin
    # lazy references (imported when built): torch.nn's classes, and the architecture's default
    references = ("torch.nn:", "zoo.plugins.activations:")
    assert all(isinstance(c.target, str) and c.target.startswith(references) for c in builtin)


# --- listing with patterns ---------------------------------------------------------------------


def test_list_all_is_sorted_and_unique():
    names = [c.name for c in zoo.list_activations()]
    assert names == sorted(names, key=normalise)
    assert len(names) == len(set(names))
    assert {"relu", "leakyrelu", "sigmoid", "tanh", "silu"} <= set(names)
    assert "swish" not in names  # an alias is not listed as its own component


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("swish*", ["silu"]),
        ("SWISH", ["silu"]),
        ("leaky*", ["leakyrelu"]),
        ("LEAKY_*", ["leakyrelu"]),
        ("Leaky-ReLU", ["leakyrelu"]),
        ("*relu*", ["leakyrelu", "prelu", "relu", "relu6", "squared_relu", "star_relu"]),
        ("relu?", ["relu6"]),
        ("?elu", ["celu", "gelu", "relu", "selu"]),
        ("[cs]elu", ["celu", "selu"]),
        ("nothing*", []),
    ],
)
def test_list_activations_pattern(pattern, expected):
    assert [c.name for c in zoo.list_activations(pattern)] == expected


def test_list_activations_character_range():
    # fnmatch ranges such as [f-h] must keep their '-': gelu starts with g.
    assert [c.name for c in zoo.list_activations("[f-h]*")] == [
        "gelu",
        "gelu_tanh",
        "hard_mish",
        "hardsigmoid",
        "hardswish",
    ]


def test_fresh_registry_pattern_matches_aliases():
    registry = fresh_registry_with(("Snake", ("serpent", "python_snake")), ("viper", ()))
    assert [c.name for c in registry.components("activation")] == ["Snake", "viper"]
    assert [c.name for c in registry.components("activation", "SERP*")] == ["Snake"]
    assert [c.name for c in registry.components("activation", "python-*")] == ["Snake"]
    assert [c.name for c in registry.components("activation", "*e*")] == ["Snake", "viper"]
    assert registry.components("architecture") == []


def test_list_architectures_and_datasets():
    assert "mlp" in [c.name for c in zoo.list_architectures()]
    assert [c.name for c in zoo.list_architectures("ML*")] == ["mlp"]
    assert [c.name for c in zoo.list_datasets("mnist")] == ["mnist"]


# --- argument checking -------------------------------------------------------------------------


def test_unknown_argument_names_component_argument_and_accepted_ones():
    with pytest.raises(zoo.ComponentSpecError) as info:
        zoo.create_activation("leakyrelu:slope=0.2")
    message = str(info.value)
    assert "'leakyrelu'" in message
    assert "'slope'" in message
    assert "negative_slope" in message
    assert "inplace" in message
    assert info.value.kind == "activation"


def test_unknown_argument_for_component_without_arguments_fails_when_built():
    with pytest.raises(zoo.ComponentSpecError) as info:
        zoo.create_activation("sigmoid:alpha=1")
    assert "'sigmoid'" in str(info.value)
    assert "'alpha'" in str(info.value)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "logsigmoid"])
def test_unknown_argument_for_component_without_arguments_fails_when_resolved(name):
    # zoo.train resolves every spec "before anything slow happens": the check must not wait
    # until the module is built. These classes have no __init__ of their own.
    with pytest.raises(zoo.ComponentSpecError) as info:
        resolve("activation", f"{name}:alpha=1")
    assert "'alpha'" in str(info.value)
    assert "no arguments" in str(info.value)


def test_unknown_argument_given_as_keyword():
    with pytest.raises(zoo.ComponentSpecError, match="'slope'"):
        zoo.create_activation("leakyrelu", slope=0.2)


def test_wrong_type_names_the_argument():
    with pytest.raises(zoo.ComponentSpecError) as info:
        zoo.create_activation("leakyrelu:negative_slope='abc'")
    message = str(info.value)
    assert "'negative_slope'" in message
    assert "float" in message
    assert "'abc'" in message


@pytest.mark.parametrize("value", ["True", "(0.1,)", "None"])
def test_other_wrong_types_are_refused(value):
    with pytest.raises(zoo.ComponentSpecError, match="'negative_slope'"):
        zoo.create_activation(f"leakyrelu:negative_slope={value}")


def test_int_is_accepted_for_float():
    module = zoo.create_activation("leakyrelu:negative_slope=1")
    assert module.negative_slope == 1


def test_float_is_refused_for_int():
    with pytest.raises(zoo.ComponentSpecError, match="'num_parameters'"):
        zoo.create_activation("prelu:num_parameters=1.0")


@pytest.mark.parametrize("spec", ["mlp:act=relu", "mlp:num_classes=3", "mlp:input_shape=(1,2,2)"])
def test_reserved_architecture_arguments_are_refused(spec):
    with pytest.raises(zoo.ComponentSpecError, match="set by zoo itself"):
        zoo.create_model(spec, input_shape=(1, 28, 28), num_classes=10)


@pytest.mark.parametrize("spec", ["mnist:batch_size=3", "mnist:data_dir='x'"])
def test_reserved_dataset_arguments_are_refused(spec):
    with pytest.raises(zoo.ComponentSpecError, match="set by zoo itself"):
        zoo.create_datamodule(spec)


def test_reserved_arguments_are_not_listed_as_parameters():
    mlp = zoo.list_architectures("mlp")[0]
    assert list(mlp.parameters()) == ["hidden", "dropout"]


def test_component_checks_annotated_types_directly():
    def factory(alpha: float = 1.0, mode: str = "a", sizes: tuple[int, ...] = ()):
        return (alpha, mode, sizes)

    component = Component("activation", "f", factory, "s", "p")
    component.check_arguments({"alpha": 2, "mode": "b", "sizes": (1, 2)})
    assert component.build({"alpha": 2}) == (2, "a", ())
    with pytest.raises(zoo.ComponentSpecError, match="'sizes'"):
        component.check_arguments({"sizes": (1, "x")})
    with pytest.raises(zoo.ComponentSpecError, match="'mode'"):
        component.check_arguments({"mode": 3})


def test_factory_taking_kwargs_accepts_any_argument():
    def factory(**kwargs):
        return kwargs

    component = Component("activation", "f", factory, "s", "p")
    assert component.build({"anything": 1}) == {"anything": 1}


# --- research plugins in the global registry ---------------------------------------------------


class ResearchPlugin:
    @zoo.hookimpl
    def register_activations(self, register):
        register("zoo-test-bump", Bump, summary="x + offset", aliases=("zoo-test-shift",))


@pytest.fixture
def research_plugin():
    name = zoo.register_plugin(ResearchPlugin(), "zoo-test-research")
    try:
        yield name
    finally:
        if name in get_host().plugins:
            zoo.unregister_plugin(name)


def test_registered_plugin_components_are_usable(research_plugin):
    assert research_plugin == "zoo-test-research"
    module = zoo.create_activation("zoo_test_bump:offset=2")
    assert isinstance(module, Bump)
    assert module.offset == 2
    assert isinstance(zoo.create_activation("ZOO-TEST-SHIFT"), Bump)
    (component,) = zoo.list_activations("zoo-test-*")
    assert component.plugin == "zoo-test-research"
    assert plugin_of("zoo-test-research").source == "local"


def test_registered_plugin_arguments_are_checked(research_plugin):
    with pytest.raises(zoo.ComponentSpecError, match="'offset'"):
        zoo.create_activation("zoo-test-bump:offset='far'")


def test_unregistered_plugin_components_are_unknown(research_plugin):
    zoo.unregister_plugin(research_plugin)
    with pytest.raises(zoo.UnknownComponentError):
        zoo.create_activation("zoo-test-bump")
    with pytest.raises(zoo.UnknownComponentError):
        zoo.create_activation("zoo-test-shift")
    assert zoo.list_activations("zoo-test-*") == []
    assert research_plugin not in get_host().plugins
    assert not get_plugin_manager().has_plugin(research_plugin)
    # built-ins are untouched
    assert isinstance(zoo.create_activation("relu"), nn.ReLU)


def test_plugin_can_be_registered_again_after_unregistering(research_plugin):
    zoo.unregister_plugin(research_plugin)
    name = zoo.register_plugin(ResearchPlugin(), research_plugin)
    assert name == research_plugin
    assert isinstance(zoo.create_activation("zoo-test-bump"), Bump)


def test_register_plugin_default_name():
    plugin = ResearchPlugin()
    name = zoo.register_plugin(plugin)
    try:
        assert name.startswith("ResearchPlugin-")
        assert name in get_host().plugins
        assert isinstance(zoo.create_activation("zoo-test-bump"), Bump)
    finally:
        zoo.unregister_plugin(name)
    with pytest.raises(zoo.UnknownComponentError):
        zoo.create_activation("zoo-test-bump")


def test_research_plugin_conflicting_with_builtin_is_refused():
    before = [c.name for c in zoo.list_activations()]
    builtin_plugin = zoo.list_activations("relu")[0].plugin
    plugin = make_plugin(activations=[("zoo-test-ok", Bump, ()), ("Re_LU", Bump, ())])
    try:
        with pytest.raises(zoo.ZooError) as info:
            zoo.register_plugin(plugin, "zoo-test-conflict")
        assert_duplicate(info.value, builtin_plugin, "zoo-test-conflict")
        assert [c.name for c in zoo.list_activations()] == before
        assert isinstance(zoo.create_activation("relu"), nn.ReLU)
        assert "zoo-test-conflict" not in get_host().plugins
    finally:
        if "zoo-test-conflict" in get_host().plugins:
            zoo.unregister_plugin("zoo-test-conflict")


def test_unregister_unknown_plugin():
    with pytest.raises(zoo.PluginError, match="'zoo-test-never-registered'"):
        zoo.unregister_plugin("zoo-test-never-registered")


def test_builtin_plugins_are_loaded():
    builtin = [info for info in zoo.list_plugins() if info.source == "built-in"]
    assert len(builtin) == len(DEFAULT_PLUGINS)
    assert all(info.status == "loaded" for info in builtin)
    registered = {c.plugin for c in builtin_activations()}
    assert len(registered) == 1
    (activations,) = [info for info in builtin if info.name in registered]
    assert sorted(activations.registered["activations"]) == sorted(
        c.name for c in builtin_activations()
    )
