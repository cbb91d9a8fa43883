"""`python -m benchmarks` (or `make bench`): run every benchmark and print its ratios.

`BENCH_ONLY=docker_cost`, `placement_scale` or `image_refresh` runs that one alone.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from benchmarks import docker_cost, image_refresh, placement_scale

BENCHMARKS: dict[str, Callable[[], int]] = {
    "docker_cost": docker_cost.main,
    "placement_scale": placement_scale.main,
    "image_refresh": image_refresh.main,
}


def main() -> int:
    only = os.environ.get("BENCH_ONLY", "").strip()
    if only and only not in BENCHMARKS:
        print(f"BENCH_ONLY must be one of {', '.join(BENCHMARKS)}; got {only!r}", file=sys.stderr)
        return 2
    for name, run in BENCHMARKS.items():
        if only in ("", name):
            code = run()
            if code:
                return code
    return 0


raise SystemExit(main())
