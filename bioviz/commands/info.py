"""`bioviz info`: check a dataset folder and print what is in it."""
from __future__ import annotations

from ..screen import read_screen

HELP = "check a dataset folder and summarise it (wells, plates, perturbations, channels)"


def add_parser(sub):
    p = sub.add_parser("info", help=HELP, description=HELP.capitalize() + ". "
                       "Problems (a missing column, image file or channel, a duplicated well) are "
                       "reported on one line naming what is at fault.")
    p.add_argument("--dataset", required=True, metavar="DIR", help="dataset folder (with dataset.json)")
    p.set_defaults(func=run)
    return p


def format_summary(s: dict) -> str:
    lines = [
        f"dataset      {s['name']}  ({s['path']})",
        f"sites        {s['sites']}  in {s['wells']} wells, {s['plates']} plates, {s['batches']} batches",
        "perturbations " + ", ".join(f"{n} {t}" for t, n in sorted(s["perturbations_by_type"].items())),
        f"controls     {s['control_sites']} sites labelled {s['control_label']!r}",
        f"channels     {', '.join(s['channels']) or '(none: profiles only)'}",
        f"ground truth {'yes (simulated screen)' if s['has_truth'] else 'no'}",
    ]
    return "\n".join(lines)


def run(args) -> int:
    screen = read_screen(args.dataset)
    print(format_summary(screen.summary()))
    return 0
