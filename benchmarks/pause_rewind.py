"""How often does an immediate pause make bluesky save a row twice?

An immediate pause (``RE.request_pause(defer=False)``, Ctrl-C twice) rewinds the plan to its
last checkpoint and replays the messages since. When it lands after a row's ``save`` and before
the next checkpoint, the replay saves a second reading of that row. ``curiss.plans`` checkpoints
right after every saved row and around every planner decision to make that window small, and
``curiss.store.load_run`` keeps the first reading of a repeated row (the planner's).

This script pauses a CURISS plan on simulated devices at many moments (after the n-th row,
after a delay) and counts the repeated rows::

    .venv/bin/python benchmarks/pause_rewind.py            # 24 pause points x 6 delays, ~3 min

Measured on 2026-11-26 with the checkpoints: 1 repeated row in 144 pauses. Before them (commit
9c3b800, the same loop with 12 pause points x 3 delays): 2 in 36.
"""

import argparse
import threading
import time
from collections import Counter

from bluesky import RunEngine
from bluesky.utils import RunEngineInterrupted

from curiss.plans import curiss_scan
from sim_devices import PhantomSample, make_stxm


def one(sample, n_pause, delay):
    stxm = make_stxm(sample, noise=True)
    RE = RunEngine({})
    rows, seen = [], {"n": 0}

    def cb(name, doc):
        if name == "event" and "detector_line" in doc["data"]:
            rows.append((doc["data"]["energy_index"], doc["data"]["row_index"]))
            seen["n"] += 1
            if seen["n"] == n_pause:
                def pause():
                    time.sleep(delay)
                    RE.request_pause(defer=False)
                threading.Thread(target=pause).start()

    RE.subscribe(cb)
    try:
        RE(curiss_scan(stxm.detector, stxm.mono, stxm.stage, sample.energies,
                       y_positions=stxm.y_positions, sampling_ratio=0.2,
                       dictionary=sample.spectra, seed=2))
    except RunEngineInterrupted:
        RE.resume()
    return sum(v - 1 for v in Counter(rows).values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=24, help="pause points (after row 3, 5, 7, ...)")
    ap.add_argument("--delays", default="0,0.0005,0.001,0.002,0.003,0.005",
                    help="delays (s) between the row's event and the pause request")
    args = ap.parse_args()
    sample = PhantomSample(24, (12, 10), 3, seed=4)
    delays = [float(d) for d in args.delays.split(",")]
    total = pauses = 0
    for n in range(3, 3 + 2 * args.points, 2):
        for d in delays:
            total += one(sample, n, d)
            pauses += 1
    print(f"{total} repeated row(s) in {pauses} immediate pauses")


if __name__ == "__main__":
    main()
