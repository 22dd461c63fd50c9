"""What a visitor may make the server load.

A checkpoint is checked before anything is allocated (declared architecture against LoadLimits,
file size, safetensors header against the config), from a local directory or a Hub repo in an
offline cache; a public app loads only its bundled models and Hub repo ids and answers every other
path with the same sentence; concurrent requests for one source share one load. (The queue: test_queue.py.)
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import BUNDLED, make_hub_cache
from helpers import tiny_model, wait_for

from microdllm import checkpoint as ckpt
from microdllm import serving
from microdllm.checkpoint import (
    BUNDLED_MODELS,
    CheckpointError,
    LoadLimits,
    count_parameters,
    count_tensors,
    expected_shapes,
    load_checkpoint,
    save_checkpoint,
)
from microdllm.config import get_preset
from microdllm.model import Transformer
from microdllm.serving import PUBLIC_REFUSAL, ModelStore, load_limits, public_mode

PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1_000_000


def rss() -> int:
    """Resident memory of this process, in bytes (/proc/self/statm: pages)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def crafted(directory: Path, n_layer: int = 24, n_embd: int = 2048, n_head: int = 16) -> Path:
    """The issue's checkpoint: the bundled 13 MB weights under a config.json declaring a huge network."""
    directory.mkdir(parents=True)
    shutil.copyfile(BUNDLED / "model.safetensors", directory / "model.safetensors")
    config = json.loads((BUNDLED / "config.json").read_text())
    config["model"].update(n_layer=n_layer, n_embd=n_embd, n_head=n_head)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


@pytest.fixture
def offline_cache(monkeypatch, tmp_path):
    """A Hub cache for HF_HUB_OFFLINE=1, in this process: add(repo_id, source_dir) puts a repo in it."""
    import huggingface_hub.constants

    cache = tmp_path / "hub-cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))

    def add(repo_id: str, source: Path) -> Path:
        make_hub_cache(cache, repo_id, source)
        return cache

    return add


@pytest.fixture
def no_allocation(monkeypatch):
    """Fail the test if the loader builds a model."""
    def refuse(*a, **k):
        raise AssertionError("the model was allocated")

    monkeypatch.setattr(ckpt, "Transformer", refuse)


# ---- the parameters a config implies, without allocating them ------------------------------------

CONFIGS = [
    get_preset("test"),
    get_preset("test", vocab_size=41, shift=True),
    get_preset("test", time_embedding=False, n_layer=3),
    get_preset("test", causal=True, time_embedding=False),
    get_preset("test", attn_block=8, time_embedding=False, shift=True),
    get_preset("test", timesteps=7, n_head=4, n_embd=32, block_size=16),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.kind}-shift{c.shift}-time{c.time_embedding}")
def test_expected_shapes_mirror_the_model(cfg):
    model = Transformer(cfg)
    assert expected_shapes(cfg) == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert count_parameters(cfg) == model.num_params()
    assert count_tensors(cfg) == len(model.state_dict())


@pytest.mark.parametrize("change, message", [
    (dict(n_layer=13), r"^c: declares 13 layers; this loader accepts at most 12 layers$"),
    (dict(n_embd=2048, n_head=16), r"^c: declares a width of 2,048; this loader accepts at most a width of 1,024$"),
    (dict(block_size=4096), r"^c: declares a context of 4,096 characters; .* at most a context of 1,024 characters$"),
    (dict(n_layer=12, n_embd=1024, n_head=16), r"^c: declares 151,\d{3},\d{3} parameters; .* at most 50,000,000$"),
])
def test_each_limit_is_one_line_that_names_it(change, message):
    with pytest.raises(CheckpointError, match=message):
        LoadLimits().check(get_preset("micro", **change), "c")


def test_presets_fit_the_default_limits():
    for name in ("micro", "tiny"):
        LoadLimits().check(get_preset(name))
    assert count_parameters(get_preset("micro")) == 10_706_304


# ---- the crafted checkpoint: refused in under a second, no memory growth --------------------------

def refused_quickly(load, match: str) -> tuple[float, int]:
    before, started = rss(), time.monotonic()
    with pytest.raises(CheckpointError, match=match) as info:
        load()
    seconds, growth = time.monotonic() - started, rss() - before
    assert "\n" not in str(info.value)
    assert seconds < 1.0, f"refused after {seconds:.2f} s"
    assert growth < 100 * MB, f"memory grew by {growth / MB:.0f} MB"
    return seconds, growth


def test_crafted_local_checkpoint_is_refused_before_allocation(tmp_path, no_allocation):
    bad = crafted(tmp_path / "huge")
    refused_quickly(lambda: load_checkpoint(bad, limits=LoadLimits()), r"declares 24 layers; .* at most 12 layers")
    # Without limits (the command line), the header still disagrees with the config: refused unallocated.
    refused_quickly(lambda: load_checkpoint(bad), r"holds \d+ tensors, config.json implies 147")


def test_crafted_hub_repo_in_the_offline_cache_is_refused(tmp_path, offline_cache, no_allocation):
    cache = offline_cache("evil/huge", crafted(tmp_path / "huge"))
    refused_quickly(lambda: load_checkpoint("evil/huge", limits=LoadLimits()),
                    r"^hf://evil/huge/config.json: declares 24 layers; this loader accepts at most 12 layers$")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint("evil/huge", limits=LoadLimits(max_layers=24, max_width=2048))
    assert "parameters; this loader accepts at most 50,000,000" in str(info.value)
    assert str(cache) not in str(info.value) and str(tmp_path) not in str(info.value)


def test_the_store_refuses_the_crafted_checkpoint_without_growing(tmp_path, offline_cache):
    offline_cache("evil/huge", crafted(tmp_path / "hub-src"))
    bad = crafted(tmp_path / "huge")
    for public in (False, True):
        store = ModelStore(timeout=5, public=public)
        store.load("")                                       # the fallback is loaded beforehand
        sources = ["evil/huge"] if public else [str(bad), "evil/huge"]
        for source in sources:
            before, started = rss(), time.monotonic()
            key, ck, notice = store.load(source)
            seconds, growth = time.monotonic() - started, rss() - before
            assert key == "" and ck.source == "bundled"
            assert "declares 24 layers; this loader accepts at most 12 layers" in notice, notice
            assert seconds < 1.0 and growth < 100 * MB, (source, seconds, growth / MB)
            assert str(tmp_path) not in notice or not public


def test_a_header_that_disagrees_with_the_config_is_refused_before_allocation(tmp_path, no_allocation):
    model, tok = tiny_model()
    path = save_checkpoint(tmp_path / "ck", model, tok)
    config = json.loads((path / "config.json").read_text())
    for change, match in ((dict(n_embd=128, n_head=2), r"has shape \(\d+, 64\), config.json implies \(\d+, 128\)"),
                          (dict(n_layer=3), r"holds 15 tensors, config.json implies 21"),
                          (dict(shift=True), r"holds 15 tensors, config.json implies 16")):
        (path / "config.json").write_text(json.dumps(dict(config, model=dict(config["model"], **change))))
        with pytest.raises(CheckpointError, match=match):
            load_checkpoint(path, limits=LoadLimits())
    (path / "model.safetensors").write_bytes((10 ** 12).to_bytes(8, "little") + b"{}")  # a header "1 TB long"
    with pytest.raises(CheckpointError, match="cannot be read as safetensors"):
        load_checkpoint(path)


def test_a_header_with_other_dtypes_or_names_is_refused(tmp_path, no_allocation):
    from safetensors.torch import save_file

    model, tok = tiny_model()
    path = save_checkpoint(tmp_path / "ck", model, tok)
    state = model.state_dict()
    save_file({k: v.to(torch.int64) if k == "lm_head.weight" else v for k, v in state.items()},
              str(path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="lm_head.weight is I64"):
        load_checkpoint(path)
    renamed = {("head.weight" if k == "lm_head.weight" else k): v for k, v in state.items()}
    save_file(renamed, str(path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing \['lm_head.weight'\], unexpected \['head.weight'\]"):
        load_checkpoint(path)


def test_an_oversized_file_is_refused(tmp_path, offline_cache, no_allocation):
    model, tok = tiny_model()
    path = save_checkpoint(tmp_path / "ck", model, tok)
    small = LoadLimits(max_file_bytes=100_000)
    with pytest.raises(CheckpointError, match=r"model.safetensors: 0.\d MB; this loader accepts files up to 0.1 MB"):
        load_checkpoint(path, limits=small)
    offline_cache("big/weights", BUNDLED)     # 12.9 MB in the cache: refused from its size, before reading it
    with pytest.raises(CheckpointError, match=r"^hf://big/weights/model.safetensors: 12.\d MB; .* up to 1.0 MB$"):
        load_checkpoint("big/weights", limits=LoadLimits(max_file_bytes=MB))
    (path / "config.json").write_text(" " * 1_000_001)
    with pytest.raises(CheckpointError, match="a config is at most 1.0 MB"):
        load_checkpoint(path)


def test_config_sizes_must_be_integers(tmp_path, no_allocation):
    model, tok = tiny_model()
    path = save_checkpoint(tmp_path / "ck", model, tok)
    config = json.loads((path / "config.json").read_text())
    for bad in ("2", 2.5, True, None):
        (path / "config.json").write_text(json.dumps(dict(config, model=dict(config["model"], n_layer=bad))))
        with pytest.raises(CheckpointError, match="invalid config"):
            load_checkpoint(path, limits=LoadLimits())


def test_a_checkpoint_within_the_limits_still_loads(tmp_path, offline_cache):
    model, tok = tiny_model(shift=True)
    path = save_checkpoint(tmp_path / "ck", model, tok)
    ck = load_checkpoint(path, limits=LoadLimits())
    assert all(torch.equal(v, ck.model.state_dict()[k]) for k, v in model.state_dict().items())
    offline_cache("someone/tiny", path)
    ck = load_checkpoint("someone/tiny", limits=LoadLimits())
    assert ck.source == "hf://someone/tiny" and ck.model.config.shift


class FakeHub:
    """A Hub on 127.0.0.1 serving files of one commit (HEAD: metadata headers; GET: the bytes); records requests."""

    COMMIT = "fedcba9876543210fedcba9876543210fedcba98"

    def __init__(self, files: dict[str, bytes], slow: float = 0.0):
        """slow: seconds to wait after each 256 KB of a download."""
        import hashlib
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[tuple[str, str]] = []
        self.sent: dict[str, int] = {}
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _answer(self, body: bool):
                hub.requests.append((self.command, self.path))
                name = self.path.split("/resolve/", 1)[-1].split("/", 1)[-1]
                data = files.get(name)
                if data is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("X-Repo-Commit", hub.COMMIT)
                self.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    try:
                        for start in range(0, len(data), 256_000):
                            self.wfile.write(data[start:start + 256_000])
                            self.wfile.flush()
                            hub.sent[name] = hub.sent.get(name, 0) + len(data[start:start + 256_000])
                            time.sleep(slow)
                    except OSError:     # the client went away
                        pass

            def do_HEAD(self):
                self._answer(False)

            def do_GET(self):
                self._answer(True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def gets(self) -> list[str]:
        """The files downloaded (huggingface_hub's own side requests, e.g. /api/..., left out)."""
        return [path.rsplit("/", 1)[-1] for method, path in self.requests if method == "GET" and "/resolve/" in path]


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    import huggingface_hub.constants

    hubs = []
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "online-cache"))

    def start(files: dict[str, bytes], slow: float = 0.0) -> FakeHub:
        hub = FakeHub(files, slow)
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)   # as HF_ENDPOINT would set it
        monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                            hub.url + "/{repo_id}/resolve/{revision}/{filename}")
        hubs.append(hub)
        return hub

    yield start
    for hub in hubs:
        hub.server.shutdown()


def test_an_online_hub_repo_is_size_checked_before_any_download(tmp_path, fake_hub):
    files = {name: (BUNDLED / name).read_bytes() for name in ("config.json", "model.safetensors")}
    hub = fake_hub(files)
    with pytest.raises(CheckpointError, match=r"^hf://big/repo/model.safetensors: 12.\d MB; .* files up to 1.0 MB$"):
        load_checkpoint("big/repo", limits=LoadLimits(max_file_bytes=MB))
    assert hub.gets() == []                      # refused from the HEAD metadata: nothing downloaded
    huge = json.loads(files["config.json"])
    huge["model"].update(n_layer=24, n_embd=2048, n_head=16)
    hub = fake_hub({**files, "config.json": json.dumps(huge).encode()})
    with pytest.raises(CheckpointError, match="declares 24 layers"):
        load_checkpoint("evil/repo", limits=LoadLimits())
    assert hub.gets() == ["config.json"]         # the config is checked before the weights are fetched
    hub = fake_hub(files)
    ck = load_checkpoint("good/repo", limits=LoadLimits())
    assert ck.source == "hf://good/repo" and ck.model.num_params() == count_parameters(ck.model.config)
    assert sorted(hub.gets()) == ["config.json", "model.safetensors"]
    hub = fake_hub({"config.json": files["config.json"]})
    with pytest.raises(CheckpointError, match=r"^hf://no/weights: the repo has no model.safetensors$"):
        load_checkpoint("no/weights", limits=LoadLimits())


def test_a_cancelled_download_stops_within_a_chunk(fake_hub, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "DOWNLOAD_CHUNK_SIZE", 256_000)
    files = {name: (BUNDLED / name).read_bytes() for name in ("config.json", "model.safetensors")}
    hub = fake_hub(files, slow=0.1)             # 12.9 MB at 2.5 MB/s: about 5 s
    cancel, outcome = threading.Event(), {}

    def load():
        try:
            outcome["ck"] = load_checkpoint("slow/repo", limits=LoadLimits(), cancel=cancel)
        except CheckpointError as e:
            outcome["error"] = str(e)

    thread = threading.Thread(target=load)
    thread.start()
    wait_for(lambda: hub.sent.get("model.safetensors", 0) > 1_000_000, 20, "the download starts")
    cancel.set()
    cancelled = time.monotonic()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - cancelled < 1.5
    assert outcome == {"error": "hf://slow/repo: loading was cancelled (it took too long)"}
    time.sleep(0.5)
    assert hub.sent["model.safetensors"] < len(files["model.safetensors"]) / 2   # the transfer was cut off


# ---- the switches -----------------------------------------------------------------------------------

def test_limits_and_public_mode_from_the_environment():
    assert load_limits({}) == LoadLimits()
    limits = load_limits({"MICRODLLM_MAX_PARAMETERS": "20_000_000", "MICRODLLM_MAX_LAYERS": "8",
                          "MICRODLLM_MAX_WIDTH": "512", "MICRODLLM_MAX_CONTEXT": "512", "MICRODLLM_MAX_FILE_MB": "80"})
    assert limits == LoadLimits(20_000_000, 8, 512, 512, 80_000_000)
    for bad in ("many", "-1", "0"):
        with pytest.raises(ValueError, match="MICRODLLM_MAX_LAYERS"):
            load_limits({"MICRODLLM_MAX_LAYERS": bad})
    assert public_mode({}) is False and public_mode({"SPACE_ID": "me/space"}) is True
    assert public_mode({"SPACE_ID": "me/space", "MICRODLLM_PUBLIC": "0"}) is False
    assert public_mode({"MICRODLLM_PUBLIC": "1"}) is True
    with pytest.raises(ValueError, match="MICRODLLM_PUBLIC"):
        public_mode({"MICRODLLM_PUBLIC": "maybe"})


# ---- a public app: bundled models and Hub repo ids only, one answer for every path ------------------

def test_public_mode_answers_every_path_alike(tmp_path, offline_cache, no_allocation):
    model, tok = tiny_model()
    real = save_checkpoint(tmp_path / "real", model, tok)     # a valid checkpoint a local run would load
    (tmp_path / "file.txt").write_text("x")
    store = ModelStore(public=True)
    store._models[""] = object()                              # the fallback, without loading it here
    probes = [str(real), str(tmp_path / "missing"), str(tmp_path / "file.txt"), "/etc", "/etc/config.json",
              "/nonexistent", "~", "~/.cache", "./checkpoints", "../main", str(real) + "/", "C:\\x", "a b/c"]
    answers = {store.load(p)[2] for p in probes}
    assert answers == {f"{PUBLIC_REFUSAL} Using the bundled model instead."}
    # A repo id never touches the local file system: a directory called like one is looked up on the Hub.
    key, _, notice = store.load("owner/name")
    assert key == "" and notice.startswith("Could not load checkpoint 'owner/name': hf://owner/name: not in the local cache")
    assert str(tmp_path) not in notice


def test_public_mode_loads_the_bundled_models_and_hub_repos(offline_cache, tmp_path):
    offline_cache("someone/tiny", BUNDLED)
    store = ModelStore(public=True)
    for path in BUNDLED_MODELS:
        key, ck, notice = store.load(str(path))
        assert notice is None and key == str(path) and ck.path == path
    key, ck, notice = store.load("")
    assert notice is None and ck.source == "bundled"
    key, ck, notice = store.load("someone/tiny")
    assert notice is None and ck.source == "hf://someone/tiny"
    # The operator's own sources (MICRODLLM_CHECKPOINT, ...) are trusted: a local directory is fine.
    copy = tmp_path / "operator"
    shutil.copytree(BUNDLED, copy, ignore=shutil.ignore_patterns("training_state*"))
    assert store.load(str(copy))[2] == f"{PUBLIC_REFUSAL} Using the bundled model instead."
    key, ck, notice = store.load(str(copy), trusted=True)
    assert notice is None and key == str(copy)


def test_a_local_run_still_loads_local_directories(tmp_path):
    model, tok = tiny_model()
    path = save_checkpoint(tmp_path / "ck", model, tok)
    key, ck, notice = ModelStore().load(str(path))
    assert notice is None and key == str(path)
    key, ck, notice = ModelStore().load(str(tmp_path / "missing"))
    assert key == "" and "no such directory" in notice


# ---- one load per source, cancelled at its deadline -------------------------------------------------

def test_concurrent_requests_for_one_source_share_one_load(monkeypatch):
    bundled = load_checkpoint(None)
    calls = []

    def slow_load(source=None, **kw):
        calls.append(source)
        time.sleep(0.5)
        return bundled

    monkeypatch.setattr(serving, "load_checkpoint", slow_load)
    store = ModelStore(timeout=10)
    store._models[""] = bundled
    results = []
    threads = [threading.Thread(target=lambda: results.append(store.load("shared/source"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert calls == ["shared/source"]
    assert [r[0] for r in results] == ["shared/source"] * 4 and all(r[1] is results[0][1] for r in results)
    assert store.load("shared/source")[1] is results[0][1] and calls == ["shared/source"]   # cached


def test_a_load_that_times_out_is_cancelled_and_discarded(monkeypatch):
    bundled = load_checkpoint(None)
    release, seen = threading.Event(), {}

    def stuck_load(source=None, **kw):
        release.wait(10)
        seen["cancelled"] = kw["cancel"].is_set()
        return bundled

    monkeypatch.setattr(serving, "load_checkpoint", stuck_load)
    store = ModelStore(timeout=0.3, max_loads=1)
    store._models[""] = bundled
    started = time.monotonic()
    key, _, notice = store.load("stuck/hub")
    assert key == "" and "no answer within 0.3 s" in notice and time.monotonic() - started < 1.5
    # While it is still stuck, it counts against the loader threads: another source is told the server is busy.
    assert "busy loading other checkpoints" in store.load("other/repo")[2]
    release.set()
    deadline = time.monotonic() + 5
    while store._running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert seen == {"cancelled": True} and store._running == 0
    assert "stuck/hub" not in store._models and not store._loads     # its result was discarded


def test_a_load_cancelled_midway_keeps_no_model_alive(tmp_path, monkeypatch):
    import gc
    import weakref

    model, tok = tiny_model()
    path = save_checkpoint(tmp_path / "ck", model, tok)
    built = []

    def slow_transformer(cfg):          # the model is allocated, then the deadline passes mid-load
        m = Transformer(cfg)
        built.append(weakref.ref(m))
        time.sleep(0.6)
        return m

    store = ModelStore(timeout=0.3)
    store._models[""] = load_checkpoint(None)
    monkeypatch.setattr(ckpt, "Transformer", slow_transformer)
    gc.collect()
    gc.disable()                        # freed by reference counting alone, not by a later collection
    try:
        assert "no answer within 0.3 s" in store.load(str(path))[2]
        wait_for(lambda: store._running == 0, 5, "the cancelled loader ends")
        assert len(built) == 1 and built[0]() is None, "the cancelled load's model is still alive"
    finally:
        gc.enable()
    assert str(path) not in store._models


def test_a_cancelled_load_stops_before_allocating(tmp_path, monkeypatch):
    model, tok = tiny_model()
    path = save_checkpoint(tmp_path / "ck", model, tok)
    cancel = threading.Event()
    cancel.set()
    built = []
    monkeypatch.setattr(ckpt, "Transformer", lambda cfg: built.append(cfg))
    with pytest.raises(CheckpointError, match="cancelled"):
        load_checkpoint(path, cancel=cancel)
    assert not built


def server_rss(server) -> int:
    with open(f"/proc/{server.proc.pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def test_a_public_server_refuses_crafted_checkpoints_and_path_probes(start_server, tmp_path_factory):
    from gradio_client import Client

    tmp = tmp_path_factory.mktemp("public")
    bad = crafted(tmp / "huge")
    cache = make_hub_cache(tmp / "hub", "evil/huge", bad)
    server = start_server(MICRODLLM_PUBLIC="1", HF_HUB_CACHE=str(cache))
    client = Client(server.url, verbose=False)
    client.predict("", api_name="/load_model")                     # warm: the first call's own costs
    answers = {}
    for source in ("evil/huge", str(bad), str(tmp / "missing"), "/etc", "/etc/passwd", str(bad / "config.json")):
        before, started = server_rss(server), time.monotonic()
        card, notice, *_ = client.predict(source, api_name="/load_model")
        seconds, growth = time.monotonic() - started, server_rss(server) - before
        print(f"server: {source[-24:]}: refused in {seconds * 1000:.0f} ms, resident memory {growth / MB:+.1f} MB")
        assert seconds < 1.0 and growth < 100 * MB, (source, seconds, growth / MB)
        assert "`bundled`" in card
        answers[source] = notice["value"]
    assert "declares 24 layers; this loader accepts at most 12 layers" in answers.pop("evil/huge")
    assert set(answers.values()) == {f"⚠️ **{PUBLIC_REFUSAL} Using the bundled model instead.**"}
