"""Boot the app the way a Hugging Face Space does, from requirements.txt alone, and write one story.

1. Copy what would be pushed to the Space (the files git tracks, plus new files it does not
   ignore) into a temporary directory: nothing from this checkout's virtual environment, data/
   or runs/ can help.
2. `python -m venv` a fresh environment there and `pip install -r requirements.txt` (pip's own
   configuration applies: on this machine the pinned torch is the CPU wheel on local disk).
3. Start `python app.py` in the copy as a Space does: GRADIO_SERVER_NAME=0.0.0.0, port 7860
   (a free port instead when 7860 is taken, and it says so), SPACE_ID set (so the app runs in its
   public mode, as on a Space), no MICRODLLM_* settings.
4. From the new environment's own gradio_client, generate a short story through /generate and
   check it finished; then stop the server.

It also checks the README front matter (sdk: gradio, app_file, python_version, sdk_version
against the gradio pip installed) and lists the pushed files over 10 MB that a Space refuses
unless they go through Git LFS (see docs/deploy.md).

    python -m bench.space_boot [--keep DIR] [--json out.json]     # from the repository root; a few minutes

Exit status 0 when the story was written, 1 otherwise.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPACE_PORT = 7860
LFS_LIMIT = 10 * 2**20          # a Space refuses plain-git files over 10 MB
PIP_TIMEOUT = 1800              # torch alone is a large wheel; CI has 2 cores
BOOT_TIMEOUT = 180
GENERATE_TIMEOUT = 180
SPACE_ID = "local/space-boot"   # every Space sets SPACE_ID; the app then runs as a public app (MICRODLLM_PUBLIC)

CLIENT_SCRIPT = r"""
import json, sys, time
from gradio_client import Client
url = sys.argv[1]
t0 = time.monotonic()
client = Client(url, verbose=False)
*_, status, final = client.predict(prompt="Once upon a time", gen_len=60, delay_ms=0, api_name="/generate")
print(json.dumps({"status": status, "final": final, "seconds": round(time.monotonic() - t0, 2)}))
"""


def say(message: str) -> None:
    print(f"[space-boot] {message}", flush=True)


def pushed_files(root: Path) -> list[str]:
    """What a push of this checkout holds: tracked files and new ones git does not ignore."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                             capture_output=True, check=True).stdout
        return sorted({p for p in out.decode().split("\0") if p and (root / p).is_file()})
    except (OSError, subprocess.CalledProcessError):   # not a git checkout: everything but what .gitignore names
        skip = {".git", ".venv", "runs", "data", "out", "test-artifacts", "__pycache__", ".pytest_cache"}
        return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                      if p.is_file() and not skip & set(p.relative_to(root).parts) and p.suffix not in (".pyc", ".log"))


def copy_tree(root: Path, files: list[str], dest: Path) -> int:
    size = 0
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
        size += target.stat().st_size
    return size


def lfs_patterns(root: Path) -> list[str]:
    """The patterns .gitattributes sends through Git LFS (filter=lfs)."""
    path = root / ".gitattributes"
    if not path.is_file():
        return []
    return [line.split()[0] for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#") and "filter=lfs" in line]


def large_files(root: Path, files: list[str]) -> list[dict]:
    patterns = lfs_patterns(root)
    big = []
    for rel in files:
        size = (root / rel).stat().st_size
        if size > LFS_LIMIT:
            covered = any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(Path(rel).name, p) for p in patterns)
            big.append({"path": rel, "mb": round(size / 2**20, 1), "lfs": covered})
    return big


def front_matter(readme: Path) -> dict[str, str]:
    """The README's YAML front matter, flat `key: value` lines (all a Space's config needs here)."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    meta = {}
    for line in lines[1:]:
        if line.strip() == "---":
            break
        key, _, value = line.partition(":")
        meta[key.strip()] = value.strip().strip('"').strip("'")
    return meta


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the checkout's virtual environment or MICRODLLM_* settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MICRODLLM_") and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    venv_bin = os.environ.get("VIRTUAL_ENV")
    if venv_bin:
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                      if not p.startswith(venv_bin))
    env.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_DISABLE_TELEMETRY="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PYTHONUNBUFFERED="1", **extra)
    return env


def base_python() -> str:
    """The interpreter the checkout's venv was made from (a venv of a venv would still be fresh, but this
    is what a Space starts from: a plain Python)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def wait_http(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"app.py did not answer within {timeout} s:\n{log.read_text(errors='replace')[-4000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, 15)   # the session holds only this server
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(15)


def boot(work: Path) -> dict:
    result: dict = {"ok": False}
    t_all = time.monotonic()

    files = pushed_files(ROOT)
    space = work / "space"
    result["pushed_files"], result["pushed_mb"] = len(files), round(copy_tree(ROOT, files, space) / 2**20, 1)
    say(f"copied {len(files)} files ({result['pushed_mb']} MB) that a push would hold to {space}")
    meta = front_matter(space / "README.md")
    result["front_matter"] = {k: meta.get(k) for k in ("sdk", "sdk_version", "python_version", "app_file")}
    problems = [f"README front matter: {k} is {meta.get(k)!r}, expected {v!r}"
                for k, v in (("sdk", "gradio"), ("app_file", "app.py")) if meta.get(k) != v]
    if not (space / meta.get("app_file", "app.py")).is_file():
        problems.append(f"app_file {meta.get('app_file')!r} is not among the pushed files")
    big = large_files(ROOT, files)
    result["files_over_10mb"] = big
    for f in big:
        if f["lfs"]:
            say(f"{f['path']} ({f['mb']} MB): over 10 MB, in Git LFS (.gitattributes)")
        else:
            say(f"WARNING: {f['path']} ({f['mb']} MB) is over 10 MB and not in Git LFS: a Space refuses it as plain "
                f"git (track it with LFS, upload with huggingface_hub, or leave it out; docs/deploy.md)")

    venv, env = work / "venv", clean_env()
    t0 = time.monotonic()
    subprocess.run([base_python(), "-m", "venv", str(venv)], check=True, env=env)
    py = venv / "bin" / "python"
    say("pip install -r requirements.txt (a few minutes: torch is a large wheel) ...")
    pip = subprocess.run([str(py), "-m", "pip", "install", "-q", "-r", "requirements.txt"], cwd=space, env=env,
                         capture_output=True, text=True, timeout=PIP_TIMEOUT)
    result["pip_seconds"] = round(time.monotonic() - t0, 1)
    if pip.returncode != 0:
        result["error"] = f"pip install failed ({pip.returncode}):\n{(pip.stdout + pip.stderr)[-4000:]}"
        return result
    versions = subprocess.run([str(py), "-c", "import sys, torch, gradio, gradio_client; print(sys.version.split()[0], "
                               "torch.__version__, gradio.__version__, gradio_client.__version__)"],
                              env=env, capture_output=True, text=True, check=True).stdout.split()
    result.update(python=versions[0], torch=versions[1], gradio=versions[2], gradio_client=versions[3])
    say(f"installed in {result['pip_seconds']} s: python {versions[0]}, torch {versions[1]}, gradio {versions[2]}, "
        f"gradio_client {versions[3]}")
    if "+cpu" not in result["torch"] and "cpu" not in result["torch"]:
        say(f"note: torch {result['torch']} is not a +cpu build (on a Space, see docs/deploy.md)")
    if meta.get("sdk_version") and meta["sdk_version"] != result["gradio"]:
        say(f"note: the README's sdk_version {meta['sdk_version']} differs from the gradio pip chose "
            f"({result['gradio']}); a Space installs sdk_version")
    if meta.get("python_version") and not result["python"].startswith(meta["python_version"]):
        say(f"note: python {result['python']} here, the README asks a Space for {meta['python_version']}")

    port = SPACE_PORT if port_free(SPACE_PORT) else free_port()
    result["port"] = port
    if port != SPACE_PORT:
        say(f"port {SPACE_PORT} is taken on this machine: serving on {port} instead")
    log = work / "app.log"
    t0 = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(py), "app.py"], cwd=space, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                env=clean_env(GRADIO_SERVER_NAME="0.0.0.0", GRADIO_SERVER_PORT=str(port),
                                              SPACE_ID=SPACE_ID))
    try:
        url = f"http://127.0.0.1:{port}/"
        result["boot_seconds"] = round(wait_http(url, proc, BOOT_TIMEOUT, log), 1)
        say(f"app.py answered on 0.0.0.0:{port} after {result['boot_seconds']} s")
        client = subprocess.run([str(py), "-c", CLIENT_SCRIPT, url], env=clean_env(), capture_output=True, text=True,
                                timeout=GENERATE_TIMEOUT)
        if client.returncode != 0:
            result["error"] = f"gradio_client failed:\n{client.stderr[-3000:]}"
            return result
        story = json.loads(client.stdout.strip().splitlines()[-1])
        result["generate"] = story
        say(f"generated in {story['seconds']} s: {story['status'][:90]}")
        say(f"text: {story['final']!r}")
        if not str(story["status"]).startswith("**Done.**") or not story["final"].startswith("Once upon a time"):
            problems.append(f"the story did not finish: {story['status']!r}")
        if "Traceback" in log.read_text(errors="replace"):
            problems.append(f"the server log holds a traceback:\n{log.read_text(errors='replace')[-3000:]}")
    finally:
        stop(proc)
    result["problems"] = problems
    result["ok"] = not problems
    result["total_seconds"] = round(time.monotonic() - t_all, 1)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (default: a temporary directory, removed)")
    p.add_argument("--json", metavar="FILE", help="write the result as JSON")
    args = p.parse_args(argv)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="microdllm-space-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        try:
            result = boot(work)
        except Exception as e:  # noqa: BLE001 - one report either way
            result = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    for problem in result.get("problems", []):
        say(f"FAILED: {problem}")
    if result.get("error"):
        say(f"FAILED: {result['error']}")
    say(f"{'passed' if result['ok'] else 'FAILED'} in {result.get('total_seconds', '?')} s")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
