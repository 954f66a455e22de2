"""The gates on third-party internals in zoo/_compat (ray, wandb, timm): on the installed versions
each internal is there as assumed and gives what the public API gives; on a version not checked,
each falls back to the public behaviour. (A local Ray listening on the loopback only is shown
from the OS's socket table in tests/comparison/test_launchers.py; the Lightning internals are in
tests/training/test_lightning_internals.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from zoo._compat import ray as ray_compat
from zoo._compat import timm as timm_compat
from zoo._compat import wandb as wandb_compat


def test_the_gates_read_versions_as_major_minor() -> None:
    assert ray_compat.checked("2.60.1") and not ray_compat.checked("2.61.0")
    assert timm_compat.checked("1.0.31+local") and not timm_compat.checked("1.1.0")
    assert wandb_compat.checked({"lightning": "2.6.6", "wandb": "0.31.2"})
    assert not wandb_compat.checked({"lightning": "2.7.0", "wandb": "0.31.2"})
    assert not wandb_compat.checked({"lightning": "2.6.6"})  # W&B not installed


def test_importing_the_gates_imports_no_library() -> None:
    code = (
        "import sys\n"
        "from zoo._compat import ray, timm, wandb\n"
        "ray.checked(); timm.checked(); wandb.checked()\n"
        "print(sorted(m for m in ('ray', 'timm', 'wandb', 'torch', 'lightning') "
        "if m in sys.modules))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert completed.stdout.strip() == "[]"


# -- timm --------------------------------------------------------------------------------------


def test_timm_models_read_from_source_are_timms_list() -> None:
    timm = pytest.importorskip("timm")
    assert timm_compat.checked(), f"timm {timm.__version__}: check the source reads, then add it"
    models = timm_compat.timm_registry("models")
    assert models is not None and set(models) == set(timm.list_models())
    assert models["resnet18"] == "resnet"


def test_timm_optimizers_read_from_source_are_timms_registry() -> None:
    timm_optim = pytest.importorskip("timm.optim")
    infos = timm_compat.timm_registry("optimizers")
    assert infos is not None and set(infos) == set(timm_optim.list_optimizers())
    for name, info in infos.items():
        public = timm_optim.get_optimizer_info(name)
        assert info["description"] == public.description, name
        assert bool(info.get("second_order")) == public.second_order, name
        if isinstance(public.opt_class, str):
            assert info.get("opt_class") == public.opt_class, name


def test_timm_unchecked_or_unreadable_falls_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="unknown timm registry"):
        timm_compat.timm_registry("schedulers")
    monkeypatch.setattr(timm_compat, "CHECKED_WITH", ())
    assert timm_compat.timm_registry("models") is None
    monkeypatch.setattr(timm_compat, "CHECKED_WITH", ("1.0",))
    monkeypatch.setattr(timm_compat, "installed_version", lambda: "1.0.0")
    monkeypatch.setattr(timm_compat, "_timm_folders", lambda: iter([tmp_path]))
    (tmp_path / "optim").mkdir()
    (tmp_path / "optim" / "_optim_factory.py").write_text("def broken(:\n")
    assert timm_compat.timm_registry("optimizers") is None  # the caller asks timm
    assert timm_compat.timm_registry("models") is None


def test_the_timm_plugins_ask_timm_where_the_gate_says_no(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timm = pytest.importorskip("timm")
    from zoo.plugins import timm_models, timm_optimizers

    fast = (timm_models.model_names(), timm_optimizers.timm_optimizer_names())
    monkeypatch.setattr(timm_compat, "CHECKED_WITH", ())
    timm_models.model_names.cache_clear()
    timm_optimizers.timm_optimizer_names.cache_clear()
    try:
        slow = (timm_models.model_names(), timm_optimizers.timm_optimizer_names())
    finally:
        timm_models.model_names.cache_clear()
        timm_optimizers.timm_optimizer_names.cache_clear()
    assert set(slow[0]) == set(fast[0]) == set(timm.list_models())
    assert slow[1] == fast[1]


# -- W&B ---------------------------------------------------------------------------------------


def test_lightnings_wandb_logger_keeps_anonymous_none_for_wandb_init(tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    from lightning.pytorch.loggers import WandbLogger

    assert wandb_compat.checked(), f"check {wandb_compat.installed_versions()}, then add them"
    logger = WandbLogger(save_dir=str(tmp_path), offline=True)
    assert logger._wandb_init["anonymous"] is None  # the internal, as assumed
    assert wandb_compat.drop_wandb_anonymous(logger) is True
    assert "anonymous" not in logger._wandb_init
    assert wandb_compat.drop_wandb_anonymous(logger) is False  # once
    assert wandb_compat.drop_wandb_anonymous(object()) is False


def test_wandb_unchecked_leaves_the_logger_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("wandb")
    from lightning.pytorch.loggers import WandbLogger

    monkeypatch.setattr(wandb_compat, "CHECKED_WITH", {"lightning": ("2.6",), "wandb": ()})
    logger = WandbLogger(save_dir=str(tmp_path), offline=True)
    assert wandb_compat.drop_wandb_anonymous(logger) is False
    assert "anonymous" in logger._wandb_init


# -- Ray ---------------------------------------------------------------------------------------


def test_rays_internals_are_there_as_assumed() -> None:
    """Imports Ray's private modules without starting Ray."""
    ray = pytest.importorskip("ray")
    assert ray_compat.checked(), f"Ray {ray.__version__}: rerun the loopback test, then add it"
    from ray._private import ray_constants, services, worker

    assert isinstance(ray_constants.ENABLE_RAY_CLUSTER, bool)
    assert ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR == ray_compat.CLUSTER_SWITCH
    # Ray's node address comes from the switch when not given: the loopback when it is off.
    assert "ENABLE_RAY_CLUSTER" in services.get_node_ip_address.__code__.co_names
    assert callable(services.canonicalize_bootstrap_address)
    assert isinstance(worker._worker_logs_enabled, bool)


def test_loopback_only_sets_the_switch_for_the_start_and_restores_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("ray")
    from ray._private import ray_constants, services

    monkeypatch.setenv(ray_compat.CLUSTER_SWITCH, "1")
    before = ray_constants.ENABLE_RAY_CLUSTER
    with ray_compat.loopback_only() as loopback:
        assert loopback is True
        assert os.environ[ray_compat.CLUSTER_SWITCH] == "0"
        assert ray_constants.ENABLE_RAY_CLUSTER is False
        assert services.get_node_ip_address() == "127.0.0.1"
    assert os.environ[ray_compat.CLUSTER_SWITCH] == "1"
    assert ray_constants.ENABLE_RAY_CLUSTER is before


def test_ray_unchecked_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    from ray._private import worker

    monkeypatch.setattr(ray_compat, "CHECKED_WITH", ())
    monkeypatch.delenv(ray_compat.CLUSTER_SWITCH, raising=False)
    with ray_compat.loopback_only() as loopback:
        assert loopback is False and ray_compat.CLUSTER_SWITCH not in os.environ
    assert ray_compat.auto_address() is None
    with ray_compat.worker_logs_silenced():
        assert worker._worker_logs_enabled is True


def test_worker_logs_silenced_for_the_block_only() -> None:
    pytest.importorskip("ray")
    from ray._private import worker

    with ray_compat.worker_logs_silenced():
        assert worker._worker_logs_enabled is False
    assert worker._worker_logs_enabled is True
