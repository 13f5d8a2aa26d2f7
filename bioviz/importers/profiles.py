"""Per-well (or per-site) profiles from CellProfiler, pycytominer or JUMP: a profiles-only dataset.

Metadata columns are recognised by their ``Metadata_`` or CellProfiler's ``Image_Metadata_`` prefix;
every other numeric column is a feature. Features are written to ``profiles.parquet`` keyed by
``well_id`` and registered in dataset.json as the ``precomputed`` embedder of kind ``handcrafted``.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .. import atomic
from ..errors import DatasetError
from .common import (Log, check_mixed, finish, norm_key, numeric_column, parse_wells, pick_control,
                     read_table, skip_report)

META_PREFIXES = ("Image_Metadata_", "Metadata_")
# Non-feature columns CellProfiler writes without a Metadata_ prefix.
_NOT_FEATURE = re.compile(r"^(Image_)?(FileName|PathName|URL|ExecutionTime|ModuleError|Group_|Series|Frame|"
                          r"ImageNumber|ObjectNumber|Height|Width|MD5Digest|Scaling)", re.IGNORECASE)

# First match wins (compared case-insensitively on the name without its prefix).
PLATE_NAMES = ("Plate", "Assay_Plate_Barcode", "Barcode", "plate_barcode")
WELL_NAMES = ("Well", "well_position", "WellName")
SITE_NAMES = ("Site", "Field", "FOV")
BATCH_NAMES = ("Batch", "batch_id", "Batch_Number", "experiment", "Source")
PERT_NAMES = ("perturbation", "pert_iname", "pert_id", "broad_sample", "JCP2022", "InChIKey", "compound",
              "Compound", "treatment", "Treatment", "gene", "Gene", "gene_symbol", "Symbol", "sirna", "orf")
CONC_NAMES = ("concentration", "mmoles_per_liter", "dose", "pert_dose", "conc", "Concentration_uM")
MOA_NAMES = ("moa", "MOA", "mechanism")
TARGET_NAMES = ("target", "target_gene", "targets", "Target", "target_list")
SMILES_NAMES = ("SMILES", "smiles")
CELL_NAMES = ("cell_type", "cell_id", "cell_line", "CellLine")
GENE_HINTS = ("gene", "symbol", "sirna", "orf", "crispr", "guide")
# a column of cell lines, densities or time points varies something that is neither (was "compound")
OTHER_HINTS = ("cell", "line", "density", "seeding", "time", "condition")


def strip_prefix(col: str) -> str:
    for p in META_PREFIXES:
        if col.startswith(p):
            return col[len(p):]
    return col


def _find(meta: pd.DataFrame, names, given: str | None, what: str, where: str) -> str | None:
    """The metadata column for ``what``: the one the user named, else the first known name present."""
    lower = {c.lower(): c for c in meta.columns}
    if given:
        key = strip_prefix(given)
        if key in meta.columns:
            return key
        if key.lower() in lower:
            return lower[key.lower()]
        raise DatasetError(f"{where}: --{what} column {given!r} is not in the table (metadata columns: "
                           f"{', '.join(sorted(meta.columns)[:12])})")
    for n in names:
        if n.lower() in lower:
            return lower[n.lower()]
    return None


def split_metadata(df: pd.DataFrame, where: str, log: Log) -> tuple[pd.DataFrame, list[str]]:
    """Metadata frame with prefixes stripped, and the feature column names."""
    meta_cols = [c for c in df.columns if str(c).startswith(META_PREFIXES)]
    meta = pd.DataFrame({strip_prefix(c): df[c] for c in meta_cols}, index=df.index)
    # CellProfiler's Image_Metadata_Plate and pycytominer's Metadata_Plate can both be present.
    meta = meta.loc[:, ~meta.columns.duplicated()]
    rest = [c for c in df.columns if c not in meta_cols]
    feats, skipped = [], []
    for c in rest:
        if _NOT_FEATURE.match(str(c)) or not pd.api.types.is_numeric_dtype(df[c]) or df[c].dtype == bool:
            skipped.append(c)
        else:
            feats.append(c)
    if skipped:
        log(f"{where}: {len(skipped)} non-feature columns without a Metadata_ prefix ignored "
            f"(first: {skipped[0]})")
    return meta, feats


def annotate(meta: pd.DataFrame, table, on: str, where: str, log: Log) -> pd.DataFrame:
    """Left-join a labels table on ``on`` ('Well' or 'Plate=barcode,Well=well').

    ``table`` may contain ``{column}``: each group of rows sharing that column's value is joined with
    its own file, e.g. plate maps named in a barcode table (``{platemap_file}.csv``).
    """
    pairs = []
    for part in [p.strip() for p in on.split(",") if p.strip()]:
        left, _, right = part.partition("=")
        pairs.append((left.strip(), (right or left).strip()))
    if not pairs:
        raise DatasetError("--on needs the join columns, e.g. --on Well or --on Plate=barcode,Well=well")
    lkeys = []
    for left, _ in pairs:
        col = _find(meta, (), left, "on", where)
        lkeys.append(col)
    given_frame = isinstance(table, pd.DataFrame)
    template = "perturbations table" if given_frame else str(table)
    fields = [] if given_frame else re.findall(r"\{([^{}]+)\}", template)
    if given_frame:
        parts = [(np.ones(len(meta), dtype=bool), table, template)]
    elif fields:
        groups = [(_find(meta, (), f, "annotate", where), f) for f in fields]
        keyvals = meta[[g for g, _ in groups]].astype(str).drop_duplicates()
        parts = []
        for _, kv in keyvals.iterrows():
            path = template.format(**{f: kv[g] for g, f in groups})
            sub = read_table(path, what="--annotate table")
            mask = np.ones(len(meta), dtype=bool)
            for g, _ in groups:
                mask &= meta[g].astype(str).to_numpy() == kv[g]
            parts.append((mask, sub, Path(path).name))
    else:
        parts = [(np.ones(len(meta), dtype=bool), read_table(template, what="--annotate table"), Path(template).name)]
    out = meta.copy()
    matched = np.zeros(len(meta), dtype=bool)
    for mask, ann, name in parts:
        ann = ann.rename(columns={c: strip_prefix(str(c)) for c in ann.columns})
        ann = ann.loc[:, ~ann.columns.duplicated()]
        rkeys = []
        for _, right in pairs:
            lower = {c.lower(): c for c in ann.columns}
            rk = right if right in ann.columns else lower.get(right.lower())
            if rk is None:
                raise DatasetError(f"--annotate {name}: join column {right!r} is missing "
                                   f"(columns: {', '.join(map(str, ann.columns[:12]))})")
            rkeys.append(rk)
        check_mixed(ann, f"--annotate {name}")
        akey = pd.Series(["|".join(t) for t in zip(*[norm_key(ann[k]) for k in rkeys])], index=ann.index)
        dup = akey.duplicated()
        if dup.any():
            raise DatasetError(f"--annotate {name}: {'+'.join(rkeys)} {akey[dup].iloc[0]!r} appears more than once; "
                               "a labels table needs one row per key")
        value_cols = [c for c in ann.columns if c not in rkeys]
        lookup = ann.set_index(akey)[value_cols]
        sub = meta[mask]
        mkey = pd.Series(["|".join(t) for t in zip(*[norm_key(sub[k]) for k in lkeys])], index=sub.index)
        hit = mkey.isin(lookup.index)
        matched[np.flatnonzero(mask)[hit.to_numpy()]] = True
        joined = lookup.reindex(mkey.to_numpy())
        joined.index = sub.index
        for c in value_cols:
            col = joined[c]
            if c in out.columns:
                # The labels table wins where it has a value; the profile keeps its own elsewhere.
                base = out[c].astype(object)
                base.loc[sub.index] = col.where(col.notna(), out.loc[sub.index, c]).astype(object)
                out[c] = base
            else:
                out[c] = pd.Series(np.nan, index=out.index, dtype=object)
                out.loc[sub.index, c] = col.astype(object)
                out[c] = out[c].infer_objects()
    log(f"annotated {int(matched.sum())} of {len(meta)} rows from {Path(template).name} on "
        f"{', '.join(f'{a}={b}' for a, b in pairs)}" + (f" ({int((~matched).sum())} had no match)" if (~matched).any() else ""))
    return out


def build_obs(meta: pd.DataFrame, *, where: str, perturbation=None, plate=None, well=None, control=None,
              perturbation_type=None, log: Log = print, default_plate: str | None = None):
    """Screen metadata (required + optional columns + the rest, renamed) from a stripped metadata frame."""
    pcol = _find(meta, PLATE_NAMES, plate, "plate", where)
    wcol = _find(meta, WELL_NAMES, well, "well", where)
    if wcol is None:
        raise DatasetError(f"{where}: no well column (looked for Metadata_Well, Image_Metadata_Well, "
                           f"Metadata_well_position); name it with --well COL")
    if pcol is None and default_plate is None:
        raise DatasetError(f"{where}: no plate column (looked for Metadata_Plate, Image_Metadata_Plate, "
                           f"Metadata_Assay_Plate_Barcode); name it with --plate COL")
    scol = _find(meta, SITE_NAMES, None, "site", where)
    bcol = _find(meta, BATCH_NAMES, None, "batch", where)
    pert_col = _find(meta, PERT_NAMES, perturbation, "perturbation", where)
    if pert_col is None:
        raise DatasetError(f"{where}: no perturbation column (looked for {', '.join('Metadata_' + n for n in PERT_NAMES[:6])}, ...); "
                           "name it with --perturbation COL")
    used = {pert_col}
    pert = meta[pert_col].astype(object)
    # LINCS leaves pert_id empty on DMSO wells; fill from the other perturbation columns (broad_sample).
    for alt in PERT_NAMES:
        if not pert.isna().any() or perturbation:
            break
        a = _find(meta, (alt,), None, "perturbation", where)
        if a and a != pert_col:
            pert = pert.where(pert.notna(), meta[a])
    # JUMP-Target plate maps leave broad_sample empty in DMSO wells: only the solvent went in.
    vehicle = _find(meta, ("solvent", "pert_vehicle"), None, "solvent", where)
    if vehicle and not perturbation and pert.isna().any():
        pert = pert.where(pert.notna(), meta[vehicle])
    plate_vals = meta[pcol].astype(str) if pcol else pd.Series(default_plate, index=meta.index)
    empty = pert.isna() | (pert.astype(str).str.strip() == "")
    if empty.any():
        skip_report(f"rows with no {pert_col!r} value", (plate_vals + "/" + meta[wcol].astype(str))[empty], log)
    rows, cols, wells = parse_wells(meta[wcol], where)
    site = numeric_column(meta[scol], scol, where).fillna(1).astype(int) if scol else pd.Series(1, index=meta.index)
    plate_s = plate_vals.to_numpy()
    batch = meta[bcol].astype(str).to_numpy() if bcol else plate_s
    pert_s = pert.astype(str).to_numpy()
    label = pick_control(pd.Series(pert_s[~empty.to_numpy()]), control, where)
    if perturbation_type is None:
        name = pert_col.lower()
        perturbation_type = ("gene" if any(h in name for h in GENE_HINTS)
                             else "other" if any(h in name for h in OTHER_HINTS) else "compound")
        alt = ", ".join(t for t in ("gene", "compound", "other") if t != perturbation_type)
        log(f"perturbations from column {pert_col!r}: treated as {perturbation_type}"
            f"{'s' if perturbation_type != 'other' else ' (neither genes nor compounds)'} "
            f"(--perturbation-type {alt} to change)")
    obs = pd.DataFrame({
        "well_id": [f"{p}_{w}_s{s}" for p, w, s in zip(plate_s, wells, site)],
        "batch": batch, "plate": plate_s, "well": wells, "row": rows, "col": cols, "site": site.to_numpy(),
        "perturbation": pert_s, "perturbation_type": perturbation_type,
        "is_control": pert_s == (label if label is not None else object()),
    }, index=meta.index)
    used |= {c for c in (pcol, wcol, scol, bcol) if c}
    for std, names in (("concentration", CONC_NAMES), ("moa", MOA_NAMES), ("target", TARGET_NAMES),
                       ("SMILES", SMILES_NAMES), ("cell_type", CELL_NAMES)):
        c = _find(meta, names, None, std, where)
        if c is not None:
            obs[std] = numeric_column(meta[c], c, where) if std == "concentration" else meta[c].to_numpy()
            used.add(c)
    taken = set(obs.columns) | {"col", "row"}
    for c in meta.columns:
        if c in used:
            continue
        new = c if c not in taken and c.lower() not in {"row", "col", "column", "well", "plate", "site"} else f"meta_{c}"
        if new in obs.columns:
            continue
        obs[new] = meta[c].to_numpy()
    keep = ~empty.to_numpy()
    return obs[keep], label, keep


def import_profiles(tables, out, *, annotate_tables=(), on=(), perturbation=None, plate=None, well=None,
                    control=None, perturbation_type=None, log: Log = print, name=None):
    """One or more profile tables (one per plate is common) -> a profiles-only dataset folder."""
    tables = [Path(t).expanduser() for t in ([tables] if isinstance(tables, (str, Path)) else tables)]
    if not tables:
        raise DatasetError("name at least one profiles table")
    if len(annotate_tables) != len(on):
        raise DatasetError("give one --on COLS for every --annotate TABLE")
    metas, feats_all, frames = [], [], []
    for t in tables:
        df = read_table(t, what="profiles table")
        if df.empty:
            raise DatasetError(f"profiles table {t} has no rows")
        meta, feats = split_metadata(df, t.name, log)
        if meta.empty:
            raise DatasetError(f"profiles table {t.name} matches no profile layout: no Metadata_* or "
                               "Image_Metadata_* columns (CellProfiler, pycytominer and JUMP prefix their "
                               "metadata so)")
        if not feats:
            raise DatasetError(f"profiles table {t.name} has no numeric feature columns")
        check_mixed(meta, t.name)
        metas.append(meta)
        feats_all.append(feats)
        frames.append(df[feats])
    common = [c for c in feats_all[0] if all(c in set(f) for f in feats_all[1:])]
    union = set().union(*map(set, feats_all))
    if len(tables) > 1:
        log(f"{len(tables)} tables: {len(common)} features common to all kept, "
            f"{len(union) - len(common)} present in only some dropped")
    if not common:
        raise DatasetError("the profiles tables share no feature column")
    meta = pd.concat(metas, ignore_index=True)
    X = pd.concat([f[common] for f in frames], ignore_index=True)
    where = tables[0].name if len(tables) == 1 else f"{len(tables)} profiles tables"
    for ann, cols in zip(annotate_tables, on):
        meta = annotate(meta, ann, cols, where, log)
    obs, label, keep = build_obs(meta, where=where, perturbation=perturbation, plate=plate, well=well,
                                 control=control, perturbation_type=perturbation_type, log=log)
    X = X[keep].reset_index(drop=True)
    obs = obs.reset_index(drop=True)
    vals = X.to_numpy(dtype=np.float64)
    finite = np.isfinite(vals)
    nan_only = ~finite.any(0)
    partial = finite.any(0) & ~finite.all(0)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: counted as nan_only
        lo, hi = np.nanmin(vals, 0), np.nanmax(vals, 0)
    constant = ~nan_only & ~partial & (lo == hi)
    drop = nan_only | constant | partial
    log(f"features: {len(common)} read, {int(nan_only.sum())} NaN-only dropped, {int(constant.sum())} constant dropped, "
        f"{int(partial.sum())} with NaN in some wells dropped, {int((~drop).sum())} kept")
    if drop.all():
        raise DatasetError(f"{where}: no feature is left after dropping constant and NaN columns")
    out = Path(out).expanduser()
    feat = pd.DataFrame(vals[:, ~drop], columns=[str(c) for c, d in zip(common, drop) if not d])
    feat.insert(0, "well_id", obs["well_id"].to_numpy())
    if obs["well_id"].duplicated().any():
        dup = obs.loc[obs["well_id"].duplicated(), "well_id"].iloc[0]
        raise DatasetError(f"{where}: plate/well/site {dup!r} appears in more than one row; per-object "
                           "tables must be aggregated to wells first (pycytominer aggregate)")
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_parquet(feat, out / "profiles.parquet")
    extra = {"precomputed": {"path": "profiles.parquet", "kind": "handcrafted", "name": "profiles"},
             "source": {"layout": "profiles", "tables": [str(t.resolve()) for t in tables],
                        "annotate": [str(a) for a in annotate_tables]}}
    res = finish(out, obs, channels=[], control_label=label, name=name, extra_config=extra, log=log, source=where)
    log(f"wrote {out / 'profiles.parquet'} ({feat.shape[1] - 1} features; embedder 'precomputed', kind handcrafted)")
    return res
