"""The loops a researcher writes by hand instead of using lightning-zoo: plain PyTorch, no zoo and
no Lightning, each started as a process of its own by ``benchmarks/handwritten.py``.

The data is read from MNIST's IDX files into memory once and normalised with MNIST's mean and
std. The split and the order are zoo's: the 60,000 training images split 55,000/5,000 by
``torch.randperm(60000)`` drawn from a generator seeded with 0 (what ``random_split`` with split
seed 0 does), and in epoch ``e`` a run of seed ``s`` trains on the 55,000 in the order
``randperm(55000)`` drawn from a generator seeded with ``s + e`` (zoo's ``EpochSampler``). A run
of seed ``s`` initialises its layers after ``torch.manual_seed(s)``, in their order. Adam at
1e-3, batch 64 (128 for the cnn), validation after each epoch, and the test of the weights with
the best validation accuracy at the end (what zoo tests). Threads: ``OMP_NUM_THREADS``.

Commands (each prints one JSON line)::

    python benchmarks/handwritten_loops.py study --data-dir DIR --stacked      # 12 models at once
    python benchmarks/handwritten_loops.py study --data-dir DIR --acts relu --seeds 1  # one run
    python benchmarks/handwritten_loops.py cnn-step --data-dir DIR --steps 30
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MEAN, STD = 0.1307, 0.3081
ACTIVATIONS = {"relu": nn.ReLU, "leakyrelu": nn.LeakyReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
FUNCTIONS = {"relu": F.relu, "leakyrelu": F.leaky_relu, "sigmoid": torch.sigmoid,
             "tanh": torch.tanh}  # fmt: skip
WIDTHS = (784, 128, 64, 10)


# -- data -------------------------------------------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format), gzipped or not, as a numpy array."""
    if not path.exists() and path.with_name(path.name + ".gz").exists():
        path = path.with_name(path.name + ".gz")
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(
    data_dir: str, val_size: int, device: str = "cpu"
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The three splits as normalised float images ``(N, 1, 28, 28)`` and int64 labels, on
    ``device``."""
    raw = Path(data_dir) / "MNIST" / "raw"
    splits = {}
    for name, prefix in (("train", "train"), ("test", "t10k")):
        images = torch.from_numpy(read_idx(raw / f"{prefix}-images-idx3-ubyte").copy())
        labels = torch.from_numpy(read_idx(raw / f"{prefix}-labels-idx1-ubyte").astype(np.int64))
        splits[name] = ((images.unsqueeze(1).float() / 255 - MEAN) / STD, labels)
    images, labels = splits.pop("train")
    n = len(labels)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    train, val = order[: n - val_size], order[n - val_size :]
    splits["train"] = (images[train], labels[train])
    splits["val"] = (images[val], labels[val])
    return {name: (x.to(device), y.to(device)) for name, (x, y) in splits.items()}


def epoch_order(n: int, seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
    return order.to(device)


# -- the MLPs, one after another ----------------------------------------------------------------


def mlp(act: str, seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Flatten()]
    for i in range(len(WIDTHS) - 1):
        layers.append(nn.Linear(WIDTHS[i], WIDTHS[i + 1]))
        layers.append(ACTIVATIONS[act]() if i < len(WIDTHS) - 2 else nn.LogSoftmax(dim=1))
    return nn.Sequential(*layers)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in zip(images.split(batch), labels.split(batch), strict=True):
            correct += int((model(x).argmax(1) == y).sum())
    model.train()
    return correct / len(labels)


def one_run(data: dict, act: str, seed: int, args: argparse.Namespace) -> dict:
    """Train one MLP: its test accuracy (of the best validation epoch's weights) and the seconds
    it took to build and train it, validation included (what zoo's ``train_seconds`` counts)."""
    started = time.perf_counter()
    model = mlp(act, seed).to(data["train"][1].device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    (x, y), (xv, yv) = data["train"], data["val"]
    best, best_state, steps = -1.0, None, 0
    for epoch in range(args.epochs):
        for index in epoch_order(len(y), seed, epoch, y.device).split(args.batch_size):
            loss = F.nll_loss(model(x[index]), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            if steps == args.max_steps:
                break
        if steps == args.max_steps and steps % -(-len(y) // args.batch_size):
            break  # stopped inside an epoch: no validation, as zoo's --max-steps
        val = accuracy(model, xv, yv, args.batch_size)
        if val > best:
            best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
        if steps == args.max_steps:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    fit_seconds = time.perf_counter() - started
    test = accuracy(model, *data["test"], args.batch_size)
    return {"act": act, "seed": seed, "test_acc": test, "fit_seconds": fit_seconds,
            "best_val_acc": best if best >= 0 else None}  # fmt: skip


# -- the MLPs stacked: every (activation, seed) model in one set of batched matmuls ---------------


class StackedMLPs:
    """``len(acts) * seeds`` MLPs as stacked weights, model ``a * seeds + s`` with activation
    ``acts[a]`` and seed ``s``, each initialised as :func:`mlp` initialises it."""

    def __init__(self, acts: list[str], seeds: int, device: torch.device) -> None:
        self.acts, self.seeds = acts, seeds
        weights: list[list[torch.Tensor]] = [[] for _ in range(2 * (len(WIDTHS) - 1))]
        for act in acts:
            for seed in range(seeds):
                linears = [m for m in mlp(act, seed) if isinstance(m, nn.Linear)]
                for i, linear in enumerate(linears):
                    weights[2 * i].append(linear.weight.detach().t())
                    weights[2 * i + 1].append(linear.bias.detach().unsqueeze(0))
        self.params = [torch.stack(w).to(device).requires_grad_() for w in weights]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Log-probabilities ``(models, B, 10)`` of inputs ``(models or 1, B, 784)``."""
        h = x.expand(len(self.params[0]), -1, -1)
        last = len(self.params) // 2 - 1
        for i in range(last + 1):
            h = torch.baddbmm(self.params[2 * i + 1], h, self.params[2 * i])
            if i < last:
                groups = h.view(len(self.acts), self.seeds, *h.shape[1:])
                h = torch.cat([FUNCTIONS[a](g) for a, g in zip(self.acts, groups, strict=True)])
        return F.log_softmax(h, dim=-1)

    def correct(self, images: torch.Tensor, labels: torch.Tensor, batch: int) -> torch.Tensor:
        """Correct predictions of every model on the images, a tensor ``(models,)``."""
        correct = torch.zeros(len(self.params[0]), dtype=torch.int64, device=labels.device)
        with torch.no_grad():
            for x, y in zip(images.split(batch), labels.split(batch), strict=True):
                correct += (self(x.flatten(1).unsqueeze(0)).argmax(-1) == y).sum(1)
        return correct


def stacked_study(data: dict, args: argparse.Namespace) -> list[dict]:
    """Train every model of the study at once: one loss, summed over the models, whose gradient
    is each model's own; Adam treats every element alone, so each model trains as if alone."""
    model = StackedMLPs(args.acts, args.seeds, data["train"][1].device)
    optimizer = torch.optim.Adam(model.params, lr=1e-3)
    (x, y), (xv, yv) = data["train"], data["val"]
    x = x.flatten(1)
    m = len(model.params[0])
    best = torch.full((m,), -1.0, device=y.device)
    best_params = [p.detach().clone() for p in model.params]
    per_epoch, steps = -(-len(y) // args.batch_size), 0
    for epoch in range(args.epochs):
        orders = torch.stack([epoch_order(len(y), s, epoch, y.device) for s in range(args.seeds)])
        for index in orders.split(args.batch_size, dim=1):  # (seeds, B)
            xb = x[index].repeat(len(args.acts), 1, 1)
            yb = y[index].repeat(len(args.acts), 1)
            out = model(xb)
            loss = F.nll_loss(out.flatten(0, 1), yb.flatten(), reduction="sum") / yb.shape[1]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            if steps == args.max_steps:
                break
        if steps == args.max_steps and steps % per_epoch:
            break
        val = model.correct(xv, yv, args.batch_size) / len(yv)
        better = val > best
        best = torch.where(better, val, best)
        for kept, p in zip(best_params, model.params, strict=True):
            kept[better] = p.detach()[better]
        if steps == args.max_steps:
            break
    if bool((best >= 0).all()):
        with torch.no_grad():
            for p, kept in zip(model.params, best_params, strict=True):
                p.copy_(kept)
    n = len(data["test"][1])
    test = [c / n for c in model.correct(*data["test"], args.batch_size).tolist()]
    return [
        {"act": args.acts[i // args.seeds], "seed": i % args.seeds, "test_acc": test[i],
         "best_val_acc": float(best[i]) if best[i] >= 0 else None}
        for i in range(m)
    ]  # fmt: skip


# -- the cnn ----------------------------------------------------------------------------------


def cnn() -> nn.Sequential:
    """zoo's default ``cnn`` with ReLU, written out: 1x28x28 → 32x14x14 → 64x7x7 → 128 → 10."""

    def stage(c_in: int, c_out: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                nn.ReLU(), nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]  # fmt: skip

    return nn.Sequential(
        *stage(1, 32), *stage(32, 64), nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 7 * 7, 128),
        nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10),
    )  # fmt: skip


def cnn_steps(data: dict, args: argparse.Namespace) -> dict:
    """Milliseconds of each training step of the cnn: gather the batch, forward, backward, Adam."""
    torch.manual_seed(0)
    x, y = data["train"]
    model = cnn().to(y.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batches = [
        index
        for epoch in range(-(-args.steps * args.batch_size // len(y)))
        for index in epoch_order(len(y), 0, epoch, y.device).split(args.batch_size)
    ]
    times = []
    for index in batches[: args.steps]:
        started = time.perf_counter()
        loss = F.cross_entropy(model(x[index]), y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if y.device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - started) * 1000)
    return {"step_ms": times, "params": sum(p.numel() for p in model.parameters())}


# -- the command line -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("study", "cnn-step"))
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--acts", nargs="+", default=list(ACTIVATIONS), choices=ACTIVATIONS)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. SEEDS-1")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help="[64; the cnn: 128]")
    parser.add_argument("--val-size", type=int, default=5000)
    parser.add_argument("--max-steps", type=int, default=-1, help="stop each run after these")
    parser.add_argument("--stacked", action="store_true", help="all models in one loop")
    parser.add_argument("--steps", type=int, default=30, help="cnn-step: steps to time")
    parser.add_argument("--device", default="cpu", help="cpu or cuda [cpu]")
    args = parser.parse_args(argv)
    args.batch_size = args.batch_size or (128 if args.command == "cnn-step" else 64)
    started = time.perf_counter()
    data = load(args.data_dir, args.val_size, args.device)
    load_seconds = time.perf_counter() - started
    if args.command == "cnn-step":
        result = cnn_steps(data, args)
    elif args.stacked:
        result = {"runs": stacked_study(data, args)}
    else:
        result = {"runs": [one_run(data, a, s, args) for a in args.acts for s in range(args.seeds)]}
    result["load_seconds"] = load_seconds  # reading and normalising the IDX files
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    result["seconds"] = time.perf_counter() - started  # all but the imports
    result["threads"] = torch.get_num_threads()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
