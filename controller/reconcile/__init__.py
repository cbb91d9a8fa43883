"""The reconcile loop, between the two ports: the Kubernetes side (`controller.kube`) and the container
runtime (`controller.port`). `reconciler` tells the story of one pass; `actions` carries out what
`controller.core.decide` chose; `observer` batches what the runtime is asked; `triggers` and `watchers`
wake the per-Workspace loops; `orphan_sweeper` removes what no Workspace owns any more."""
