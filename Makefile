# The whole set-up: `make demo` runs the demo, `make test` runs the tests. Both create .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# MNIST (11 MB) is kept out of git: the built-in `mnist` is copied in from the shared data sets beside the checkout
MNIST  := src/genloom/data/builtin_data/mnist28.npz
# MOSES (13 MB of its splits and filters) ships in the molsets wheel on the package registry: the wheel is
# downloaded, not installed (its pinned dependencies are old), and the built-in `moses` reads what is extracted
MOSES  := src/genloom/data/builtin_data/moses
# the Free Spoken Digit Dataset (27 MB of WAV) likewise: the built-in `spoken_digits` reads the copied folder
FSDD   := src/genloom/data/builtin_data/fsdd
MOSES_WHEEL := $(VENV)/wheels/molsets-0.3.1-py3-none-any.whl
MOSES_FILES := train.csv.gz test.csv.gz test_scaffolds.csv.gz mcf.csv wehi_pains.csv

.PHONY: demo test docs install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: the local CPU build here, the standard build elsewhere.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[serve,molecules]'
	# LightGBM (the table detector) loads the system's OpenMP runtime, which slim Debian images lack
	ldconfig -p | grep -q libgomp.so.1 || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libgomp1)
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev,serve,tracking,docs,export,privacy,molecules,quantum,c2pa]'
	# the studio's browser tests drive Debian's headless Chromium
	command -v chromium >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)
	# torch-fidelity only cross-checks our InceptionV3 (tests/metrics/test_inception.py). It goes beside the venv's
	# packages, not among them: its dependencies would bring torchvision (a second torch), and torchmetrics imports
	# it, and so torchvision, whenever it is installed.
	$(BIN)/pip install -q --no-deps --target $(VENV)/oracles torch-fidelity==0.4.0
	touch $@

$(MNIST):
	if [ -f ../shared/data/mnist28.npz ]; then cp ../shared/data/mnist28.npz $@; \
	else echo "no ../shared/data/mnist28.npz: the built-in mnist stays unavailable"; fi

# copied into a temporary folder that is renamed into place, as MOSES below
$(FSDD)/.copied:
	if [ -d ../shared/data/fsdd ]; then rm -rf $(FSDD).tmp && cp -r ../shared/data/fsdd $(FSDD).tmp && \
	touch $(FSDD).tmp/.copied && rm -rf $(FSDD) && mv $(FSDD).tmp $(FSDD); \
	else echo "no ../shared/data/fsdd: the built-in spoken_digits stays unavailable"; fi

$(MOSES_WHEEL): $(BIN)/python
	$(BIN)/pip download -q --no-deps molsets==0.3.1 -d $(VENV)/wheels

# extracted into a temporary folder that is renamed into place: an interrupted set-up leaves no half of it
$(MOSES)/.extracted: $(MOSES_WHEEL)
	rm -rf $(MOSES).tmp && mkdir -p $(MOSES).tmp
	$(BIN)/python -c "import sys, zipfile; wheel = zipfile.ZipFile(sys.argv[1]); \
	[open(sys.argv[2] + '/' + name.rsplit('/', 1)[1], 'wb').write(wheel.read(name)) for name in wheel.namelist() \
	 if name.rsplit('/', 1)[1] in sys.argv[3:]]" $(MOSES_WHEEL) $(MOSES).tmp $(MOSES_FILES)
	touch $(MOSES).tmp/.extracted
	rm -rf $(MOSES) && mv $(MOSES).tmp $(MOSES)

install: $(VENV)/.installed $(MNIST) $(MOSES)/.extracted $(FSDD)/.copied
install-dev: $(VENV)/.installed-dev $(MNIST) $(MOSES)/.extracted $(FSDD)/.copied

demo: install
	$(BIN)/genloom train digits --family vae --minutes 2 --out runs/demo
	@echo "open runs/demo/report.html"

test: install-dev
	$(BIN)/python -m pytest

# the documentation site, into site/ (strict: a broken link or reference fails; tests/test_docs.py builds it too)
docs: install-dev
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) runs site
