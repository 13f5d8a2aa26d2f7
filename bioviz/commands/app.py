"""`bioviz app`: start the dashboard (streamlit run <repo>/app.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HELP = "start the dashboard in the browser (Streamlit)"
APP = Path(__file__).resolve().parents[2] / "app.py"
STOP_GRACE_S = 10  # seconds a signalled Streamlit child gets to stop before it is terminated


def add_parser(sub):
    p = sub.add_parser("app", help=HELP, description=HELP.capitalize() + ".")
    p.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    p.add_argument("--dataset", default=None, metavar="NAME_OR_DIR",
                   help="dataset opened first: a folder name under data/ (e.g. demo) or a path")
    p.set_defaults(func=run)
    return p


def command(port: int = 8501) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--server.port", str(port),
            # nobody edits the code during a review; watching a tree with a venv in it costs CPU
            "--server.fileWatcherType", "none"]


def run(args) -> int:
    from ..errors import BiovizError

    if not APP.is_file():
        raise BiovizError(f"{APP} is missing: `bioviz app` runs from a source checkout (pip install -e .)")
    env = dict(os.environ)
    if args.dataset:
        from ..dashboard.datasets import dataset_label, resolve_dataset

        # The dashboard reads its first dataset from the URL; a default for a bare URL goes via env.
        env["BIOVIZ_DATASET"] = dataset_label(resolve_dataset(args.dataset))
    url = f"http://localhost:{args.port}/" + (f"?dataset={env['BIOVIZ_DATASET']}" if args.dataset else "")
    print(f"bioviz dashboard: {url}", flush=True)
    return serve(command(args.port), cwd=str(APP.parent), env=env)


def serve(cmd: list[str], **popen_kw) -> int:
    """Run the Streamlit server as a child and never leave it behind.

    SIGINT and SIGTERM sent to bioviz are passed on to the child, which shuts its server down;
    whatever way this function is left, a child still running is terminated (then killed after
    10 s), so stopping `bioviz app` frees the port.
    """
    proc = subprocess.Popen(cmd, **popen_kw)
    stopped = []
    stopped_at = [0.0]

    def forward(signum, frame):
        if not stopped:
            stopped_at[0] = time.monotonic()
        stopped.append(signum)
        if proc.poll() is None:
            proc.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        # Streamlit serves its port before it installs its own SIGINT handler; a Ctrl-C in that
        # window (seconds on 2 busy cores) cancels its event loop and leaves the process hanging,
        # so a child still up STOP_GRACE_S after the signal is terminated below.
        while True:
            try:
                rc = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if stopped and time.monotonic() - stopped_at[0] > STOP_GRACE_S:
                    return 0
        return 0 if stopped else rc
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
