"""The Hugging Face Hub: ``hf-hub:OWNER/REPO`` names read through huggingface_hub's cache
(offline with ``HF_HUB_OFFLINE=1``), and pushing an exported directory to a repository."""

from __future__ import annotations

import re
from pathlib import Path

from zoo.weights.errors import WeightsError, WeightsUsageError

_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}")
#: What an exported directory holds, and what a push uploads (model.onnx as well, if there).
EXPORTED_FILES = ("model.safetensors", "config.json", "README.md")


def check_repo(repo: str) -> str:
    """``repo`` if it reads ``OWNER/REPO``; else :class:`WeightsUsageError`."""
    if not _REPO.fullmatch(repo):
        raise WeightsUsageError(f"{repo!r} is not a Hugging Face repository name (OWNER/REPO)")
    return repo


def hub_file(repo: str, filename: str) -> Path:
    """One file of a Hub repository, from huggingface_hub's cache or downloaded into it."""
    from huggingface_hub import hf_hub_download

    check_repo(repo)
    try:
        return Path(hf_hub_download(repo_id=repo, filename=filename))
    except Exception as error:  # offline and not cached, no such repo, no network, ...
        raise WeightsError(f"cannot get {filename} of hf-hub:{repo}: {_reason(error)}") from error


def hub_directory(repo: str) -> Path:
    """The directory holding an exported model's config.json and model.safetensors."""
    hub_file(repo, "config.json")
    return hub_file(repo, "model.safetensors").parent


def push(directory: Path, repo: str, *, private: bool = False) -> str:
    """Upload an exported directory to the Hub repository ``repo`` (created if needed) in one
    commit, with the token from huggingface_hub's usual places; the URL of the commit."""
    from huggingface_hub import HfApi

    check_repo(repo)
    missing = [name for name in EXPORTED_FILES if not (directory / name).is_file()]
    if missing:
        raise WeightsUsageError(
            f"{directory} is not an exported model (no {', '.join(missing)}): "
            "make one with `zoo export`"
        )
    api = HfApi()
    try:
        api.create_repo(repo, private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo,
            folder_path=str(directory),
            allow_patterns=[*EXPORTED_FILES, "model.onnx"],
            commit_message="Upload model exported by lightning-zoo",
        )
    except Exception as error:  # no network, no token, no permission
        raise WeightsError(f"cannot push {directory} to {repo}: {_reason(error)}") from error
    return str(getattr(info, "commit_url", info))


def _reason(error: Exception) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:300] + "…"
