"""`python -m benchmarks` (or `make bench`): run every benchmark and print its ratios.

`BENCH_ONLY=docker_cost`, `placement_scale`, `image_refresh`, `isolation`, `pools` or `scale` runs that one
alone. `--quick` (`make bench BENCH_ARGS=--quick`) runs the scale benchmark small: a few minutes instead
of the full run.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from benchmarks import docker_cost, image_refresh, isolation, placement_scale, pools, scale


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="the scale benchmark at a small N")
    args = parser.parse_args()
    benchmarks: dict[str, Callable[[], int]] = {
        "docker_cost": docker_cost.main,
        "placement_scale": placement_scale.main,
        "image_refresh": image_refresh.main,
        "isolation": isolation.main,
        "pools": pools.main,
        "scale": lambda: scale.main(quick=args.quick),
    }
    only = os.environ.get("BENCH_ONLY", "").strip()
    if only and only not in benchmarks:
        print(f"BENCH_ONLY must be one of {', '.join(benchmarks)}; got {only!r}", file=sys.stderr)
        return 2
    for name, run in benchmarks.items():
        if only in ("", name):
            code = run()
            if code:
                return code
    return 0


raise SystemExit(main())
