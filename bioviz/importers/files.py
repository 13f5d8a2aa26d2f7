"""Image screens from files named by a template, from Zarr/OME-Zarr arrays, or from CellProfiler's
per-image table. Images are read in place; the metadata table points at them."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DatasetError
from ..images import REF_SEP
from .common import Log, finish, parse_wells, plural, read_table, row_letters, skip_report
from .profiles import PERT_NAMES, _find, annotate, build_obs, strip_prefix

# Named templates: how instruments and public datasets name their files.
NAMED_TEMPLATES = {
    # PerkinElmer/Revvity Opera Phenix and Operetta export (JUMP, Cell Painting Gallery).
    "phenix": "r{row}c{col}f{site}p{plane}-ch{channel}sk1fk1fl1.tiff",
    # Molecular Devices ImageXpress/MetaXpress: [prefix_]B02_s1_w1[GUID].tif (thumbnails skipped).
    "imagexpress": "{prefix_}{well}_s{site}_w{channel}{guid}.tif",
    # RxRx1/RxRx2 as distributed by Recursion.
    "rxrx1": "{experiment}/Plate{plate}/{well}_s{site}_w{channel}.png",
}
_TOKEN_RE = {
    "row": r"[A-Za-z]{1,2}|\d+", "col": r"\d+", "well": r"[A-Za-z]{1,2}\d+", "site": r"\d+", "plane": r"\d+",
    "channel": r"[^/]+?", "plate": r"[^/]+?", "experiment": r"[^/]+?", "batch": r"[^/]+?",
    "prefix_": r"(?:[^/]*_)?", "guid": r"[^/]*",
}
_KNOWN = set(_TOKEN_RE)
_IMAGE_SUFFIXES = (".tif", ".tiff", ".png")


def compile_template(template: str) -> tuple[re.Pattern, list[str]]:
    template = NAMED_TEMPLATES.get(template, template)
    parts, names, pos = [], [], 0
    for m in re.finditer(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", template):
        parts.append(re.escape(template[pos:m.start()]))
        tok = m.group(1)
        rx = _TOKEN_RE.get(tok, r"[^/]*?")
        group = tok.rstrip("_") if tok.rstrip("_") else "x"
        if group in names:
            parts.append(f"(?P={group})")
        else:
            parts.append(f"(?P<{group}>{rx})")
            names.append(group)
        pos = m.end()
    parts.append(re.escape(template[pos:]))
    if "channel" not in names:
        raise DatasetError(f"template {template!r} has no {{channel}}: every file is one channel of one site")
    if "well" not in names and not {"row", "col"} <= set(names):
        raise DatasetError(f"template {template!r} needs {{well}} or both {{row}} and {{col}}")
    return re.compile("^" + "".join(parts) + "$"), names


def _example(template: str) -> str:
    template = NAMED_TEMPLATES.get(template, template)
    values = {"row": "03", "col": "03", "well": "C03", "site": "1", "plane": "1", "channel": "1", "plate": "PLATE1",
              "experiment": "EXP-1", "batch": "B1", "prefix_": "", "guid": ""}
    return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: values.get(m.group(1), "x"), template)


def parse_channels(spec, found: list[str] | None = None) -> list[tuple[str, str]]:
    """``'5=DNA,2=ER'`` or ``'DNA,ER'`` or a CSV with idx,channel -> [(value in names, channel name)]."""
    if spec is None:
        if not found:
            return []
        return [(v, v if not v.isdigit() else f"ch{v}") for v in found]
    if isinstance(spec, (list, tuple)):
        items = list(spec)
    elif str(spec).lower().endswith((".csv", ".tsv")) and Path(spec).expanduser().is_file():
        tab = read_table(Path(spec).expanduser(), what="--channels table")
        name_col = next((c for c in tab.columns if c.lower() in ("channel", "name", "label")), None)
        idx_col = next((c for c in tab.columns if c.lower() in ("idx", "index", "value")), None)
        if name_col is None:
            raise DatasetError(f"--channels {spec}: needs a 'channel' column (and optionally 'idx')")
        vals = tab[idx_col].astype(str) if idx_col else pd.Series(range(len(tab))).astype(str)
        return list(zip(vals, tab[name_col].astype(str)))
    else:
        items = [x.strip() for x in str(spec).split(",") if x.strip()]
    out = []
    for it in items:
        val, sep, name = str(it).partition("=")
        out.append((val.strip(), (name if sep else val).strip()))
    names = [n for _, n in out]
    if len(set(names)) != len(names):
        raise DatasetError(f"--channels {spec}: a channel name appears twice")
    return out


def _norm(v: str) -> str:
    return str(int(v)) if str(v).isdigit() else str(v)


def _sites_frame(meta_rows: list[dict], channels: list[tuple[str, str]], refs: dict, where: str, log: Log):
    """Group files into sites; sites lacking a channel are reported and skipped."""
    df = pd.DataFrame(meta_rows)
    key = ["Plate", "Well", "Site"] + (["Batch"] if "Batch" in df.columns else [])
    complete, lacking = [], []
    for k, grp in df.groupby(key, sort=True):
        rec = dict(zip(key, k))
        have = dict(zip(grp["_channel"], grp["_ref"]))
        if all(v in have for v, _ in channels):
            for v, name in channels:
                rec[f"image_{name}"] = have[v]
            complete.append(rec)
        else:
            miss = [n for v, n in channels if v not in have]
            lacking.append(f"{rec['Plate']}/{rec['Well']}/s{rec['Site']} (no {miss[0]})")
    skip_report("sites without an image for every channel", lacking, log)
    if not complete:
        raise DatasetError(f"{where}: no site has an image for every channel "
                           f"({', '.join(n for _, n in channels)})")
    return pd.DataFrame(complete)


def _perturb(sites: pd.DataFrame, perturbations, perturbation, control, perturbation_type, where, log, on=None):
    """Join the perturbations table and build the screen metadata (build_obs of the profiles importer)."""
    meta = sites.copy()
    if perturbations is not None:
        tab = read_table(perturbations, what="--perturbations table") if not isinstance(perturbations, pd.DataFrame) \
            else perturbations
        tab = tab.rename(columns={c: strip_prefix(str(c)) for c in tab.columns})
        wcol = _find(tab, ("Well", "well_position", "WellName"), None, "well", str(perturbations))
        if wcol is None:
            raise DatasetError(f"--perturbations {perturbations}: no well column (looked for well, Well, "
                               "Metadata_Well, well_position)")
        tab[wcol] = parse_wells(tab[wcol], f"--perturbations {Path(str(perturbations)).name}")[2]
        pcol = _find(tab, ("Plate", "Assay_Plate_Barcode", "Barcode"), None, "plate", str(perturbations))
        on = on or (f"Plate={pcol},Well={wcol}" if pcol else f"Well={wcol}")
        meta = annotate(meta, tab, on, where, log)
    elif perturbation is None and _find(meta, PERT_NAMES, None, "perturbation", where) is None:
        meta["perturbation"] = "unannotated"
        log("no --perturbations table: every site is labelled 'unannotated' (a table with well + perturbation "
            "columns adds them)")
        control = control or "none"
    obs, label, keep = build_obs(meta, where=where, perturbation=perturbation, control=control,
                                 perturbation_type=perturbation_type, log=log)
    for c in [c for c in meta.columns if c.startswith("image_")]:
        obs[c] = meta.loc[obs.index, c].to_numpy()
    drop = [c for c in obs.columns if c.startswith("meta_image_")]
    return obs.drop(columns=drop), label


def import_images(root, out, *, pattern="phenix", channels=None, perturbations=None, perturbation=None,
                  control=None, perturbation_type=None, plate=None, plane=None, array=None, axes=None,
                  sites=None, log: Log = print, name=None):
    """Files named by a template (or a Zarr/OME-Zarr store) below ``root`` -> dataset folder."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"--root {root} does not exist")
    if _is_zarr(root):
        return import_zarr(root, out, channels=channels, perturbations=perturbations, perturbation=perturbation,
                           control=control, perturbation_type=perturbation_type, array=array, axes=axes,
                           sites=sites, plate=plate, plane=plane, log=log, name=name)
    if not root.is_dir():
        raise DatasetError(f"--root {root} is not a folder")
    rx, names = compile_template(pattern)
    by_path = "/" in NAMED_TEMPLATES.get(pattern, pattern)
    rows, n_files, planes_seen = [], 0, set()
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.lower().endswith(_IMAGE_SUFFIXES) or "thumb" in f.lower():
                continue
            n_files += 1
            full = Path(dirpath) / f
            rel = full.relative_to(root).as_posix()
            m = rx.match(rel if by_path else f)
            if not m:
                continue
            g = m.groupdict()
            if "plane" in g:
                planes_seen.add(int(g["plane"]))
            rows.append((g, str(full.resolve())))
    if not rows:
        raise DatasetError(f"--root {root}: template {pattern!r} matched none of {n_files} image files "
                           f"(expected names like {_example(pattern)!r})")
    use_plane = None
    if planes_seen:
        use_plane = int(plane) if plane is not None else min(planes_seen)
        if use_plane not in planes_seen:
            raise DatasetError(f"--plane {plane}: the files have planes {sorted(planes_seen)}")
        if len(planes_seen) > 1:
            log(f"{len(planes_seen)} focal planes found; using plane {use_plane} (--plane to choose)")
    meta_rows = []
    default_plate = plate or root.name
    for g, path in rows:
        if use_plane is not None and int(g["plane"]) != use_plane:
            continue
        if "well" in g:
            well = g["well"]
        else:
            r = g["row"]
            ridx = int(r) - 1 if r.isdigit() else None  # Phenix rows are 1-based numbers
            well = f"{row_letters(ridx)}{int(g['col']):02d}" if ridx is not None else f"{r}{int(g['col']):02d}"
        rec = {"Plate": g.get("plate") or default_plate, "Well": well, "Site": int(g.get("site") or 1),
               "_channel": _norm(g["channel"]), "_ref": path}
        if g.get("experiment") or g.get("batch"):
            rec["Batch"] = g.get("experiment") or g.get("batch")
        meta_rows.append(rec)
    found_channels = sorted({r["_channel"] for r in meta_rows}, key=lambda v: (len(v), v))
    chans = [(_norm(v), n) for v, n in parse_channels(channels, found_channels)]
    unknown = [v for v, _ in chans if v not in found_channels]
    if unknown:
        raise DatasetError(f"--channels: channel {unknown[0]!r} is not in any file name "
                           f"(the files have channels {', '.join(found_channels)})")
    log(f"{len(meta_rows)} image files matched {pattern!r} under {root}; channels in names: "
        f"{', '.join(found_channels)}")
    for r in meta_rows:
        r["Well"] = parse_wells(pd.Series([r["Well"]]), "file names")[2][0]
    sites_df = _sites_frame(meta_rows, chans, None, str(root), log)
    obs, label = _perturb(sites_df, perturbations, perturbation, control, perturbation_type, str(root), log)
    return finish(out, obs, channels=[n for _, n in chans], control_label=label, name=name, log=log,
                  source=str(root), extra_config={"source": {"layout": "images", "root": str(root.resolve()),
                                                             "pattern": NAMED_TEMPLATES.get(pattern, pattern)}})


# -- Zarr ----------------------------------------------------------------------------------------
def _is_zarr(path: Path) -> bool:
    return path.is_dir() and any((path / f).exists() for f in ("zarr.json", ".zarray", ".zgroup"))


def _attrs(node) -> dict:
    a = dict(node.attrs)
    return a.get("ome", a)  # OME-Zarr 0.5 nests its keys under "ome"


def import_zarr(root: Path, out, *, channels=None, perturbations=None, perturbation=None, control=None,
                perturbation_type=None, array=None, axes=None, sites=None, plate=None, plane=None,
                log: Log = print, name=None):
    """A Zarr array (site, channel, y, x), an OME-Zarr image, or an OME-Zarr HCS plate."""
    import zarr

    try:
        node = zarr.open(str(root), mode="r")
    except Exception as exc:
        raise DatasetError(f"Zarr store {root} could not be opened: {exc}") from exc
    attrs = _attrs(node)
    meta_rows = []
    plate_name = plate or root.name.removesuffix(".zarr").removesuffix(".ome")
    if "plate" in attrs:  # OME-Zarr HCS: plate/row/col/field/level
        wells = attrs["plate"].get("wells", [])
        ch_names = None
        for w in wells:
            wpath = w["path"]
            wnode = node[wpath]
            for k, img in enumerate(_attrs(wnode).get("well", {}).get("images", [])):
                ipath = f"{wpath}/{img['path']}"
                apath, ax, labels = _ome_image(node[ipath], f"{root}/{ipath}")
                ch_names = ch_names or labels
                arr = node[f"{ipath}/{apath}"]
                row, col = wpath.split("/")[:2]
                for c in range(arr.shape[ax.index("c")] if "c" in ax else 1):
                    meta_rows.append({"Plate": plate_name, "Well": f"{row}{int(col):02d}" if col.isdigit() else row + col,
                                      "Site": k + 1, "_channel": str(c),
                                      "_ref": f"{(root / ipath / apath).resolve()}{REF_SEP}{_index(ax, c, plane)}"})
        if not meta_rows:
            raise DatasetError(f"OME-Zarr plate {root} lists no wells with images")
        layout = "ome-zarr plate"
    elif "multiscales" in attrs:
        apath, ax, ch_names = _ome_image(node, str(root))
        arr = node[apath]
        well = "A01"
        for c in range(arr.shape[ax.index("c")] if "c" in ax else 1):
            meta_rows.append({"Plate": plate_name, "Well": well, "Site": 1, "_channel": str(c),
                              "_ref": f"{(root / apath).resolve()}{REF_SEP}{_index(ax, c, plane)}"})
        layout = "ome-zarr image"
    else:
        if hasattr(node, "shape"):
            apath, arr = "", node
        else:
            arrays = [k for k, v in node.members() if hasattr(v, "shape")]
            if array is None and len(arrays) != 1:
                raise DatasetError(f"Zarr group {root} holds {len(arrays)} arrays ({', '.join(arrays) or 'none'}); "
                                   "name one with --array NAME")
            apath = array or arrays[0]
            if apath not in arrays:
                raise DatasetError(f"--array {apath!r} is not in {root} (arrays: {', '.join(arrays)})")
            arr = node[apath]
        ax = list(axes.split(",")) if axes else list(getattr(arr.metadata, "dimension_names", None) or [])
        if not ax or any(a is None for a in ax):
            ax = {4: ["site", "channel", "y", "x"], 3: ["channel", "y", "x"]}.get(arr.ndim)
        if not ax or len(ax) != arr.ndim:
            raise DatasetError(f"Zarr array {root}/{apath} has shape {arr.shape}; name its axes with "
                               "--axes site,channel,y,x")
        ax = ["c" if a in ("channel", "c") else "s" if a in ("site", "field", "fov") else a for a in ax]
        if ax[-2:] != ["y", "x"]:
            raise DatasetError(f"Zarr array {root}/{apath}: the last two axes must be y,x (got {', '.join(ax)})")
        n_sites = arr.shape[ax.index("s")] if "s" in ax else 1
        site_tab = None
        if sites is not None:
            site_tab = read_table(sites, what="--sites table").rename(columns=lambda c: strip_prefix(str(c)))
            if "idx" in site_tab.columns:
                site_tab = site_tab.set_index("idx").sort_index()
            if len(site_tab) != n_sites:
                raise DatasetError(f"--sites {sites}: {len(site_tab)} rows for {n_sites} sites in the array")
        for s in range(n_sites):
            info = site_tab.iloc[s].to_dict() if site_tab is not None else {}
            pl = _find(pd.DataFrame(columns=list(info)), ("Plate",), None, "plate", "sites") if info else None
            wl = _find(pd.DataFrame(columns=list(info)), ("Well",), None, "well", "sites") if info else None
            sl = _find(pd.DataFrame(columns=list(info)), ("Site",), None, "site", "sites") if info else None
            base = {k: v for k, v in info.items() if k not in (pl, wl, sl)}
            for c in range(arr.shape[ax.index("c")] if "c" in ax else 1):
                idx = [str(s) if a == "s" else str(c) if a == "c" else str(int(plane or 0)) for a in ax[:-2]]
                meta_rows.append({**base, "Plate": str(info[pl]) if pl else plate_name,
                                  "Well": str(info[wl]) if wl else f"A{s + 1:02d}",
                                  "Site": int(info[sl]) if sl else 1, "_channel": str(c),
                                  "_ref": f"{(root / apath).resolve()}{REF_SEP}{','.join(idx)}"})
        ch_names = None
        layout = "zarr array"
    found = sorted({r["_channel"] for r in meta_rows}, key=int)
    if channels is None and ch_names:
        channels = [f"{i}={n}" for i, n in enumerate(ch_names)]
    elif channels is not None and not str(channels).lower().endswith((".csv", ".tsv")) and "=" not in str(channels):
        # Zarr channels are indices: '--channels AGP,DNA' names them in index order.
        channels = [f"{i}={n}" for i, n in enumerate(x.strip() for x in str(channels).split(",") if x.strip())]
    chans = parse_channels(channels, found)
    unknown = [v for v, _ in chans if v not in found]
    if unknown:
        raise DatasetError(f"--channels names {len(chans)} channels; the Zarr array has {len(found)}")
    log(f"{layout} {root}: {len({(r['Plate'], r['Well'], r['Site']) for r in meta_rows})} sites x {len(found)} channels")
    for r in meta_rows:
        r["Well"] = parse_wells(pd.Series([r["Well"]]), "Zarr wells")[2][0]
    sites_df = _sites_frame(meta_rows, chans, None, str(root), log)
    # Extra per-site columns of the sites table (modality, Source, ...) survive as metadata.
    extra_cols = [k for k in meta_rows[0] if not k.startswith("_") and k not in sites_df.columns]
    if extra_cols:
        first = pd.DataFrame(meta_rows).drop_duplicates(["Plate", "Well", "Site"])[["Plate", "Well", "Site"] + extra_cols]
        sites_df = sites_df.merge(first, on=["Plate", "Well", "Site"], how="left")
    obs, label = _perturb(sites_df, perturbations, perturbation, control, perturbation_type, str(root), log)
    return finish(out, obs, channels=[n for _, n in chans], control_label=label, name=name, log=log,
                  source=str(root), extra_config={"source": {"layout": layout, "root": str(root.resolve())}})


def _ome_image(node, where: str) -> tuple[str, list[str], list[str] | None]:
    """Full-resolution array path, axis names (t/c/z/y/x) and channel labels of an OME-Zarr image."""
    attrs = _attrs(node)
    ms = (attrs.get("multiscales") or [{}])[0]
    datasets = ms.get("datasets") or []
    if not datasets:
        raise DatasetError(f"OME-Zarr image {where} lists no multiscale datasets")
    ax = [a["name"] if isinstance(a, dict) else str(a) for a in ms.get("axes", [])] or ["t", "c", "z", "y", "x"]
    labels = [c.get("label") for c in (attrs.get("omero") or {}).get("channels", [])] or None
    return datasets[0]["path"], ax, labels


def _index(ax: list[str], c: int, plane) -> str:
    return ",".join(str(c) if a == "c" else str(int(plane or 0)) for a in ax[:-2])


# -- CellProfiler per-image table ------------------------------------------------------------------
def import_cellprofiler(image_csv, out, *, root=None, perturbations=None, perturbation=None, control=None,
                        perturbation_type=None, log: Log = print, name=None):
    """CellProfiler's Image.csv (FileName_*/PathName_* per channel, Metadata_*) -> image dataset folder."""
    image_csv = Path(image_csv).expanduser()
    df = read_table(image_csv, what="--image-csv")
    where = image_csv.name
    df = df.rename(columns={c: c[len("Image_"):] for c in df.columns
                            if str(c).startswith(("Image_FileName_", "Image_PathName_", "Image_URL_"))})
    fn = {c[len("FileName_"):]: c for c in df.columns if str(c).startswith("FileName_")}
    if not fn:
        raise DatasetError(f"{where} matches no CellProfiler per-image layout: no FileName_<channel> columns "
                           "(looked for FileName_*, Image_FileName_*)")
    chans = {k: v for k, v in fn.items() if k.startswith("Orig")} or fn
    chans = {k: v for k, v in chans.items()
             if df[v].astype(str).str.lower().str.endswith((".tif", ".tiff", ".png")).any()}
    if not chans:
        raise DatasetError(f"{where}: no FileName_ column names a TIFF or PNG image")
    names = [k[len("Orig"):] if k.startswith("Orig") and len(k) > 4 else k for k in chans]
    meta_cols = [c for c in df.columns if str(c).startswith(("Metadata_", "Image_Metadata_"))]
    meta = pd.DataFrame({strip_prefix(c): df[c] for c in meta_cols}, index=df.index)
    meta = meta.loc[:, ~meta.columns.duplicated()]
    search = [Path(root).expanduser()] if root else []
    search.append(image_csv.parent)
    refs = {n: [] for n in names}
    ok = np.ones(len(df), dtype=bool)
    for (k, col), n in zip(chans.items(), names):
        pcol = f"PathName_{k}"
        for i, f in enumerate(df[col].astype(str)):
            cands = []
            if pcol in df.columns and isinstance(df[pcol].iloc[i], str):
                cands.append(Path(df[pcol].iloc[i]) / f)
            cands += [d / f for d in search]
            hit = next((c for c in cands if c.is_file()), None)
            ok[i] &= hit is not None
            refs[n].append(str(hit.resolve()) if hit else "")
    pl = _find(meta, ("Plate",), None, "plate", where)
    wl = _find(meta, ("Well",), None, "well", where)
    sl = _find(meta, ("Site", "Field"), None, "site", where)
    if wl is None:
        raise DatasetError(f"{where}: no Metadata_Well column (CellProfiler's Metadata module extracts it from names)")
    sites = meta.rename(columns={pl: "Plate", wl: "Well"} if pl else {wl: "Well"})
    if not pl:
        sites["Plate"] = image_csv.parent.name
    if sl:
        sites = sites.rename(columns={sl: "Site"})
    else:
        sites["Site"] = df["ImageNumber"] if "ImageNumber" in df.columns else np.arange(1, len(df) + 1)
    for n in names:
        sites[f"image_{n}"] = refs[n]
    ident = sites["Plate"].astype(str) + "/" + sites["Well"].astype(str) + "/s" + sites["Site"].astype(str)
    skip_report("images whose files were not found", ident[~ok], log)
    if not ok.any():
        raise DatasetError(f"{where}: none of the image files was found (e.g. {df[next(iter(chans.values()))].iloc[0]}); "
                           "point --root at the folder that holds them")
    sites = sites[ok]
    # Per-object exports repeat each image's row once per object: one row per image.
    sites = sites.drop_duplicates(["Plate", "Well", "Site"]).reset_index(drop=True)
    sites["Well"] = parse_wells(sites["Well"], where)[2]
    log(f"{plural(len(sites), 'image')} with channels {', '.join(names)} from {where}")
    obs, label = _perturb(sites, perturbations, perturbation, control, perturbation_type, where, log)
    return finish(out, obs, channels=names, control_label=label, name=name, log=log, source=where,
                  extra_config={"source": {"layout": "cellprofiler", "image_csv": str(image_csv.resolve())}})
