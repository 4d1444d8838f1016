# The two commands of the README: `make demo` (main job) and `make test`.
# Each builds ./.venv from the pinned lock first (a no-op when up to date).
PY := .venv/bin/python

.PHONY: env demo test test-all bench clean

env:
	@bash tools/install_env.sh

# A short real FedAvg run: MNIST CNN, 100 clients, Dirichlet(0.5) label skew.
demo: env
	$(PY) experiments/train.py --dataset=mnist --partition=dirichlet --alpha=0.5 \
	  --num_clients=100 --clients_per_round=10 --rounds=15 --local_epochs=1 \
	  --batch_size=10 --client_lr=0.05 --model=cnn --seed=0 \
	  --root_output_dir=runs --experiment_name=demo

# The CI suite (.ci/run calls exactly this).
test: env
	$(PY) -m pytest -q tests

# Also the long tests (marked slow), not run in CI.
test-all: env
	$(PY) -m pytest -q -m "slow or not slow" tests

bench: env
	$(PY) benchmarks/partition_bench.py

clean:
	rm -rf .venv runs .pytest_cache
