"""`bioviz info`: check a dataset folder and print what is in it."""
from __future__ import annotations

from pathlib import Path

from . import add_dataset, open_screen

HELP = "check a dataset folder and summarise it (wells, plates, perturbations, channels)"


def add_parser(sub):
    p = sub.add_parser("info", help=HELP, description=HELP.capitalize() + ". "
                       "Problems (a missing column, image file or channel, a duplicated well) are "
                       "reported on one line naming what is at fault. One image per channel is opened (bit depth, "
                       "one 2-D plane, equal shapes). Identical feature vectors shared by different wells in a "
                       "precomputed table are flagged with exit status 1.")
    add_dataset(p)
    p.add_argument("--precomputed", default=None, metavar="TABLE",
                   help="also check this feature table (default: the one dataset.json records, if any) "
                        "for identical feature vectors shared by different wells")
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


def check_images(screen) -> list[tuple[str, str, tuple]]:
    """(channel, dtype, shape) of the first site's image in every channel.

    Opening one image per channel makes a float or 3-D file, or channels of different sizes,
    fail here in one line rather than minutes into `bioviz embed`.
    """
    from ..errors import DatasetError
    from ..images import read_image

    if not screen.channels or not len(screen.obs):
        return []
    well_id = str(screen.obs["well_id"].iloc[0])
    found = []
    for ch in screen.channels:
        img = read_image(screen.image_path(well_id, ch))  # raises on bit depth / dimensions, naming the file
        found.append((ch, str(img.dtype), tuple(img.shape)))
    shapes = {shape for _, _, shape in found}
    if len(shapes) > 1:
        detail = ", ".join(f"{ch} {'x'.join(map(str, shape))}" for ch, _, shape in found)
        raise DatasetError(f"well {well_id}: channels have different image shapes ({detail})")
    return found


def shared_vectors(screen, path=None) -> tuple[str, list[list[str]]] | None:
    """(table name, groups of wells) whose rows in the precomputed table are identical.

    Sites of one well may share a per-well profile; different wells never should: a copied row
    is an export error that makes those wells each other's nearest neighbours and inflates recall.
    None when the dataset has no precomputed table.
    """
    import numpy as np
    import pandas as pd

    from ..embed import create_embedder

    rec = (getattr(screen, "config", None) or {}).get("precomputed") or {}
    if not path and not rec.get("path"):
        return None
    emb = create_embedder("precomputed", **({"path": str(path)} if path else {}))
    emb.resolve(screen)
    X = np.ascontiguousarray(emb.table_features(screen), dtype=np.float64)
    obs = screen.obs
    wells = (obs["plate"].astype(str) + "/" + obs["well"].astype(str)).to_numpy()
    first = ~pd.Series(wells).duplicated().to_numpy()  # one row per well
    Xw, names = X[first], wells[first]
    h = pd.util.hash_pandas_object(pd.DataFrame(Xw), index=False).to_numpy()
    groups = []
    for _, idx in pd.Series(np.arange(len(h))).groupby(h):
        idx = idx.to_numpy()
        if len(idx) < 2:
            continue
        # the hash only proposes; equal vectors decide
        ref = Xw[idx[0]]
        same = [i for i in idx if np.array_equal(Xw[i], ref)]
        if len(same) > 1:
            groups.append(sorted(names[same].tolist()))
    return Path(emb.config["path"]).name, sorted(groups)


def run(args) -> int:
    screen = open_screen(args.dataset)
    print(format_summary(screen.summary()))
    images = check_images(screen)
    if images:
        print("images       " + ", ".join(f"{ch} {dt} {'x'.join(map(str, shape))}" for ch, dt, shape in images)
              + "  (first site, one per channel)")
    dup = shared_vectors(screen, args.precomputed)
    if dup is not None:
        table, groups = dup
        if not groups:
            print(f"features     {table}: every well has its own feature vector")
        else:
            n = sum(len(g) for g in groups)
            shown = "; ".join(" = ".join(g[:4]) + (f" (+{len(g) - 4})" if len(g) > 4 else "") for g in groups[:3])
            print(f"WARNING      {table}: {n} wells in {len(groups)} groups share identical feature vectors "
                  f"(an export error that inflates recall): {shown}"
                  + (f"; and {len(groups) - 3} more groups" if len(groups) > 3 else ""))
            return 1
    return 0
