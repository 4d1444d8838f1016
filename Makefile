# The two commands of the README: `make demo` (main job) and `make test`.
# Each builds ./.venv from the pinned lock first (a no-op when up to date).
PY := .venv/bin/python
CORE_PY := .venv-core/bin/python
# pytest processes for the TFF suite (2: this project's 2-core machines).
TEST_JOBS ?= 2
# The numpy-only tests, also run without TensorFlow on the newest numpy.
CORE_TESTS := tests/partition tests/test_datasets.py tests/test_partition_cli.py \
  tests/test_results.py tests/test_grids.py tests/test_report.py \
  tests/test_core_install.py tests/test_checkout.py tests/test_flag_use.py \
  tests/test_download.py tests/test_docs.py \
  tests/test_notebook.py

.PHONY: env core-env torch-env demo test test-core test-all bench clean

env:
	@bash tools/install_env.sh

core-env:
	@bash tools/install_core_env.sh

# CPU PyTorch for the NIID-Bench cross-checks (experiments/niid_bench_torch.py).
torch-env:
	@bash tools/install_torch_env.sh

# A short real FedAvg run: MNIST CNN, 100 clients, Dirichlet(0.5) label skew.
demo: env
	$(PY) experiments/train.py --dataset=mnist --partition=dirichlet --alpha=0.5 \
	  --num_clients=100 --clients_per_round=10 --rounds=15 --local_epochs=1 \
	  --batch_size=10 --client_lr=0.05 --model=cnn --seed=0 \
	  --root_output_dir=runs --experiment_name=demo

# The CI suite (.ci/run calls exactly this): everything in the locked TFF
# environment (with PyTorch beside it for the NIID-Bench cross-checks), then
# the numpy core in a TFF-free venv with the newest numpy. The TFF suite runs
# in TEST_JOBS pytest processes (pytest-xdist); its tests are independent
# (each its own temporary directory, TFF worker port and process marker).
test: env torch-env
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist=worksteal --durations=20 tests
	$(MAKE) --no-print-directory test-core

# vermin: the package and binaries use nothing newer than setup.py's
# python_requires (only Python 3.11 exists on this project's machines).
test-core: core-env
	$(CORE_PY) -m mypy
	.venv-core/bin/vermin --target=3.9- --violations --no-tips --eval-annotations \
	  --quiet tff_niid experiments tools benchmarks
	$(CORE_PY) -m pytest -q $(CORE_TESTS)

# Also the long tests (marked slow), not run in CI.
test-all: env
	$(PY) -m pytest -q -m "slow or not slow" tests

bench: env
	$(PY) benchmarks/partition_bench.py

clean:
	rm -rf .venv .venv-core .venv-torch runs .pytest_cache
