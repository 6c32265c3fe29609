# Two commands on a fresh machine (Python 3.11+ and make):
#   make validate   render every root and run every stage (the main job)
#   make test       the tool's unit tests and the policy suite
# Both create .venv/ from the pinned requirements first, if needed.

SHELL  := bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell sha256sum requirements.txt | cut -c1-12)
REPORTS ?= reports
ARGS   ?=

.PHONY: setup validate test lint lock schemas e2e clean
.DEFAULT_GOAL := validate

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)

# Writes JSON, JUnit and SARIF reports under $(REPORTS)/ as CI does.
validate: $(STAMP)
	$(PY) -m scripts validate --report-json $(REPORTS)/validate.json \
		--junit $(REPORTS)/validate.junit.xml --sarif $(REPORTS)/validate.sarif $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q -n auto $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check scripts tests
	$(PY) -m scripts validate --stage lint

# Re-pin requirements.txt after editing requirements.in.
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -r requirements.in
	{ echo "# Fully pinned, generated from requirements.in by \`make lock\`; do not edit by hand."; \
	  .venv-lock/bin/pip freeze --exclude-editable; } > requirements.txt
	rm -rf .venv-lock

# Download the CRDs pinned in schemas/sources.yaml (network) and regenerate
# the committed custom-resource schemas from them.
schemas: $(STAMP)
	$(PY) -m scripts schemas sync
	$(PY) -m scripts schemas generate

# Server-side dry run of every root against the cluster in the current
# kubeconfig (the e2e workflow's kind cluster). Namespaces are created for
# real first: a dry-run namespace cannot hold dry-run objects.
e2e: $(STAMP)
	@for root in overlays/*; do \
	  $(VENV)/bin/kubectl kustomize "$$root" | \
	    $(VENV)/bin/kubectl apply --server-side -l pod-security.kubernetes.io/enforce -f -; \
	done; \
	for root in overlays/* clusters/*; do \
	  echo "== $$root"; \
	  $(VENV)/bin/kubectl kustomize "$$root" | $(VENV)/bin/kubectl apply --server-side --dry-run=server -f -; \
	done

clean:
	rm -rf $(VENV) $(REPORTS) .pytest_cache .ruff_cache
