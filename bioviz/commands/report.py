"""`bioviz report`: one self-contained HTML page of the dashboard's figures and tables."""
from __future__ import annotations

from . import add_dataset, resolve_dataset

HELP = "write one self-contained HTML page with the scorecard, recall, confounder figures and tables"


def add_parser(sub):
    p = sub.add_parser("report", help=HELP, description=HELP.capitalize() + " (opens offline; plotly.js "
                       "and images are inlined).")
    add_dataset(p)
    p.add_argument("--out", default="report.html", metavar="FILE", help="HTML file to write (default report.html)")
    p.add_argument("--no-umap", action="store_true", help="leave out the UMAP figures (computing one for a large "
                   "screen takes minutes when it is not cached)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..dashboard.report import write_report

    root = resolve_dataset(args.dataset)
    out = write_report(root, args.out, umap=not args.no_umap)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0
