"""Peak memory of reading one gzip object that inflates far past its size (a gzip bomb, or a loader
gone wrong), with the per-object bound (`events.max_object_megabytes`) and without it.

    .venv/bin/python -m bench.bench_object_bound                 # 2 GiB of text in one object
    .venv/bin/python -m bench.bench_object_bound --gib 1 --bound-mb 256

Each reading runs in a fresh process (peak RSS from `resource.getrusage`); the baseline is the
same process reading a tiny object, so the figures are what the object adds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

CHILD = """
import json, resource, sys, time
from article_rec_assets.ingestion.parsing import parse_objects
path, bound = sys.argv[1], (None if sys.argv[2] == "none" else int(sys.argv[2]))
data = open(path, "rb").read()
started = time.perf_counter()
parsed = parse_objects([(path, data)], max_object_bytes=bound)
print(json.dumps({
    "seconds": round(time.perf_counter() - started, 2),
    "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "events": len(parsed.events),
    "rejects": parsed.reject_counts,
}))
"""


def write_bomb(path: Path, text_bytes: int) -> int:
    """A gzip object of a few good JSON lines, then about `text_bytes` of filler lines (what a
    bomb, or an object padded by a loader gone wrong, holds), streamed to disk."""
    line = (
        b'{"event_id":"00000000-0000-0000-0000-000000000001","event_name":"page_view",'
        b'"collector_tstamp":"2024-05-01T10:00:00Z","domain_userid":"r1","page_urlpath":"/a/"}\n'
    )
    filler = (b" " * 1023 + b"\n") * 4096
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    written = len(line)
    with path.open("wb") as out:
        out.write(compressor.compress(line))
        while written < text_bytes:
            out.write(compressor.compress(filler))
            written += len(filler)
        out.write(compressor.flush())
    return written


def measure(path: Path, bound: int | None) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), "none" if bound is None else str(bound)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gib", type=float, default=2.0, help="decompressed size of the object")
    parser.add_argument("--bound-mb", type=int, default=512, help="the per-object bound")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        bomb, tiny = Path(work) / "bomb.jsonl.gz", Path(work) / "tiny.jsonl.gz"
        started = time.perf_counter()
        text = write_bomb(bomb, int(args.gib * (1 << 30)))
        write_bomb(tiny, 1)
        print(
            f"object: {bomb.stat().st_size / 1e6:.1f} MB of gzip, {text / (1 << 30):.2f} GiB of text "
            f"(written in {time.perf_counter() - started:.0f} s); load average {os.getloadavg()[0]:.2f}"
        )
        base = measure(tiny, args.bound_mb << 20)
        print(f"baseline (a tiny object): peak {base['peak_mib']:.0f} MiB")
        for label, bound in ((f"bound {args.bound_mb} MB", args.bound_mb << 20), ("no bound", None)):
            got = measure(bomb, bound)
            extra = got["peak_mib"] - base["peak_mib"]
            print(
                f"{label:>14}: peak {got['peak_mib']:.0f} MiB ({extra:+.0f} over the baseline, "
                f"{got['peak_mib'] / base['peak_mib']:.1f}x), {got['seconds']} s, "
                f"{got['events']:,} events kept, quarantined {got['rejects']}"
            )


if __name__ == "__main__":
    main()
