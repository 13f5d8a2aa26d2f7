"""``bioviz import``: bring a screen in as it is distributed (one subcommand per layout)."""
from __future__ import annotations

import argparse

HELP = "bring in a screen as distributed (RxRx3-core, RxRx1, profiles, CellProfiler, image files)"
DESCRIPTION = """\
Write a dataset folder (metadata table + dataset.json, see docs/dataset-format.md) for a screen
as it is distributed. Images are read in place, never copied. Each command prints what it found:
wells, plates, perturbations by type, channels and the optional columns (moa, target,
concentration, SMILES). Where to download each public dataset: docs/datasets.md.

  bioviz import rxrx3-core --metadata metadata_rxrx3_core.csv \\
      --embeddings OpenPhenom_rxrx3_core_embeddings.parquet --images rxrx3-core/data --out data/rxrx3core
  bioviz import rxrx1 --root rxrx1 --out data/rxrx1
  bioviz import profiles SQ00015054_normalized_feature_select.csv.gz --out data/lincs
  bioviz import cellprofiler --image-csv Image.csv --out data/cp
  bioviz import images --root plate1/Images --pattern phenix --channels 5=DNA,2=ER,6=RNA,3=AGP,4=Mito \\
      --perturbations platemap.csv --plate BR00143976 --out data/plate1
"""


def _common(p, *, perturbations: bool = True):
    p.add_argument("--out", required=True, metavar="DIR", help="dataset folder to write")
    p.add_argument("--name", default=None, help="dataset name (default: the --out folder's name)")
    if perturbations:
        p.add_argument("--perturbation", default=None, metavar="COL",
                       help="column naming the perturbation (default: the first known one, e.g. Metadata_pert_iname)")
        p.add_argument("--perturbation-type", default=None, choices=["gene", "compound", "other"],
                       help="what the perturbations are: gene, compound, or other (cell lines, densities, "
                            "conditions) (default: guessed from the column name)")
        p.add_argument("--control", default=None, metavar="VALUE",
                       help="perturbation value of negative controls (default: DMSO, non-targeting, EMPTY... "
                            "if present); 'none' for a screen without controls")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("import", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="layout", metavar="LAYOUT")
    p.set_defaults(func=lambda args: _no_layout(p))

    r3 = sub.add_parser("rxrx3-core", help="RxRx3-core from Hugging Face: metadata CSV, OpenPhenom embeddings, "
                        "image shards")
    r3.add_argument("--metadata", required=True, metavar="CSV", help="metadata_rxrx3_core.csv")
    r3.add_argument("--embeddings", default=None, metavar="PARQUET",
                    help="OpenPhenom_rxrx3_core_embeddings.parquet (well_id + feature_0..feature_383)")
    r3.add_argument("--images", default=None, metavar="SHARD_DIR",
                    help="folder of the parquet image shards (data/train-*.parquet); read lazily")
    _common(r3, perturbations=False)
    r3.set_defaults(func=_rxrx3_core)

    r1 = sub.add_parser("rxrx1", help="RxRx1 from rxrx.ai: metadata.csv + images/{experiment}/Plate{plate}/...")
    r1.add_argument("--root", required=True, metavar="DIR", help="the unpacked rxrx1 folder")
    _common(r1, perturbations=False)
    r1.set_defaults(func=_rxrx1)

    pr = sub.add_parser("profiles", help="CellProfiler / pycytominer / JUMP per-well profiles (CSV, CSV.GZ, parquet)")
    pr.add_argument("tables", nargs="+", metavar="TABLE", help="profile table(s), e.g. one per plate")
    pr.add_argument("--annotate", action="append", default=[], metavar="TABLE",
                    help="labels table to join (e.g. plate map, compound -> MOA); a {column} in the path picks "
                         "a file per value, e.g. 'maps/{platemap_file}.csv' (repeatable)")
    pr.add_argument("--on", action="append", default=[], metavar="COLS",
                    help="join columns for the matching --annotate: 'Well' or 'Plate=barcode,Well=well'")
    pr.add_argument("--plate", default=None, metavar="COL", help="plate column (default Metadata_Plate...)")
    pr.add_argument("--well", default=None, metavar="COL", help="well column (default Metadata_Well...)")
    _common(pr)
    pr.set_defaults(func=_profiles)

    cp = sub.add_parser("cellprofiler", help="an image dataset from CellProfiler's per-image table (Image.csv)")
    cp.add_argument("--image-csv", required=True, metavar="CSV", help="Image.csv (or a per-image parquet export)")
    cp.add_argument("--root", default=None, metavar="DIR",
                    help="folder holding the images when PathName_* no longer points at them")
    cp.add_argument("--perturbations", default=None, metavar="TABLE", help="plate map: well (+ plate) -> perturbation")
    _common(cp)
    cp.set_defaults(func=_cellprofiler)

    im = sub.add_parser("images", help="image files named by a template, or a Zarr/OME-Zarr store")
    im.add_argument("--root", required=True, metavar="DIR", help="folder of images (or a .zarr store)")
    im.add_argument("--pattern", default="phenix", metavar="TEMPLATE",
                    help="file name template, e.g. '{plate}/{well}_s{site}_w{channel}.tif', or a named one: "
                         "phenix, imagexpress, rxrx1 (default: %(default)s)")
    im.add_argument("--channels", default=None, metavar="LIST",
                    help="channels in stack order: 'VALUE=NAME,...' (e.g. 5=DNA,2=ER), names only, or a CSV "
                         "with idx,channel (default: every channel found)")
    im.add_argument("--perturbations", default=None, metavar="TABLE", help="plate map: well (+ plate) -> perturbation")
    im.add_argument("--plate", default=None, metavar="NAME", help="plate name when the template has no {plate}")
    im.add_argument("--plane", default=None, type=int, metavar="N", help="focal plane to use (default: the first)")
    im.add_argument("--array", default=None, metavar="NAME", help="Zarr: the array inside the store")
    im.add_argument("--axes", default=None, metavar="LIST", help="Zarr: axis names, e.g. site,channel,y,x")
    im.add_argument("--sites", default=None, metavar="TABLE",
                    help="Zarr: one row per site index with Plate, Well, Site (and any other metadata)")
    _common(im)
    im.set_defaults(func=_images)
    return p


def _no_layout(p) -> int:
    p.print_help()
    return 2


def _next_steps(res) -> None:
    # 'all' = every embedder that applies: image ones when there are images, plus the precomputed
    # table the import registered in dataset.json.
    print(f"next: bioviz info --dataset {res.root} && bioviz embed --dataset {res.root} --embedders all "
          f"&& bioviz benchmark --dataset {res.root}")


def _rxrx3_core(args) -> int:
    from ..importers import import_rxrx3_core

    _next_steps(import_rxrx3_core(args.metadata, args.out, embeddings=args.embeddings, images=args.images,
                                  name=args.name))
    return 0


def _rxrx1(args) -> int:
    from ..importers import import_rxrx1

    _next_steps(import_rxrx1(args.root, args.out, name=args.name))
    return 0


def _profiles(args) -> int:
    from ..errors import DatasetError
    from ..importers import import_profiles

    if len(args.annotate) != len(args.on):
        raise DatasetError("give one --on COLS for every --annotate TABLE (e.g. --annotate moa.csv --on pert_id)")
    res = import_profiles(args.tables, args.out, annotate_tables=args.annotate, on=args.on,
                          perturbation=args.perturbation, plate=args.plate, well=args.well, control=args.control,
                          perturbation_type=args.perturbation_type, name=args.name)
    _next_steps(res)
    return 0


def _cellprofiler(args) -> int:
    from ..importers import import_cellprofiler

    res = import_cellprofiler(args.image_csv, args.out, root=args.root, perturbations=args.perturbations,
                              perturbation=args.perturbation, control=args.control,
                              perturbation_type=args.perturbation_type, name=args.name)
    _next_steps(res)
    return 0


def _images(args) -> int:
    from ..importers import import_images

    res = import_images(args.root, args.out, pattern=args.pattern, channels=args.channels,
                        perturbations=args.perturbations, perturbation=args.perturbation, control=args.control,
                        perturbation_type=args.perturbation_type, plate=args.plate, plane=args.plane,
                        array=args.array, axes=args.axes, sites=args.sites, name=args.name)
    _next_steps(res)
    return 0
