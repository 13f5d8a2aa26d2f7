"""Recursion's public screens as distributed: RxRx3-core (Hugging Face) and RxRx1 (rxrx.ai)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DatasetError
from ..images import REF_SEP
from .common import Log, finish, numeric_column, parse_wells, read_table, skip_report

# Recursion's six-channel protocol (RxRx1/RxRx3 README): w1 Hoechst, w2 ConA, w3 phalloidin,
# w4 SYTO14, w5 MitoTracker, w6 WGA.
RXRX_CHANNELS = ("DNA", "ER", "Actin", "RNA", "Mito", "WGA")
RXRX_COLORS = {"DNA": "#0000FF", "ER": "#00FF00", "Actin": "#FF0000", "RNA": "#FFFF00", "Mito": "#FF00FF",
               "WGA": "#00FFFF"}
RXRX3_CORE_COLUMNS = ("well_id", "experiment_name", "plate", "address", "gene", "treatment", "SMILES",
                      "concentration", "perturbation_type", "cell_type")


def _shard_keys(shard_dir: Path, log: Log) -> dict[str, str]:
    """{__key__: shard path} over every parquet shard below ``shard_dir`` (reads only the key column)."""
    import pyarrow.parquet as pq

    shards = sorted(p for p in shard_dir.rglob("*.parquet") if p.is_file())
    if not shards:
        raise DatasetError(f"--images {shard_dir}: no parquet shards found (looked for *.parquet, e.g. "
                           "data/train-00000-of-00035.parquet from the Hugging Face dataset)")
    out: dict[str, str] = {}
    others = []
    for shard in shards:
        try:
            pf = pq.ParquetFile(shard)
        except Exception as exc:
            raise DatasetError(f"parquet shard {shard} could not be read: {exc}") from exc
        if "__key__" not in pf.schema_arrow.names:
            others.append(shard.name)  # e.g. the embeddings file beside data/ in the Hugging Face folder
            continue
        keys = pf.read(columns=["__key__"]).column(0).to_pylist()
        path = str(shard.resolve())
        out.update(dict.fromkeys(keys, path))
    if not out:
        raise DatasetError(f"--images {shard_dir}: no parquet file with a '__key__' column (the RxRx3-core "
                           f"WebDataset layout) among {len(shards)} ({', '.join(others[:3])})")
    log(f"read the keys of {len(shards) - len(others)} parquet shards: {len(out)} images"
        + (f" ({len(others)} other parquet files ignored: {', '.join(others[:3])})" if others else ""))
    return out


def import_rxrx3_core(metadata, out, *, embeddings=None, images=None, log: Log = print, name=None):
    """metadata_rxrx3_core.csv (+ OpenPhenom embeddings, + image shards) -> dataset folder."""
    metadata = Path(metadata).expanduser()
    df = read_table(metadata, what="metadata")
    where = metadata.name
    missing = [c for c in RXRX3_CORE_COLUMNS if c not in df.columns]
    if missing:
        raise DatasetError(f"{where} does not look like metadata_rxrx3_core.csv: column {missing[0]!r} is missing "
                           f"(expected {', '.join(RXRX3_CORE_COLUMNS)})")
    if df.empty:
        raise DatasetError(f"{where} has no rows")
    plate_num = numeric_column(df["plate"], "plate", where)
    if plate_num.isna().any():
        raise DatasetError(f"{where}: column 'plate' is empty for well {df.loc[plate_num.isna(), 'well_id'].iloc[0]!r}")
    conc = numeric_column(df["concentration"], "concentration", where)
    treatment = df["treatment"].fillna("").astype(str)
    ptype_raw = df["perturbation_type"].fillna("").astype(str).str.upper()
    bad = ~ptype_raw.isin(["CRISPR", "COMPOUND"])
    if bad.any():
        raise DatasetError(f"{where}: perturbation_type {df.loc[bad, 'perturbation_type'].iloc[0]!r} for well "
                           f"{df.loc[bad, 'well_id'].iloc[0]!r}; expected CRISPR or COMPOUND")
    is_ctrl = treatment.str.contains("_control", regex=False)
    # The EFAAR RxRx3-core loader: gene = treatment.split("_")[0] unless it is a *_control treatment.
    gene = treatment.str.split("_", n=1).str[0]
    pert = np.where(is_ctrl, treatment, np.where(ptype_raw == "CRISPR", gene, treatment))
    ptype = np.where(is_ctrl, "control", np.where(ptype_raw == "CRISPR", "gene", "compound"))
    rows, cols, wells = parse_wells(df["address"], where)
    exp = df["experiment_name"].astype(str)
    plate_int = plate_num.astype(int).astype(str)
    obs = pd.DataFrame({
        "well_id": df["well_id"].astype(str),
        "batch": exp,
        # Plate numbers restart in every experiment: the physical plate is experiment + number.
        "plate": exp + "_" + plate_int,
        "well": wells, "row": rows, "col": cols, "site": 1,
        "perturbation": pert, "perturbation_type": ptype, "is_control": is_ctrl.to_numpy(),
        "concentration": conc,
        "SMILES": df["SMILES"].fillna("").astype(str),
        "cell_type": df["cell_type"].fillna("").astype(str),
        "gene": df["gene"].fillna("").astype(str),
        "treatment": treatment,
        "experiment_name": exp,
        "plate_number": plate_num.astype(int),
    })
    if obs["well_id"].duplicated().any():
        raise DatasetError(f"{where}: well_id {obs.loc[obs['well_id'].duplicated(), 'well_id'].iloc[0]!r} "
                           "appears more than once")
    extra: dict = {"source": {"layout": "rxrx3-core", "metadata": str(metadata.resolve())}}
    keep = np.ones(len(obs), dtype=bool)

    if embeddings is not None:
        emb_path = Path(embeddings).expanduser()
        have = _embedding_wells(emb_path)
        lacking = ~obs["well_id"].isin(have)
        skip_report("wells without an embedding row or with NaN features", obs.loc[lacking, "well_id"], log)
        keep &= ~lacking.to_numpy()
        extra["precomputed"] = {"path": str(emb_path.resolve()), "kind": "model", "name": "OpenPhenom"}

    channels: list[str] = []
    if images is not None:
        shard_dir = Path(images).expanduser()
        if not shard_dir.is_dir():
            raise DatasetError(f"--images {shard_dir} is not a folder of parquet shards")
        key_to_shard = _shard_keys(shard_dir, log)
        prefix = (exp + "/Plate" + plate_int + "/" + df["address"].astype(str) + "_s1_").tolist()
        refs = {}
        found = np.ones(len(obs), dtype=bool)
        for c, ch in enumerate(RXRX_CHANNELS, start=1):
            keys = [p + str(c) for p in prefix]
            shards = [key_to_shard.get(k) for k in keys]
            found &= np.array([s is not None for s in shards])
            refs[ch] = [f"{s}{REF_SEP}{k}" if s else "" for s, k in zip(shards, keys)]
        skip_report("wells without all 6 channel images in the shards",
                    obs.loc[~found & keep, "well_id"], log)
        keep &= found
        for ch in RXRX_CHANNELS:
            obs[f"image_{ch}"] = refs[ch]
        channels = list(RXRX_CHANNELS)
        extra["source"]["images"] = str(shard_dir.resolve())
    if embeddings is None and images is None:
        log("note: neither --embeddings nor --images given: the dataset has metadata only")
    obs = obs[keep]
    return finish(out, obs, channels=channels, control_label="EMPTY_control", colors=RXRX_COLORS, name=name,
                  extra_config=extra, log=log, source=where)


def _embedding_wells(path: Path) -> set[str]:
    """well_ids with a complete feature row in an embeddings parquet/CSV (``well_id`` + features)."""
    import pyarrow.parquet as pq
    import pyarrow.types as pat

    if not path.is_file():
        raise DatasetError(f"--embeddings {path} does not exist")
    if path.suffix.lower() not in (".parquet", ".pq"):
        df = read_table(path, what="embeddings")
        if "well_id" not in df.columns:
            raise DatasetError(f"embeddings {path.name} has no 'well_id' column")
        feats = df.drop(columns=["well_id"]).select_dtypes("number")
        return set(df.loc[np.isfinite(feats.to_numpy(dtype=float)).all(1), "well_id"].astype(str))
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        raise DatasetError(f"embeddings {path} could not be read: {exc}") from exc
    names = pf.schema_arrow.names
    if "well_id" not in names:
        raise DatasetError(f"embeddings {path.name} has no 'well_id' column (columns: {', '.join(names[:5])}, ...)")
    feat = [n for n in names if n != "well_id"]
    if not feat:
        raise DatasetError(f"embeddings {path.name} has no feature columns beside 'well_id'")
    for name in feat:
        t = pf.schema_arrow.field(name).type
        if not (pat.is_integer(t) or pat.is_floating(t)):
            raise DatasetError(f"embeddings {path.name}: column {name!r} is not numeric ({t})")
    # 64 columns at a time keeps peak memory at a sixth of the table (222,601 x 384 is 684 MB as float64).
    ids = pf.read(columns=["well_id"]).column(0).cast("string").to_pylist()
    ok = np.ones(len(ids), dtype=bool)
    for start in range(0, len(feat), 64):
        block = pf.read(columns=feat[start:start + 64])
        for col in block.columns:
            ok &= np.isfinite(col.to_numpy().astype(np.float64, copy=False))
        del block
    return {i for i, good in zip(ids, ok) if good}


def import_rxrx1(root, out, *, log: Log = print, name=None):
    """RxRx1 as downloaded: ``metadata.csv`` + ``images/{experiment}/Plate{plate}/{well}_s{site}_w{c}.png``."""
    root = Path(root).expanduser()
    meta_path = root / "metadata.csv"
    if not meta_path.is_file():
        raise DatasetError(f"--root {root}: no metadata.csv (expected the RxRx1 layout: metadata.csv and "
                           "images/{experiment}/Plate{plate}/{well}_s{site}_w{channel}.png)")
    df = read_table(meta_path, what="metadata")
    need = ("experiment", "plate", "well", "site", "well_type", "sirna")
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise DatasetError(f"{meta_path}: column {missing[0]!r} is missing (RxRx1 metadata has site_id, well_id, "
                           "cell_type, dataset, experiment, plate, well, site, well_type, sirna, sirna_id)")
    where = "metadata.csv"
    site = numeric_column(df["site"], "site", where)
    plate = numeric_column(df["plate"], "plate", where)
    rows, cols, wells = parse_wells(df["well"], where)
    exp = df["experiment"].astype(str)
    plate_s = plate.astype(int).astype(str)
    well_raw = df["well"].astype(str)
    site_s = site.astype(int).astype(str)
    sirna = df["sirna"].fillna("").astype(str)
    wtype = df["well_type"].fillna("").astype(str)
    is_ctrl = wtype.eq("negative_control")
    control = sirna[is_ctrl].mode().iloc[0] if is_ctrl.any() else "EMPTY"
    obs = pd.DataFrame({
        "well_id": exp + "_" + plate_s + "_" + well_raw + "_s" + site_s,
        "batch": exp, "plate": exp + "_" + plate_s, "well": wells, "row": rows, "col": cols,
        "site": site.astype(int),
        "perturbation": np.where(is_ctrl, control, sirna),
        "perturbation_type": np.where(is_ctrl, "control", "gene"),
        "is_control": is_ctrl.to_numpy(),
        "well_type": wtype,
    })
    for c in ("cell_type", "dataset", "sirna_id"):
        if c in df.columns:
            obs[c] = df[c].to_numpy()
    img_root = root / "images"
    listing: dict[Path, set] = {}
    found = np.ones(len(obs), dtype=bool)
    for c, ch in enumerate(RXRX_CHANNELS, start=1):
        paths = []
        for i, (e, p, w, s) in enumerate(zip(exp, plate_s, well_raw, site_s)):
            folder = img_root / e / f"Plate{p}"
            if folder not in listing:
                listing[folder] = set(os.listdir(folder)) if folder.is_dir() else set()
            fname = f"{w}_s{s}_w{c}.png"
            if fname not in listing[folder]:
                found[i] = False
            paths.append(str((folder / fname).resolve()))
        obs[f"image_{ch}"] = paths
    if not found.any():
        raise DatasetError(f"--root {root}: no image matched images/{{experiment}}/Plate{{plate}}/{{well}}_s{{site}}"
                           f"_w{{channel}}.png (e.g. {obs['image_DNA'].iloc[0]} does not exist)")
    skip_report("sites without all 6 channel images", obs.loc[~found, "well_id"], log)
    obs = obs[found]
    return finish(out, obs, channels=list(RXRX_CHANNELS), control_label=control, colors=RXRX_COLORS, name=name,
                  extra_config={"source": {"layout": "rxrx1", "root": str(root.resolve())}}, log=log,
                  source="rxrx1")
