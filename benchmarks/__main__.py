"""`python -m benchmarks` (or `make bench`): run every benchmark and print its ratios."""

from benchmarks.docker_cost import main

raise SystemExit(main())
