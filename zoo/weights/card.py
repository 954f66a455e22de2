"""The model card of an exported model: README.md with the Hugging Face Hub's metadata (library,
datasets, metrics, tags) and what a user needs: how to load it, its cost, how it was trained."""

from __future__ import annotations

import csv
from pathlib import Path

from zoo.weights.entry import Weights, human

LIBRARY = "lightning-zoo"
#: The Hub's names of the metrics zoo records.
_METRICS = {"test_acc": "accuracy", "test_loss": "loss"}


def model_card(entry: Weights, run_dir: Path | None = None) -> str:
    """README.md for ``entry``; with ``run_dir``, its validation curve as a table."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    dataset = entry.dataset.name.split(":")[0]
    results = [
        EvalResult(
            task_type="image-classification",
            dataset_type=dataset,
            dataset_name=dataset,
            dataset_split="test",
            metric_type=_METRICS.get(metric, metric),
            metric_value=value,
        )
        for metric, value in entry.metrics.items()
    ]
    data = ModelCardData(
        library_name=LIBRARY,
        datasets=[dataset],
        metrics=sorted({r.metric_type for r in results}) or None,
        tags=["image-classification", LIBRARY, entry.arch.split(":")[0], entry.act.split(":")[0]],
        model_name=entry.name if results else None,
        eval_results=results or None,
    )
    body = [
        f"# {entry.name}",
        "",
        f"Architecture `{entry.arch}` with activation `{entry.act}`, trained on "
        f"`{entry.dataset.name}` (input {list(entry.dataset.input_shape)}, "
        f"{entry.dataset.num_classes} classes) with [{LIBRARY}]"
        "(https://github.com/lightning-zoo/lightning-zoo).",
        "",
        "```python",
        "import zoo",
        'model, weights = zoo.load_weights("hf-hub:OWNER/REPO")  # or this directory',
        "batch = weights.transforms()(image).unsqueeze(0)  # a PIL image",
        "log_probs = model(batch)",
        "```",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in _facts(entry)),
    ]
    if entry.command:
        body += ["", "Trained with:", "", "```sh", entry.command, "```"]
    curve = _curve(run_dir) if run_dir is not None else []
    if curve:
        body += ["", "Validation accuracy by epoch:", "", "| epoch | val_acc |", "|---|---|"]
        body += [f"| {epoch} | {acc} |" for epoch, acc in curve]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body) + "\n")
    return str(card)


def _facts(entry: Weights) -> list[tuple[str, str]]:
    facts = [(f"test {k.removeprefix('test_')}", f"{v:.4f}") for k, v in entry.metrics.items()]
    if entry.num_params is not None:
        facts.append(("parameters", f"{entry.num_params:,} ({human(entry.num_params)})"))
    if entry.flops is not None:
        facts.append(("FLOPs per image", f"{entry.flops:,} ({human(entry.flops)})"))
    if entry.file_size is not None:
        facts.append(("file size", f"{entry.file_size:,} bytes"))
    if entry.sha256 is not None:
        facts.append(("sha256", f"`{entry.sha256}`"))
    if entry.dataset.mean is not None:
        facts.append(("normalisation", f"mean {entry.dataset.mean}, std {entry.dataset.std}"))
    return facts


def _curve(run_dir: Path) -> list[tuple[str, str]]:
    try:
        with open(run_dir / "metrics.csv", newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
    except (OSError, csv.Error):
        return []
    return [
        (row["epoch"], f"{float(row['val_acc']):.4f}")
        for row in rows
        if row.get("val_acc") and row.get("epoch")
    ]
