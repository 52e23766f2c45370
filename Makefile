# The README's two commands are `make run` and `make test`; both install what they need.
CARGO ?= cargo

.PHONY: run test reliability bench api-fuzz deps lint fmt schema

## Run Hookboard (its own PostgreSQL under ./.hookboard unless DATABASE_URL is set).
run:
	@.ci/install-deps run
	$(CARGO) run --release --locked -- serve

## Run every test against a real PostgreSQL started for the run.
test:
	@.ci/install-deps test
	$(CARGO) test --all-targets --locked

## The long reliability suites (about 20 minutes): crashes with thousands of events and
## more kills, each fuzz target for 10 minutes, a 15-minute soak. `make test` runs short
## versions of the same scenarios.
RELIABILITY_FUZZ_SECONDS ?= 600
RELIABILITY_SOAK_SECONDS ?= 900
reliability:
	@.ci/install-deps test
	HOOKBOARD_RELIABILITY=long HOOKBOARD_FUZZ_SECONDS=$(RELIABILITY_FUZZ_SECONDS) \
	HOOKBOARD_SOAK_SECONDS=$(RELIABILITY_SOAK_SECONDS) \
	  $(CARGO) test --locked --test integration -- --nocapture --test-threads=8 \
	  crash:: fuzz:: soak:: delivery::misbehaving

## Measure Hookboard next to the machine's ceilings (writes target/bench/results.json).
bench:
	@.ci/install-deps run
	$(CARGO) bench --locked --bench delivery

## Schemathesis over the OpenAPI description against a real Hookboard (no server errors,
## every answer as described). ST_MAX_EXAMPLES=500 for a longer run.
api-fuzz:
	@.ci/api-fuzz

## Install the Debian packages Hookboard and its tests need (PostgreSQL, libpq, Chromium).
deps:
	@.ci/install-deps test

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

## Regenerate src/schema.rs from the migrations (needs diesel_cli and DATABASE_URL).
schema:
	diesel migration run && diesel print-schema > src/schema.rs
