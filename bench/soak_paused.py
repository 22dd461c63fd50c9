"""Soak with paused and abandoned runs: does the app let go of what visitors leave behind?

A real server (tests.conftest.AppServer) with a short RUN_TTL_S (`--ttl`, seconds), and `--sessions`
gradio_client sessions one after another, each on the default model or the full-sequence model (whose
runs keep the most states). Each session starts a run, holds it mid-stream (/hold), steps it by hand
(/next_step, `--steps` times), and then, in turn:

- finishes it (/continue_run) and stays: its run is kept until the time to live ends;
- closes its client (the heartbeat stops: the server's unload handler lets go of the run at once);
- walks away with the run paused and the client open: only the time to live frees it.

After each session the server's resident memory (the process and its children, /proc VmRSS) is read;
then again every few seconds for `--ttl` + 20 s with no visitor at all. The server log counts the runs
let go and why (`ui.session.Run.forget`).

    python -m bench.soak_paused [--sessions 30] [--ttl 60] [--json docs/soak_paused.json] [--png docs/soak_paused.png]

A benchmark, never a test assertion.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before anything imports gradio

from gradio_client import Client  # noqa: E402

from bench.app_under_load import rss_bytes  # noqa: E402
from tests.conftest import AppServer  # noqa: E402

FULL = "checkpoints/tinystories-tiny"
PROMPT = "Once upon a time, there was a little girl named Lily."
ENDINGS = ("finished", "closed the tab", "walked away paused")


def session(url: str, i: int, steps: int) -> tuple[str, Client]:
    """One visitor: a run held mid-stream, stepped by hand, then ended as ENDINGS[i % 3] says. The
    caller keeps the client of a visitor still there (a client let go stops its heartbeat: it left)."""
    client = Client(url, verbose=False)
    if i % 2:
        client.predict(FULL, api_name="/load_model")
    job = client.submit(PROMPT, gen_len=200, steps=64, threshold=1, polish=0, delay_ms=30, api_name="/generate")
    time.sleep(0.5)
    client.predict(api_name="/hold")
    job.result()
    for _ in range(steps):
        client.predict(api_name="/next_step")
    ending = ENDINGS[i % 3]
    if ending == "finished":
        client.predict(0, api_name="/continue_run")
    if ending == "closed the tab":
        client.close()
    return ending, client


def run(sessions: int, ttl: float, steps: int, waves: int) -> dict:
    log_path = Path(tempfile.mkdtemp(prefix="microdllm-soak-paused-")) / "app.log"
    server = AppServer(log_path, MICRODLLM_RUN_TTL_S=str(ttl))
    try:
        server.wait()
        t0, samples = time.monotonic(), []

        def sample(what: str) -> None:
            samples.append({"t": round(time.monotonic() - t0, 1), "what": what,
                            "rss_mb": round(rss_bytes(server.proc.pid) / 2**20, 1), "let_go": let_go(log_path)})
            print(samples[-1], flush=True)

        sample("started")
        still_there = []
        for wave in range(waves):
            for i in range(sessions):
                ending, client = session(server.url, i, steps)
                still_there += [client] if ending != "closed the tab" else []
                sample(ending)
            quiet_until = time.monotonic() + ttl + 20
            while time.monotonic() < quiet_until:
                time.sleep(5)
                sample("no visitors")
        return {"sessions": sessions, "waves": waves, "ttl_s": ttl, "steps_by_hand": steps, "samples": samples,
                "let_go": let_go(log_path), "tracebacks": log_path.read_text(errors="replace").count("Traceback"),
                "cpus": os.cpu_count(), "clients_still_open": len(still_there)}
    finally:
        server.stop()


def let_go(log_path: Path) -> dict:
    """The server log's 'let go of a session's run (why): n states' lines, counted by why."""
    counts: dict[str, int] = {}
    for why in re.findall(r"let go of a session's run \(([^)]*)\)", log_path.read_text(errors="replace")):
        key = "the visitor left" if why == "the visitor left" else "unused for RUN_TTL_S" if why.startswith("unused") else why
        counts[key] = counts.get(key, 0) + 1
    return counts


def plot(result: dict, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["samples"]
    t = [x["t"] for x in s]
    started = [sum(y["what"] in ENDINGS for y in s[:k + 1]) for k in range(len(s))]
    held = [n - sum(x["let_go"].values()) for n, x in zip(started, s)]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.plot(t, [x["rss_mb"] for x in s], marker=".", color="#333", label="server memory (RSS)")
    waves, start = [], None
    for x, nxt in zip(s, s[1:] + [None]):
        visiting = x["what"] in ENDINGS
        start = x["t"] if visiting and start is None else start
        if visiting and (nxt is None or nxt["what"] not in ENDINGS):
            waves.append((start, x["t"]))
            start = None
    for k, (a, b) in enumerate(waves):
        ax.axvspan(a, b, color="#ddeeff", label=f"{result['sessions']} visitors pause, step, leave" if not k else None)
    ax.set_xlabel("seconds since start-up")
    ax.set_ylabel("server memory (MB)")
    ax.set_ylim(bottom=0)
    right = ax.twinx()
    right.step(t, held, where="post", color="#d55e00", label="runs held")
    right.set_ylabel("runs held (not let go)", color="#d55e00")
    right.set_ylim(bottom=0)
    ax.set_title(f"Paused and abandoned runs, time to live {result['ttl_s']:g} s")
    lines = ax.get_legend_handles_labels()
    more = right.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=30)
    p.add_argument("--ttl", type=float, default=60)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--waves", type=int, default=2, help="rounds of visitors, each followed by a quiet time to live")
    p.add_argument("--json")
    p.add_argument("--png")
    args = p.parse_args(argv)
    result = run(args.sessions, args.ttl, args.steps, args.waves)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.png:
        plot(result, Path(args.png))
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2))


if __name__ == "__main__":
    main()
