"""The Hugging Face Hub: fetch a checkpoint by repo id (size-checked before any download) and publish one.

Offline (HF_HUB_OFFLINE=1) the same calls read huggingface_hub's local cache. Errors name hf://repo_id,
never a local path. The checkpoint format itself, and loading by path or repo id: checkpoint.py.
"""
from __future__ import annotations

import re
import threading
from pathlib import Path

from .checkpoint import (
    CONFIG_NAME,
    MAX_CONFIG_BYTES,
    WEIGHTS_NAME,
    CheckpointError,
    LoadLimits,
    _check_cancel,
    _mb,
    load_weights,
    one_line_error,
    parse_config,
    read_config,
)
from .ngram import MAX_FILE_BYTES as MAX_NGRAM_BYTES
from .ngram import NGRAM_NAME

_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")


def looks_like_repo_id(source: str) -> bool:
    """owner/name as the Hub spells repo ids (letters, digits, - _ .; no '--' or '..'; not ending in .git)."""
    s = str(source)
    return bool(_REPO_ID.fullmatch(s)) and "--" not in s and ".." not in s and not s.endswith((".git", "."))


def _hub_reason(e: BaseException) -> str:
    """A Hub error as one line that names no local path: the HTTP error's first line, else its kind."""
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(e, HfHubHTTPError):
        return one_line_error(e)
    return getattr(e, "strerror", None) or type(e).__name__


def _cancellable_bar(cancel: threading.Event | None, where: str):
    """huggingface_hub's progress bar, stopping the download at the next chunk once `cancel` is set
    (its `tqdm_class` hook: the only one the download loop offers)."""
    if cancel is None:
        return None
    from huggingface_hub.utils import tqdm as hub_tqdm

    class CancellableBar(hub_tqdm):
        def update(self, n=1):
            _check_cancel(cancel, where)
            return super().update(n)

    return CancellableBar


def download(repo_id: str, revision: str | None = None, timeout: float = 10.0, limits: LoadLimits | None = None,
             cancel: threading.Event | None = None) -> Path:
    """Fetch config.json + model.safetensors from the Hub (or its local cache when offline), and the
    checkpoint's ngram.safetensors where the repo has one (ngram.py; without it drafts are not tied).

    Before anything is downloaded, both files are size-checked from the Hub's file metadata (a
    HEAD request each, `timeout` seconds; offline: the cached files' sizes on disk), and the config
    is read and checked against `limits` before the weights are fetched. Once `cancel` is set, the
    load stops before its next request, or within one chunk of the weights' download. Errors name
    hf://repo_id, never a local path.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RemoteEntryNotFoundError

    where = f"hf://{repo_id}"
    caps = {CONFIG_NAME: MAX_CONFIG_BYTES,
            WEIGHTS_NAME: limits.max_file_bytes if limits is not None else None}
    name = CONFIG_NAME
    try:
        _check_cancel(cancel, where)
        for name in (CONFIG_NAME, WEIGHTS_NAME):
            info = hf_hub_download(repo_id, name, revision=revision, etag_timeout=timeout, dry_run=True)
            revision = revision or info.commit_hash          # both files from one commit
            cap = caps[name]
            if cap is not None and info.file_size is not None and info.file_size > cap:
                raise CheckpointError(f"{where}/{name}: {_mb(info.file_size)}; this loader accepts files up to "
                                      f"{_mb(cap)}")
        name = CONFIG_NAME
        _check_cancel(cancel, where)
        local = Path(hf_hub_download(repo_id, CONFIG_NAME, revision=revision, etag_timeout=timeout)).parent
        config = read_config(local, where)       # the architecture is checked before the weights are fetched
        model_config, _, _ = parse_config(config, f"{where}/{CONFIG_NAME}")
        if limits is not None:
            limits.check(model_config, f"{where}/{CONFIG_NAME}")
        _check_cancel(cancel, where)
        name = WEIGHTS_NAME
        weights = Path(hf_hub_download(repo_id, WEIGHTS_NAME, revision=revision, etag_timeout=timeout,
                                       tqdm_class=_cancellable_bar(cancel, where)))
        name = NGRAM_NAME
        _fetch_optional(repo_id, NGRAM_NAME, revision, timeout, MAX_NGRAM_BYTES, where)
    except LocalEntryNotFoundError as e:
        raise CheckpointError(f"{where}: not in the local cache and the Hub cannot be reached ({type(e).__name__})") from e
    except RemoteEntryNotFoundError as e:
        raise CheckpointError(f"{where}: the repo has no {name}") from e
    except (HfHubHTTPError, OSError, ValueError) as e:
        raise CheckpointError(f"{where}: cannot be fetched from the Hub: {_hub_reason(e)}") from e
    if weights.parent != local:
        raise CheckpointError(f"{where}: {CONFIG_NAME} and {WEIGHTS_NAME} resolved to different snapshots")
    return local


def _fetch_optional(repo_id: str, name: str, revision: str, timeout: float, cap: int, where: str) -> None:
    """Fetch a file the checkpoint may lack, from the same commit, size-checked first; absent: nothing."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RemoteEntryNotFoundError

    try:
        info = hf_hub_download(repo_id, name, revision=revision, etag_timeout=timeout, dry_run=True)
    except (RemoteEntryNotFoundError, LocalEntryNotFoundError):
        return
    if info.file_size is not None and info.file_size > cap:
        raise CheckpointError(f"{where}/{name}: {_mb(info.file_size)}; this loader accepts files up to {_mb(cap)}")
    hf_hub_download(repo_id, name, revision=revision, etag_timeout=timeout)


def push_to_hub(directory, repo_id: str, token: str | None = None, private: bool = False,
                commit_message: str = "Upload micro-dLLM checkpoint") -> str:
    """Create (if needed) and upload a checkpoint directory to a Hub model repo. Returns the repo URL."""
    from huggingface_hub import HfApi

    directory = Path(directory)
    read_config(directory)
    load_weights(directory / WEIGHTS_NAME)  # refuse to publish a broken checkpoint
    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    api.upload_folder(folder_path=str(directory), repo_id=repo_id, repo_type="model",
                      commit_message=commit_message,
                      allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, NGRAM_NAME, "README.md", "*.png", "*.json"],
                      ignore_patterns=["training_state*", ".*"])
    return str(url)
