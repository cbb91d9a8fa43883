# workspace-controller: `make run` and `make test` work on a fresh machine; `make help` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
IMAGE ?= workspace-controller:dev

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

.PHONY: install
install: $(STAMP) ## Install the controller and its dev tools into .venv

.PHONY: run
run: $(STAMP) ## Bring up what is missing (control plane, Docker, registry), apply a sample Workspace, run the controller
	PYTHON=$(PY) bash hack/run.sh

.PHONY: test
test: $(STAMP) ## Run the whole suite: unit, integration and end-to-end against the real local stack
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: unit
unit: $(STAMP) ## Run the unit tests only (no Docker, no control plane)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

.PHONY: lint
lint: $(STAMP) ## ruff and mypy --strict
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

.PHONY: fmt
fmt: $(STAMP) ## Format the code
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

.PHONY: crds
crds: $(STAMP) ## Regenerate crds/ from the pydantic models
	$(PY) -m controller.api.crd --write
	$(PY) -m controller.api.template_admission --write

.PHONY: bench
bench: $(STAMP) ## Benchmarks against raw Docker SDK calls (prints ratios); BENCH_ARGS=--quick for a small scale run
	$(PY) -m benchmarks $(BENCH_ARGS)

.PHONY: image
image: $(STAMP) ## Build the controller image ($(IMAGE)) with the local Docker Engine
	PYTHON=$(PY) bash hack/image/build.sh $(IMAGE)

.PHONY: controlplane
controlplane: ## Build (or reuse) the cached kube-apiserver, kubectl, etcd and helm binaries
	bash hack/build-controlplane.sh

.PHONY: down
down: ## Stop the control plane and registry that `make run` started
	bash hack/run.sh down
