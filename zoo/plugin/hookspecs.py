"""The hooks a lightning-zoo plugin can implement.

A plugin is a module or object with functions marked ``@zoo.hookimpl`` and named after these specs.
Each ``register_*`` hook receives a ``register`` callback; call it once per component::

    @zoo.hookimpl
    def register_activations(register):
        register("snake", Snake, summary="x + sin²(a·x)/a (Ziyin et al. 2020)")

A factory is a callable, or a ``"module:attribute"`` string naming one, imported only when the
component is first built: that keeps ``zoo list`` and ``zoo --help`` free of heavy imports.

A plugin that provides a whole *family* of names, such as every timm model, registers it once as
``PREFIX/*`` with ``members``: a zero-argument callable (or ``"module:attribute"`` string)
returning the member names, or a mapping of member name to summary. Each member ``m`` is then
available as ``PREFIX/m``, and its factory is called with ``m`` as the first positional argument::

    register("timm/*", build_timm, summary="every timm model", members=timm_model_names)
    # --arch timm/resnet18  ->  build_timm("resnet18", act=..., input_shape=..., num_classes=...)

``members`` is called only when a ``PREFIX/...`` name is looked up or a pattern that can match one
is listed, so it should be cheap, and it must not import torch when ``zoo list`` may call it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    import click

PROJECT_NAME = "zoo"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class Register(Protocol):
    """The callback passed to the ``register_*`` hooks."""

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any] | str,
        *,
        summary: str,
        aliases: Iterable[str] = (),
        members: Callable[[], Iterable[str] | Mapping[str, str]] | str | None = None,
    ) -> None:
        """Register ``factory`` under ``name`` (and ``aliases``), shown with ``summary``.

        With ``members``, ``name`` is a family ``PREFIX/*``: ``PREFIX/<member>`` for every member
        it lists, built by ``factory(member, ...)``. Other names may not contain ``/``.
        """


@hookspec
def register_activations(register: Register) -> None:
    """Register activation functions.

    An activation factory takes keyword arguments only (those a spec such as
    ``leakyrelu:negative_slope=0.2`` sets) and returns a fresh ``torch.nn.Module`` on every call.
    """


@hookspec
def register_architectures(register: Register) -> None:
    """Register model architectures.

    An architecture factory is called as ``factory(act=..., input_shape=(C, H, W),
    num_classes=..., **spec_kwargs)`` and returns a ``torch.nn.Module`` mapping a batch of shape
    ``(N, C, H, W)`` to ``(N, num_classes)`` logits or log-probabilities. ``act`` is a
    zero-argument callable returning a fresh activation module: call it once per place the
    architecture needs an activation.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register datasets.

    A dataset factory is called as ``factory(data_dir=..., batch_size=..., **spec_kwargs)``
    (plus ``num_workers=N`` only when the user sets ``--num-workers``; a factory without that
    argument makes the option a usage error) and returns a ``lightning.LightningDataModule``
    whose train, val and test dataloaders give batches ``(images, labels)``: float images
    ``(N, C, H, W)`` normalised with its ``mean`` and ``std``, int64 labels ``(N,)``. Before any
    data loads it must have ``input_shape`` (C, H, W), ``num_classes`` and ``class_names``, and
    ``mean`` and ``std`` (per channel, on the ToTensor scale; None: not normalised), which
    ``zoo predict`` normalises images with. Subclass :class:`zoo.data.ClassificationDataModule`
    (declare those, write ``train_dataset()``, ``val_dataset()``, ``test_dataset()``; it makes
    the loaders, normalises and checks the batches) or, for a torchvision-style dataset class,
    return a :class:`zoo.data.VisionDataModule`. docs/plugins.md has the contract in full.
    """


@hookspec
def register_optimizers(register: Register) -> None:
    """Register optimizers.

    An optimizer factory is called as ``factory(model, lr=..., **spec_kwargs)`` (``lr`` only
    when the user sets ``--lr``; the factory's own default applies otherwise) and returns a
    ``torch.optim.Optimizer`` over ``model``'s parameters. It receives the model, not a list of
    parameters, so that it can keep weight decay off biases and normalisation layers.
    """


@hookspec
def register_schedulers(register: Register) -> None:
    """Register learning-rate schedulers.

    A scheduler factory is called as ``factory(optimizer, total_steps=..., steps_per_epoch=...,
    **spec_kwargs)``, where ``total_steps`` is the number of optimizer steps the schedule spans
    (after any ``--warmup-steps``). It returns a ``torch.optim.lr_scheduler.LRScheduler``,
    stepped after every optimizer step, or a dict in Lightning's ``lr_scheduler`` format
    (``{"scheduler": s, "interval": "epoch", "monitor": "val_acc"}``) to step it otherwise.
    """


@hookspec
def register_augmentations(register: Register) -> None:
    """Register batch augmentations.

    An augmentation factory takes keyword arguments only (those of a spec such as
    ``affine:degrees=10``) and returns a callable ``augment(images, generator) -> images`` over
    a training batch on its device: float images ``N x C x H x W`` on the ``ToTensor`` scale
    (0 to 1, before normalisation), drawing all its randomness, per sample, from the
    ``torch.Generator`` it is given, so that a seed reproduces and a resumed run continues it.
    """


@hookspec
def register_loggers(register: Register) -> None:
    """Register experiment loggers.

    A logger factory is called as ``factory(save_dir=RUN_DIR, **spec_kwargs)`` and returns a
    ``lightning.pytorch.loggers.Logger``. By default it should keep its files inside the run
    directory ``save_dir``; spec arguments may point it at a tracking server instead.
    """


@hookspec
def register_weights(register: Register) -> None:
    """Register trained weights (``zoo list weights``).

    A weights factory takes no arguments and returns a :class:`zoo.Weights` entry: the
    architecture and activation specs, the dataset, metrics, cost and where the safetensors file
    lies. An entry is its own factory, so ``register(entry.name, entry, summary=...)`` will do;
    ``zoo.read_weights_manifest(path)`` reads entries from a JSON file. docs/weights.md has the
    format; name weights ``ARCH-ACT.DATASET``, e.g. ``mlp-leakyrelu.mnist``.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands to the ``zoo`` command group, e.g. ``cli.add_command(my_command)``."""
