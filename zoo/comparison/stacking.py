"""Many models of one architecture as one: their parameters stacked along a new first dimension
and called together, for :mod:`zoo.comparison.fused`.

Two ways, chosen per stack:

- **Fused layers** (HFTA's "horizontal fusion"), when every model is an ``nn.Sequential`` whose
  layers with parameters are ``nn.Linear`` of the same shapes: each Linear of all the models
  becomes one ``baddbmm`` over a ``[models, out, in]`` weight, and every layer without
  parameters or buffers (Flatten, the activations, Dropout, LogSoftmax) is applied to the models
  that share it (the same ``repr``) at once, on a ``[models x batch, ...]`` input: a layer sees
  a batch shaped as in the model alone. Models that differ only in their activation share one
  stack.
- **vmap**, for anything else: the models of one structure (the same ``repr``) are called with
  ``torch.func.functional_call`` under ``torch.func.vmap`` over their stacked parameters and
  buffers (PyTorch's model-ensembling recipe); models of different structures are separate
  groups, called one after another.

Either way, model ``m``'s parameters are the ``m``-th slices of the stacked ones, so the
gradients of a sum of per-model losses are each model's own, and an element-wise optimizer
(Adam, AdamW, SGD …) over the stacked parameters steps each model exactly as its own optimizer
would.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


@dataclass
class _Group:
    """Models ``members`` (indices into the stack) called together."""

    members: list[int]
    names: list[str]  # parameter and buffer names, as in the model's state_dict
    keys: list[str]  # the same, as registered in the stack (no dots)


def _key(group: int, name: str) -> str:
    return f"g{group}__" + name.replace(".", "__")


def _is_stateless(module: nn.Module) -> bool:
    return not any(True for _ in module.parameters()) and not any(True for _ in module.buffers())


def fusable_layers(models: Sequence[nn.Module]) -> str | None:
    """Why ``models`` cannot be stacked as fused layers, or None if they can."""
    if not all(isinstance(m, nn.Sequential) for m in models):
        return "not all of them are nn.Sequential"
    if len({len(m) for m in models}) != 1:
        return "their layers differ in number"
    for layers in zip(*models, strict=True):
        first = layers[0]
        if isinstance(first, nn.Linear):
            shapes = {(type(m), m.in_features, m.out_features, m.bias is None) for m in layers}
            if len(shapes) != 1:
                return "their Linear layers differ"
        elif not all(_is_stateless(m) for m in layers):
            return f"a layer with parameters or buffers is not nn.Linear ({type(first).__name__})"
    return None


class ModelStack(nn.Module):
    """``models`` (their current weights, copied) stacked; ``forward`` calls them all.

    ``forward(x)`` takes ``x`` of shape ``[models, batch, ...]`` (model ``m`` gets ``x[m]``), or
    ``[batch, ...]`` with ``shared=True`` (every model gets the same batch), and returns
    ``[models, batch, ...]``.
    """

    def __init__(self, models: Sequence[nn.Module], fused: bool | None = None) -> None:
        super().__init__()
        models = list(models)
        self.count = len(models)
        reason = fusable_layers(models)
        self.fused = reason is None if fused is None else fused
        if self.fused and reason is not None:
            raise ValueError(f"cannot fuse the layers: {reason}")
        self.stacked = nn.ParameterDict()
        self.groups: list[_Group] = []
        if self.fused:
            self._fuse(models)
        else:
            self._vmap(models)

    # -- building ------------------------------------------------------------------------------

    def _fuse(self, models: list[nn.Module]) -> None:
        names = [name for name, _ in models[0].named_parameters()]
        group = _Group(list(range(self.count)), names, [_key(0, n) for n in names])
        for name, key in zip(group.names, group.keys, strict=True):
            tensors = [dict(m.named_parameters())[name].detach() for m in models]
            self.stacked[key] = nn.Parameter(torch.stack(tensors))
        self.groups.append(group)
        self.layers: list[list[tuple[int, int, nn.Module]] | str] = []
        for index, layers in enumerate(zip(*models, strict=True)):
            if isinstance(layers[0], nn.Linear):
                self.layers.append(str(index))
                continue
            # Runs of consecutive models that share the layer (by repr): one call each.
            runs: list[tuple[int, int, nn.Module]] = []
            for m, layer in enumerate(layers):
                if runs and repr(runs[-1][2]) == repr(layer):
                    runs[-1] = (runs[-1][0], m + 1, runs[-1][2])
                else:
                    runs.append((m, m + 1, layer))
            self.layers.append(runs)
        self.callables = nn.ModuleList(layer for runs in self.layers if not isinstance(runs, str)
                                       for _, _, layer in runs)  # fmt: skip

    def _vmap(self, models: list[nn.Module]) -> None:
        by_structure: dict[str, list[int]] = {}
        for m, model in enumerate(models):
            by_structure.setdefault(repr(model), []).append(m)
        self.bases: list[nn.Module] = []
        self.buffer_names: list[set[str]] = []
        for g, members in enumerate(by_structure.values()):
            params, buffers = stack_module_state([models[m] for m in members])
            names = [*params, *buffers]
            group = _Group(members, names, [_key(g, n) for n in names])
            for name, key in zip(group.names, group.keys, strict=True):
                if name in params:
                    self.stacked[key] = nn.Parameter(params[name].detach().clone())
                else:
                    self.register_buffer(key, buffers[name].clone())
            self.groups.append(group)
            self.buffer_names.append(set(buffers))
            base = copy.deepcopy(models[members[0]]).to("meta")
            self.bases.append(base)
        self.order = [m for group in self.groups for m in group.members]

    def train(self, mode: bool = True) -> ModelStack:
        # The vmap path's models are not submodules (their parameters are on the meta device,
        # the stacked ones stand in for them), so their mode is set here: BatchNorm and Dropout
        # must follow training and evaluation.
        super().train(mode)
        for base in getattr(self, "bases", ()):
            base.train(mode)
        return self

    # -- calling -------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        if self.fused:
            if shared:
                x = x.expand(self.count, *x.shape)
            return self._forward_fused(x)
        outputs: list[torch.Tensor] = []
        for g, group in enumerate(self.groups):
            tensors = {name: self._tensor(key) for name, key in zip(group.names, group.keys,
                                                                     strict=True)}  # fmt: skip
            params = {n: t for n, t in tensors.items() if n not in self.buffer_names[g]}
            buffers = {n: t for n, t in tensors.items() if n in self.buffer_names[g]}
            inputs = x if shared else x[group.members[0] : group.members[-1] + 1]
            if not shared and group.members != list(range(group.members[0], group.members[-1] + 1)):
                inputs = x[torch.tensor(group.members, device=x.device)]  # fmt: skip
            base = self.bases[g]

            def call(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], xs: torch.Tensor,
                     base: nn.Module = base) -> torch.Tensor:  # fmt: skip
                return functional_call(base, (p, b), (xs,))

            in_dims = (0, 0, None if shared else 0)
            outputs.append(vmap(call, in_dims=in_dims, randomness="different")(
                params, buffers, inputs))  # fmt: skip
        out = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
        if self.order != list(range(self.count)):
            inverse = torch.empty(self.count, dtype=torch.long)
            inverse[torch.tensor(self.order)] = torch.arange(self.count)
            out = out[inverse.to(out.device)]
        return out

    def _forward_fused(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            if isinstance(layer, str):  # a Linear: one batched matrix product for all models
                weight = self.stacked[_key(0, f"{layer}.weight")]
                bias_key = _key(0, f"{layer}.bias")
                if bias_key in self.stacked:
                    x = torch.baddbmm(self.stacked[bias_key].unsqueeze(1), x,
                                      weight.transpose(1, 2))  # fmt: skip
                else:
                    x = torch.bmm(x, weight.transpose(1, 2))
                continue
            parts = []
            for start, end, module in layer:
                part = x[start:end]
                batch = part.shape[:2]
                out = module(part.reshape(-1, *part.shape[2:]))
                parts.append(out.reshape(*batch, *out.shape[1:]))
            x = torch.cat(parts) if len(parts) > 1 else parts[0]
        return x

    # -- reading the models back ---------------------------------------------------------------

    def _tensor(self, key: str) -> torch.Tensor:
        return self.stacked[key] if key in self.stacked else getattr(self, key)

    def locate(self, model: int) -> tuple[_Group, int]:
        """The group that holds ``model`` and its index in the group's stacked tensors."""
        for group in self.groups:
            if model in group.members:
                return group, group.members.index(model)
        raise IndexError(f"no model {model} in a stack of {self.count}")

    def state_of(self, model: int) -> dict[str, torch.Tensor]:
        """Model ``model``'s parameters and buffers by their names in its own ``state_dict``."""
        group, index = self.locate(model)
        return {name: self._tensor(key)[index] for name, key in zip(group.names, group.keys,
                                                                     strict=True)}  # fmt: skip

    def parameters_of(self, model: int) -> list[tuple[str, nn.Parameter, int]]:
        """``(name, stacked parameter, index)`` for each of model ``model``'s parameters."""
        group, index = self.locate(model)
        return [(name, self.stacked[key], index)
                for name, key in zip(group.names, group.keys, strict=True)
                if key in self.stacked]  # fmt: skip

    def stacked_parameter(self, model: int, name: str) -> nn.Parameter:
        """The stacked parameter that holds model ``model``'s parameter ``name``."""
        group, _ = self.locate(model)
        return self.stacked[group.keys[group.names.index(name)]]
