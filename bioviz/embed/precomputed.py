"""precomputed: features computed elsewhere, as a table keyed by well_id or a CellProfiler profile.

Two layouts are read:
* ``well_id`` + numeric feature columns (any names, e.g. ``feature_0``...);
* a CellProfiler / pycytominer profile: ``Metadata_``-prefixed metadata, every other column a
  feature. Rows are matched by ``Metadata_well_id`` if present, else by plate + well (+ site when
  the table has ``Metadata_Site``); a per-well profile is given to every site of that well.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import EmbedderError
from .registry import TableEmbedder, file_signature, register_embedder


def read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        sep = "\t" if path.suffix.lower() in {".tsv", ".txt"} else ","
        return pd.read_csv(path, sep=sep, dtype={"well_id": str, "Metadata_well_id": str,
                                                 "Metadata_Plate": str, "Metadata_Well": str})
    except Exception as exc:
        raise EmbedderError(f"precomputed table {path} could not be read: {exc}") from exc


@register_embedder("precomputed", needs_files=True,
                   description="a parquet/CSV keyed by well_id, or a CellProfiler/pycytominer profile")
class Precomputed(TableEmbedder):
    def defaults(self):
        # nan: "error" refuses NaN/inf features; "drop_columns" drops the features that have any.
        # kind: what the table is (model, handcrafted, baseline or null; see bioviz.embed.kinds),
        # so a CellProfiler profile is coloured and attributed as handcrafted features
        return {"path": None, "nan": "error", "file": None, "kind": "model"}

    def __init__(self, **cfg):
        super().__init__(**cfg)
        if self.config["nan"] not in ("error", "drop_columns"):
            raise EmbedderError("precomputed.nan must be 'error' or 'drop_columns'")
        from .kinds import KINDS

        if self.config["kind"] not in KINDS:
            raise EmbedderError(f"precomputed.kind must be one of {', '.join(KINDS)}, not {self.config['kind']!r}")
        if self.config["path"]:
            self.config["file"] = file_signature(self.config["path"])

    def resolve(self, screen) -> None:
        # `bioviz import` records its table in dataset.json ("precomputed": {"path", "kind"}), so
        # `bioviz embed --embedders precomputed` needs no --config; options given win.
        if self.config["path"]:
            return
        rec = (getattr(screen, "config", None) or {}).get("precomputed") or {}
        if not rec.get("path"):
            raise EmbedderError("embedder precomputed needs a table: --config precomputed.path=FILE")
        path = Path(str(rec["path"])).expanduser()
        self.config["path"] = str(path if path.is_absolute() else screen.root / path)
        if "kind" not in self.user_config and rec.get("kind"):
            self.config["kind"] = str(rec["kind"])
        if "nan" not in self.user_config and rec.get("nan"):
            self.config["nan"] = str(rec["nan"])
        self.config["file"] = file_signature(self.config["path"])

    def table_features(self, screen):
        path = Path(self.config["path"]).expanduser()
        df = read_table(path)
        obs = screen.obs
        meta_cols = [c for c in df.columns if str(c).startswith("Metadata_")]
        if "well_id" in df.columns or "Metadata_well_id" in df.columns:
            key = "well_id" if "well_id" in df.columns else "Metadata_well_id"
            df = df.assign(_key=df[key].astype(str))
            feat_cols = [c for c in df.columns if c not in (key, "_key") and c not in meta_cols]
            want = obs["well_id"].astype(str)
        elif {"Metadata_Plate", "Metadata_Well"} <= set(df.columns):
            by_site = "Metadata_Site" in df.columns
            parts = [df["Metadata_Plate"].astype(str), df["Metadata_Well"].astype(str)]
            oparts = [obs["plate"].astype(str), obs["well"].astype(str)]
            if by_site:
                parts.append(pd.to_numeric(df["Metadata_Site"], errors="coerce").astype("Int64").astype(str))
                oparts.append(obs["site"].astype(str))
            df = df.assign(_key=pd.Series(["|".join(t) for t in zip(*parts)], index=df.index))
            want = pd.Series(["|".join(t) for t in zip(*oparts)])
            feat_cols = [c for c in df.columns if c not in meta_cols and c != "_key"]
            key = "Metadata_Plate+Metadata_Well" + ("+Metadata_Site" if by_site else "")
        else:
            raise EmbedderError(f"precomputed table {path.name}: no 'well_id' column and no "
                                "Metadata_Plate/Metadata_Well columns to match rows to the screen")
        non_num = [c for c in feat_cols if not pd.api.types.is_numeric_dtype(df[c])]
        if non_num:
            raise EmbedderError(f"precomputed table {path.name}: column {non_num[0]!r} is not numeric "
                                f"({len(non_num)} non-numeric columns); prefix metadata with 'Metadata_'")
        if not feat_cols:
            raise EmbedderError(f"precomputed table {path.name} has no feature columns")
        dup = df["_key"].duplicated()
        if dup.any():
            raise EmbedderError(f"precomputed table {path.name}: {key} {df.loc[dup, '_key'].iloc[0]!r} "
                                f"appears more than once")
        table = df.set_index("_key")
        found = want.isin(table.index)
        if not found.all():
            raise EmbedderError(
                f"precomputed table {path.name}: only {int(found.sum())} of {len(want)} screen sites "
                f"match by {key} (e.g. {want[~found].iloc[0]!r} is missing; the table has {len(table)} rows)")
        X = table.loc[want.to_numpy(), feat_cols].to_numpy(dtype=np.float64)
        bad = ~np.isfinite(X)
        if bad.any():
            cols = [feat_cols[i] for i in np.flatnonzero(bad.any(0))]
            if self.config["nan"] == "drop_columns":
                keep = ~bad.any(0)
                X, feat_cols = X[:, keep], [c for c, k in zip(feat_cols, keep) if k]
                if not feat_cols:
                    raise EmbedderError(f"precomputed table {path.name}: every feature has NaN or inf")
            else:
                raise EmbedderError(
                    f"precomputed table {path.name}: {int(bad.sum())} NaN/inf values in {len(cols)} "
                    f"feature columns (first {cols[0]!r}); fix the table or use --config precomputed.nan=drop_columns")
        self._names = [str(c) for c in feat_cols]
        return X

    def feature_names(self, channels):
        return getattr(self, "_names", None)
