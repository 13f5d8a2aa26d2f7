"""What every importer shares: reading tables, well names, the summary it prints, writing the folder.

An importer turns a screen as it is distributed into a bioviz dataset folder
(docs/dataset-format.md): a metadata table with one row per site plus ``dataset.json``. Images
stay where they are; the table points at them (absolute paths, or ``CONTAINER::KEY`` members of a
parquet shard or Zarr array, see bioviz/images.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .. import atomic
from ..errors import DatasetError
from ..screen import DEFAULT_COLORS, OPTIONAL_COLUMNS, PERTURBATION_TYPES, REQUIRED_COLUMNS

# Negative-control names seen in public screens (compared case-insensitively).
CONTROL_NAMES = ("DMSO", "non-targeting", "NT", "EMPTY", "EMPTY_control", "negcon", "untreated", "control",
                 "no-treatment", "vehicle")
# Optional columns the summary reports (the docs' optional columns plus SMILES).
REPORTED_OPTIONAL = ("moa", "target", "concentration", "SMILES", "cell_type")
# Above this many rows the metadata is written as parquet: 222,601 RxRx3-core-like rows took 1.9 s
# CPU to write as CSV, 0.2 s as parquet (reading back: 0.24 vs 0.31 s). Small tables stay CSV to be read by eye.
PARQUET_ROWS = 50_000
_EXTRA_COLORS = ("#00FFFF", "#FFA500", "#FFFFFF", "#808080")

Log = Callable[[str], None]


@dataclass
class ImportResult:
    root: Path
    obs: pd.DataFrame
    channels: list[str]
    control_label: str
    lines: list[str] = field(default_factory=list)


# -- tables ------------------------------------------------------------------------------------
def read_table(path, *, what: str = "table", usecols=None) -> pd.DataFrame:
    """CSV, CSV.GZ, TSV or parquet, with a one-line error naming the file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetError(f"{what} {path} does not exist")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path, columns=usecols)
        sep = "\t" if name.endswith((".tsv", ".tsv.gz", ".txt", ".txt.gz")) else ","
        return pd.read_csv(path, sep=sep, usecols=usecols, low_memory=False)
    except Exception as exc:
        raise DatasetError(f"{what} {path} could not be read: {exc}") from exc


def mixed_type_column(df: pd.DataFrame) -> str | None:
    """The first object column holding both numbers and text (a spreadsheet export error)."""
    for col in df.columns:
        s = df[col]
        if s.dtype != object:
            continue
        vals = s.dropna()
        if vals.empty:
            continue
        kinds = {("num" if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else
                  "text" if isinstance(v, str) else type(v).__name__) for v in vals.head(100_000)}
        if len(kinds) > 1:
            num = vals[[isinstance(v, (int, float, np.number)) for v in vals]]
            text = vals[[isinstance(v, str) for v in vals]]
            ex = f" (e.g. {num.iloc[0]!r} and {text.iloc[0]!r})" if len(num) and len(text) else ""
            return f"{col}{ex}"
    return None


def check_mixed(df: pd.DataFrame, where: str) -> None:
    bad = mixed_type_column(df)
    if bad:
        raise DatasetError(f"{where}: column {bad.split(' ')[0]!r} mixes numbers and text{bad[len(bad.split(' ')[0]):]}; "
                           "make the column one type")


def numeric_column(s: pd.Series, name: str, where: str) -> pd.Series:
    """Numbers or empty; any other text fails naming the column (e.g. '10 uM' in concentration)."""
    num = pd.to_numeric(s, errors="coerce")
    text = s.astype(str).str.strip()
    bad = num.isna() & s.notna() & (text != "") & (text.str.lower() != "nan")
    if bad.any():
        raise DatasetError(f"{where}: column {name!r} mixes numbers and text (e.g. {s[bad].iloc[0]!r}); "
                           "it must hold numbers only")
    return num


def norm_key(s: pd.Series) -> pd.Series:
    """Join keys compared as text, with 1000.0 == '1000' and ' A01' == 'A01'."""
    def one(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v).strip()
    return pd.Series([one(v) for v in s], index=s.index, dtype=object)


# -- wells ---------------------------------------------------------------------------------------
_WELL = re.compile(r"^\s*([A-Za-z]{1,2})\s*0*(\d+)\s*$")


def row_index(letters: str) -> int:
    """'A' -> 0, 'Z' -> 25, 'AA' -> 26, 'AF' -> 31 (1536-well plates)."""
    letters = letters.upper()
    if len(letters) == 1:
        return ord(letters) - 65
    return 26 * (ord(letters[0]) - 64) + ord(letters[1]) - 65


def row_letters(idx: int) -> str:
    return chr(65 + idx) if idx < 26 else chr(64 + idx // 26) + chr(65 + idx % 26)


def well_name(row: int, col: int) -> str:
    return f"{row_letters(int(row))}{int(col):02d}"


def parse_wells(wells: pd.Series, where: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Row index (A=0), column (1-based) and the canonical name ('C03') of each well name."""
    rows, cols, names = [], [], []
    cache: dict = {}
    for w in wells.astype(str):
        if w not in cache:
            m = _WELL.match(w)
            if not m:
                raise DatasetError(f"{where}: well {w!r} is not a plate well name like 'B03' or 'AA04'")
            r, c = row_index(m.group(1)), int(m.group(2))
            cache[w] = (r, c, well_name(r, c))
        r, c, n = cache[w]
        rows.append(r)
        cols.append(c)
        names.append(n)
    return np.asarray(rows, dtype=int), np.asarray(cols, dtype=int), names


# -- controls and perturbation types --------------------------------------------------------------
def pick_control(perts: pd.Series, control: str | None, where: str) -> str | None:
    """The control label: the one given, or a known control name present; None for 'none'."""
    values = set(perts.astype(str))
    if control is not None:
        if control.lower() == "none":
            return None
        if control not in values:
            examples = ", ".join(repr(v) for v in sorted(values)[:5])
            raise DatasetError(f"{where}: --control {control!r} is not a perturbation value (e.g. {examples})")
        return control
    lower = {v.lower(): v for v in values}
    for name in CONTROL_NAMES:
        if name.lower() in lower:
            return lower[name.lower()]
    raise DatasetError(f"{where}: no negative-control wells found (looked for {', '.join(CONTROL_NAMES)}); "
                       "name yours with --control VALUE, or --control none for a screen without controls")


def skip_report(kind: str, ids, log: Log, limit: int = 5) -> None:
    ids = list(ids)
    if ids:
        first = ", ".join(map(str, ids[:limit]))
        log(f"skipped {len(ids)} {kind} (first: {first}{', ...' if len(ids) > limit else ''})")


# -- the folder ------------------------------------------------------------------------------------
def channel_colors(channels) -> dict:
    out = {}
    for i, ch in enumerate(channels):
        out[ch] = DEFAULT_COLORS.get(ch) or DEFAULT_COLORS.get(ch.capitalize()) or _EXTRA_COLORS[i % len(_EXTRA_COLORS)]
    return out


def finish(out, obs: pd.DataFrame, *, channels, control_label: str | None, name: str | None = None,
           colors: dict | None = None, extra_config: dict | None = None, log: Log = print,
           source: str = "") -> ImportResult:
    """Validate the assembled table, write metadata + dataset.json atomically, print the summary."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} is a file, not a folder")
    obs = obs.reset_index(drop=True)
    if obs.empty:
        raise DatasetError(f"{source or 'import'}: nothing left to import (every well was skipped)")
    missing = [c for c in REQUIRED_COLUMNS if c not in obs.columns]
    if missing:  # pragma: no cover - an importer bug, not user input
        raise AssertionError(f"importer left out {missing}")
    dup = obs["well_id"].duplicated()
    if dup.any():
        raise DatasetError(f"{source}: site {obs.loc[dup, 'well_id'].iloc[0]!r} appears more than once "
                           f"({int(dup.sum())} duplicates); is a well listed twice?")
    bad = ~obs["perturbation_type"].isin(PERTURBATION_TYPES)
    assert not bad.any(), obs.loc[bad, "perturbation_type"].unique()
    label = control_label if control_label is not None else "none"
    obs["is_control"] = obs["perturbation"].astype(str).eq(label) | obs["perturbation_type"].eq("control")
    obs.loc[obs["is_control"], "perturbation_type"] = "control"
    check_mixed(obs, f"{source} metadata")
    colors = {**channel_colors(channels), **(colors or {})}
    cfg = {
        "name": name or out.name,
        "channels": [{"name": ch, "color": colors[ch]} for ch in channels],
        "control_label": label,
        "metadata": "metadata.parquet" if len(obs) > PARQUET_ROWS else "metadata.csv",
        **(extra_config or {}),
    }
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("metadata.csv", "metadata.parquet"):
        if stale != cfg["metadata"] and (out / stale).exists():
            (out / stale).unlink()  # a previous import's table would confuse a reader of the folder
    if cfg["metadata"].endswith(".parquet"):
        atomic.write_parquet(obs, out / cfg["metadata"])
    else:
        atomic.write_csv(obs, out / cfg["metadata"])
    atomic.write_json(out / "dataset.json", cfg)
    result = ImportResult(out, obs, list(channels), label)
    for line in summary_lines(obs, channels, label):
        log(line)
    log(f"wrote {out / cfg['metadata']} and {out / 'dataset.json'}")
    return result


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 'es' if word.endswith('ch') else 's'}"


def summary_lines(obs: pd.DataFrame, channels, control_label: str) -> list[str]:
    n_wells = obs[["plate", "well"]].drop_duplicates().shape[0]
    lines = [f"found {plural(n_wells, 'well')} ({plural(len(obs), 'site')}) on "
             f"{plural(obs['plate'].nunique(), 'plate')} in {plural(obs['batch'].nunique(), 'batch')}"]
    treated = obs[~obs["is_control"]]
    by_type = treated.groupby("perturbation_type")["perturbation"].nunique().to_dict()
    parts = [plural(int(by_type[t]), t) for t in ("gene", "compound") if t in by_type]
    if "other" in by_type:  # cell lines, densities, conditions: neither genes nor compounds
        parts.append(f"{by_type['other']} other (neither gene nor compound)")
    n_ctrl = int(obs["is_control"].sum())
    ctrl_names = sorted(obs.loc[obs["is_control"], "perturbation"].astype(str).unique())
    ctrl = (f"{plural(n_ctrl, 'control site')} ({', '.join(ctrl_names[:4])})" if n_ctrl
            else f"no control sites (control label {control_label!r})")
    lines.append(f"perturbations: {', '.join(parts) or 'none'}; {ctrl}")
    lines.append(f"channels: {', '.join(channels) if channels else 'none (profiles only)'}")
    opt = []
    for col in REPORTED_OPTIONAL:
        if col in obs.columns:
            s = obs[col]
            filled = s.notna() & (s.astype(str).str.strip() != "") & (s.astype(str) != "nan")
            opt.append(f"{col} ({plural(int(filled.sum()), 'site')}, {plural(s[filled].nunique(), 'value')})")
    absent = [c for c in REPORTED_OPTIONAL if c not in obs.columns]
    lines.append("optional columns: " + (", ".join(opt) or "none") + (f"; absent: {', '.join(absent)}" if absent else ""))
    return lines


def standard_columns() -> list[str]:
    return list(REQUIRED_COLUMNS) + list(OPTIONAL_COLUMNS)
