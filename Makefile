# The two commands of the README: `make dev` runs the whole system locally, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= .dev
PYTEST_ARGS ?=

.PHONY: dev test test-remote-store test-fast fuzz lint venv imaptest system-deps-dev system-deps-test constraints clean

$(BIN)/.installed: app/pyproject.toml app/constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Sealmail needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c app/constraints.txt -e 'app[test]'
	touch $@

venv: $(BIN)/.installed

system-deps-dev:
	scripts/system-deps dev

system-deps-test:
	scripts/system-deps test

## make dev: every component on localhost, a dev CA, the demo alias (its password is printed)
dev: system-deps-dev venv
	$(BIN)/sealmail dev --data-dir $(DATA_DIR)

## make test: linters and the whole test suite, on TEST_WORKERS pytest-xdist workers (a test file
## stays on one worker, so its module fixtures start once). Most tests wait on servers, sockets and
## client programs rather than on a core; more workers than cores gained little here and made
## timing-sensitive tests (kills mid-commit, failovers) wait longer.
TEST_WORKERS ?= 2
XDIST = -n $(TEST_WORKERS) --dist loadfile
test: system-deps-test venv lint deploy-lint
	$(BIN)/pytest $(XDIST) $(PYTEST_ARGS)
	$(MAKE) test-remote-store

## make test-remote-store: the IMAP protocol and IDLE suites, the POP3 protocol and concurrency suites and the
## DAV protocol suite again, with mailboxes behind a store component, and the config-store contract against the data
## host's config store over the store channel (a fresh `sealmail serve store` per test, ~80 s) (~1.5 min here without
## the contract, the POP3/DAV part ~65 s; the whole
## tests/imap, tests/pop3 and tests/dav pass that way too: SEALMAIL_TEST_STORE=remote pytest tests/imap, ~2.5 min,
## tests/pop3 ~50 s, tests/dav ~80 s)
REMOTE_STORE_TESTS = tests/imap/test_protocol.py tests/imap/test_idle.py \
	tests/imap/test_qresync.py tests/imap/test_sort.py tests/imap/test_thread.py \
	tests/imap/test_search_context.py tests/imap/test_searchres.py tests/imap/test_spam_learning.py \
	tests/pop3/test_pop3_protocol.py tests/pop3/test_pop3_concurrency.py \
	tests/dav/test_protocol.py tests/dav/test_dav_remote_store.py \
	tests/contract/test_config_store.py
test-remote-store: venv
	SEALMAIL_TEST_STORE=remote $(BIN)/pytest $(XDIST) $(REMOTE_STORE_TESTS) $(PYTEST_ARGS)

## make test-fast: skip the slow suites (whole process trees, real client programs)
test-fast: venv lint
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

## make fuzz: the fuzz targets (tests/fuzz) with the long hypothesis profile, 20,000 examples each (not in CI)
fuzz: venv
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest tests/fuzz -p no:cacheprovider --timeout=0 $(PYTEST_ARGS)

## make imaptest IMAPTEST_SRC=DIR: Dovecot's imaptest compliance scripts against the IMAP server (not in CI)
imaptest: venv
	scripts/imaptest

## make lint: ruff (lint and format) and mypy --strict over the app and the benchmarks
lint: venv
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench
	$(BIN)/mypy  # mypy.ini: app/sealmail and bench/, strict

## make constraints: re-pin the Python dependencies after changing app/pyproject.toml
constraints:
	rm -rf .constraints-venv && $(PYTHON) -m venv .constraints-venv
	.constraints-venv/bin/pip install -q -e 'app[test]'
	.constraints-venv/bin/pip freeze --exclude-editable | grep -v '^sealmail' > app/constraints.txt
	rm -rf .constraints-venv

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache $(DEPLOY_VENV)

# --- Deployment (Ansible) --------------------------------------------------------------------
# The controller and its test tools live in their own venv, pinned in requirements-deploy.txt.
DEPLOY_VENV ?= .venv-deploy
DEPLOY_BIN := $(DEPLOY_VENV)/bin
MOLECULE_SCENARIOS ?= world ha
MOLECULE_BESIDE ?= tls upgrade

.PHONY: deploy-venv deploy-lint molecule

$(DEPLOY_BIN)/.installed: requirements-deploy.txt
	test -x $(DEPLOY_BIN)/python || $(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_BIN)/pip install -q --upgrade pip
	$(DEPLOY_BIN)/pip install -q -r requirements-deploy.txt
	touch $@

deploy-venv: $(DEPLOY_BIN)/.installed

## make deploy-lint: yamllint, ansible-lint (profile production), and the group_vars check
deploy-lint: deploy-venv
	$(DEPLOY_BIN)/yamllint --strict .
	PATH=$(abspath $(DEPLOY_BIN)):$$PATH $(DEPLOY_BIN)/ansible-lint
	scripts/check-entry-points $(DEPLOY_BIN)
	bash -n setup.sh

## make molecule: converge, idempotence and testinfra for every scenario (root, Podman); the light
## scenarios of MOLECULE_BESIDE run in the background beside the first of MOLECULE_SCENARIOS
molecule: deploy-venv
	scripts/molecule-image >/dev/null
	PATH=$(abspath $(DEPLOY_BIN)):$$PATH scripts/molecule-all $(MOLECULE_SCENARIOS) --beside $(MOLECULE_BESIDE)
