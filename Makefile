# Set-up is automatic: every target creates .venv and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.segio-installed
# The demo needs every format, not the test toolchain (peer tools, linters: ~1.5 GB more).
DEMO   := $(VENV)/.segio-demo-installed
# The documentation site's tools (MkDocs, mkdocstrings), beside whatever else is installed.
DOCS   := $(VENV)/.segio-docs-installed
# The DICOM tests run a second time with the fast paths off (pydicom alone), so that a
# fast-path bug fails a test instead of only costing time; test_dicom_scale only times them.
DICOM_TESTS := $(filter-out %/test_dicom_scale.py,$(wildcard tests/plugins/test_dicom_*.py \
	tests/plugins/test_rtstruct*.py tests/plugins/test_osirix.py \
	tests/plugins/test_sliceomatic.py tests/test_dicomseries.py))

.PHONY: demo test lint bench fixtures clean tools docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps -e examples/segio-plugin-example
	touch $(STAMP)

$(DEMO): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $(DEMO)

demo: $(DEMO)
	$(BIN)/python fixtures/demo.py

$(DOCS): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $(DOCS)

# The site (docs/*.md, the format matrix generated from the formats' declarations, the API
# reference from the docstrings) into build/site; any warning is an error.
docs: $(DOCS)
	$(BIN)/mkdocs build --strict --quiet -f docs/mkdocs/mkdocs.yml

lint: $(STAMP)
	$(BIN)/ruff check segio plugins tests fixtures benchmarks examples docs/mkdocs
	$(BIN)/ruff format --check segio plugins tests fixtures benchmarks examples docs/mkdocs
	$(BIN)/mypy

# External tools the interop tests and benchmarks run (the tests fail, not skip, without them).
tools:
	command -v plastimatch >/dev/null || (apt-get update -qq && apt-get install -y -qq plastimatch)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	test -d .tools/node_modules/gltf-validator -a -d .tools/node_modules/three \
		|| npm install --prefix .tools --no-save --silent gltf-validator@2.0.0-dev.3.10 three@0.187.0

test: lint tools docs
	$(BIN)/pytest -m "not slow" -q
	SEGIO_DICOM_FAST=0 $(BIN)/pytest -m "not slow" -q $(DICOM_TESTS)

# pydicom-seg pins numpy 1, so it reads SEG in an environment of its own (benchmarks/dicom_seg.py).
PEERS := .tools/pydicom-seg/bin/python
$(PEERS):
	$(PYTHON) -m venv .tools/pydicom-seg
	$(PEERS) -m pip install --quiet pydicom-seg==0.4.1 'pydicom<3'  # 0.4.1 imports pydicom 2's modules

bench: $(STAMP) tools $(PEERS)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/pytest -m slow -q
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/seg_nrrd_io.py --segments 24
	$(BIN)/python benchmarks/seg_nrrd_io.py --segments 104
	$(BIN)/python benchmarks/dicom_seg.py --segments 24
	$(BIN)/python benchmarks/dicom_seg.py --segments 104
	$(BIN)/python benchmarks/rtstruct.py
	$(BIN)/python benchmarks/surfaces.py --segments 24
	$(BIN)/python benchmarks/surfaces.py --segments 104
	$(BIN)/python benchmarks/mesh_io.py
	$(BIN)/python benchmarks/mesh_io.py --segments 24
	$(BIN)/python benchmarks/mesh_io.py --segments 104
	$(BIN)/python benchmarks/resample.py
	$(BIN)/python benchmarks/stats.py
	$(BIN)/python benchmarks/comparison.py --segments 104
	$(BIN)/python benchmarks/batch.py
	$(BIN)/python benchmarks/snapshot.py
	$(BIN)/python benchmarks/html_viewer.py
	$(BIN)/python benchmarks/interop_arrays.py

fixtures: $(STAMP)
	$(BIN)/python fixtures/generate.py

clean:
	rm -rf $(VENV) demo-output build .pytest_cache .mypy_cache .ruff_cache .tools
