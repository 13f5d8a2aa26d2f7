"""`bioviz app`: start the dashboard (streamlit run <repo>/app.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HELP = "start the dashboard in the browser (Streamlit)"
APP = Path(__file__).resolve().parents[2] / "app.py"


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
    try:
        return subprocess.call(command(args.port), cwd=str(APP.parent), env=env)
    except KeyboardInterrupt:
        return 0
