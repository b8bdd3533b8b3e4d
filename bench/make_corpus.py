"""Generate a synthetic DICOM corpus for the ingestion and fixity benchmarks.

    .venv/bin/python bench/make_corpus.py OUT_DIR --studies N [--slices M]
        [--rows 512 --columns 512] [--seed S] [--processes 2]
    .venv/bin/python bench/make_corpus.py OUT_DIR --size-gb G [--slices M] ...

N single-series studies of M slices each (default 100), alternating CT and MR, fake patients
from ``radledger.dicom.synthetic``, written as OUT_DIR/study-0001/slice-0001.dcm: no PHI in any
path. A 512x512 16-bit slice is about 525 KB. ``--size-gb G`` picks N so that the corpus is
about G GiB.

OUT_DIR holds nothing but the studies, so every tool can be pointed at the directory itself;
the parameters are recorded beside it in OUT_DIR.json (``bench/out/corpus-20x100.json``),
written last. A corpus with the same parameters is reused as it is; one with other parameters,
or left by an interrupted run, is regenerated; a directory holding anything but ``study-*``
folders is refused.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from radledger.dicom import synthetic

FORMAT = 1  # bump when the layout or the use of the generator changes
SLICE_OVERHEAD = 1_600  # header bytes per file besides the pixels (measured: 525,564 in all)
GIB = 1 << 30


def manifest_path(out: Path) -> Path:
    """Where the parameters of the corpus in ``out`` are recorded: beside it."""
    return out.with_name(out.name + ".json")


def study_dir(out: Path, index: int) -> Path:
    """Folder of study ``index`` (0-based); numbered, so it never carries patient details."""
    return out / f"study-{index + 1:04d}"


def studies_for_size(size_gb: float, slices: int, rows: int, columns: int) -> int:
    """How many studies of ``slices`` slices make about ``size_gb`` GiB."""
    slice_bytes = rows * columns * 2 + SLICE_OVERHEAD
    return max(1, round(size_gb * GIB / (slices * slice_bytes)))


def _write_one(job: tuple[Path, int, synthetic.FakePatient, tuple[int, int, int, int]]) -> int:
    out, index, patient, (slices, rows, columns, seed) = job
    shape = {"modality": "CT" if index % 2 == 0 else "MR", "slices": slices, "rows": rows,
             "columns": columns, "seed": seed * 100_000 + index}
    folder = study_dir(out, index)
    acquisition = getattr(synthetic, "Acquisition", None)
    if acquisition is not None:  # write_study(folder, patient, Acquisition(...))
        paths = synthetic.write_study(folder, patient, acquisition(**shape))
    else:  # the keyword form it had before
        paths = synthetic.write_study(folder, patient, **shape)  # type: ignore[arg-type]
    return sum(p.stat().st_size for p in paths)


def make_corpus(out: Path, *, studies: int, slices: int, rows: int = 512, columns: int = 512,
                seed: int = 0, processes: int = 2, quiet: bool = False) -> dict[str, int]:
    """Make (or reuse) the corpus in ``out``; returns its manifest (parameters, files, bytes).

    Raises SystemExit if ``out`` holds anything but ``study-*`` folders.
    """
    params = {"format": FORMAT, "studies": studies, "slices": slices, "rows": rows,
              "columns": columns, "seed": seed}
    recorded = manifest_path(out)
    if recorded.exists():
        manifest = json.loads(recorded.read_text())
        if {k: manifest.get(k) for k in params} == params and out.is_dir():
            if not quiet:
                print(f"{out}: corpus already there ({manifest['files']:,} files, "
                      f"{manifest['bytes'] / GIB:.2f} GiB)", file=sys.stderr)
            return dict(manifest)
        recorded.unlink()
    if out.exists():
        foreign = [p.name for p in out.iterdir() if not p.name.startswith("study-")]
        if foreign:
            sys.exit(f"{out} holds {foreign[:3]}, not a corpus: choose another directory")
        shutil.rmtree(out)  # other parameters, or an interrupted run
    out.mkdir(parents=True)
    start = time.perf_counter()
    shape = (slices, rows, columns, seed)
    jobs = [(out, i, patient, shape)
            for i, patient in enumerate(synthetic.fake_patients(studies, seed))]
    total = 0
    with ProcessPoolExecutor(max_workers=max(1, processes)) as pool:
        for done, size in enumerate(pool.map(_write_one, jobs), 1):
            total += size
            if not quiet and (done % 10 == 0 or done == studies):
                print(f"  {done}/{studies} studies, {total / GIB:.2f} GiB, "
                      f"{time.perf_counter() - start:.0f} s", file=sys.stderr)
    manifest = {**params, "files": studies * slices, "bytes": total,
                "seconds": round(time.perf_counter() - start)}
    recorded.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="directory to write the studies into")
    parser.add_argument("--studies", type=int, help="number of studies (or --size-gb)")
    parser.add_argument("--slices", type=int, default=100, help="slices per study (100)")
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--columns", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size-gb", type=float,
                        help="pick --studies so that the corpus is about this many GiB")
    parser.add_argument("--processes", type=int, default=2, help="writer processes (2)")
    args = parser.parse_args()
    if (args.studies is None) == (args.size_gb is None):
        parser.error("give exactly one of --studies and --size-gb")
    studies = args.studies or studies_for_size(args.size_gb, args.slices, args.rows,
                                               args.columns)
    manifest = make_corpus(args.out.resolve(), studies=studies, slices=args.slices,
                           rows=args.rows, columns=args.columns, seed=args.seed,
                           processes=args.processes)
    print(json.dumps(manifest))


if __name__ == "__main__":
    main()
