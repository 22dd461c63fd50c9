"""Shared fixtures for the app tests: a real `python app.py` server, and an offline Hub cache."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before anything imports gradio

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "checkpoints" / "tinystories-tiny"
CACHED_REPO = "owner/name"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def single_thread():
    """The CPU is shared (with training, with other tests): one torch thread is fastest and fairest."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def notes(monkeypatch):
    """Record the app's gr.Warning / gr.Info calls: {"warning": [...], "info": [...]}."""
    import app

    seen = {"warning": [], "info": []}
    monkeypatch.setattr(app.gr, "Warning", lambda message, *a, **k: seen["warning"].append(message))
    monkeypatch.setattr(app.gr, "Info", lambda message, *a, **k: seen["info"].append(message))
    return seen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`python app.py` on a free port with the given environment; stop() kills it (and its children)."""

    def __init__(self, log_path: Path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_path
        full_env = {k: v for k, v in os.environ.items() if k != "MICRODLLM_CHECKPOINT"}
        full_env.update({"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
                         "MICRODLLM_THREADS": "1", "PYTHONUNBUFFERED": "1", "GRADIO_SERVER_NAME": "127.0.0.1",
                         "GRADIO_SERVER_PORT": str(self.port), **env})
        self._log = open(log_path, "wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=full_env,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait(self, timeout: float = 90) -> float:
        """Block until the server answers HTTP; returns the seconds it took to come up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if r.status == 200:
                        return time.monotonic() - self.started
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"app.py did not answer within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)  # the session holds only this server
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
        self._log.close()


@pytest.fixture(scope="module")
def start_server(tmp_path_factory):
    """Factory: start_server(**env) -> a running AppServer; every server is killed at module teardown."""
    servers: list[AppServer] = []

    def start(**env: str) -> AppServer:
        server = AppServer(tmp_path_factory.mktemp("server") / "app.log", **env)
        servers.append(server)
        server.wait()
        return server

    yield start
    for server in servers:
        server.stop()


def make_hub_cache(cache: Path, repo_id: str, source: Path) -> Path:
    """The standard huggingface_hub cache layout holding `repo_id` (a copy of the checkpoint in `source`),
    as snapshot_download leaves it: what HF_HUB_OFFLINE=1 loads from."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "ngram.safetensors"):
        if (source / name).is_file():      # the n-gram is optional (ngram.py)
            shutil.copyfile(source / name, snapshot / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return cache


@pytest.fixture(scope="session")
def hub_cache(tmp_path_factory) -> Path:
    """A Hugging Face Hub cache holding CACHED_REPO (a copy of the bundled checkpoint), for HF_HUB_OFFLINE=1."""
    return make_hub_cache(tmp_path_factory.mktemp("hf-cache"), CACHED_REPO, BUNDLED)
