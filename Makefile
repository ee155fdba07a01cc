# ebpf.datapath: development, tests and CI.
#
#   make demo    the demo on this Debian 12 host (as root), installing only what it needs
#   make setup   prepare this Debian 12 host (as root): packages, .venv, bpffs
#   make test    setup, then every test tier; non-zero exit if any tier fails
#   make help    all targets
#
# CI runs `make test` through .ci/run, as root, on a fresh clone, with no stdin.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
# Copy of the requirements the venv was last installed from: pip runs again only
# when requirements-dev.txt differs from it.
REQ_STAMP := $(VENV)/.requirements-dev.installed
# build/ansible_collections/ebpf/datapath -> the work tree, for imports.
COLLECTION_LINK := $(ROOT)/build/ansible_collections/ebpf/datapath
BPFFS := /sys/fs/bpf

# Debian packages. BASE: compile and load BPF, drive the network, build the venv;
# all the demo needs (make demo installs BASE only).
# SANITY: what ansible-test sanity runs (its shellcheck test is skipped without it).
# VM: the stock-kernel VM tiers (virtme-ng; molecule-vm reaches the guest over
# SSH: dropbear serves it, ssh and ssh-keygen are the host's); mmdebstrap and
# e2fsprogs build the systemd VM image of the boot tier.
BASE_PACKAGES := clang-19 llvm-19 libbpf-dev libbpf1 bpftool iproute2 iputils-ping \
	python3-venv python3-dev gcc git
SANITY_PACKAGES := shellcheck
# TEST: strace proves what a run writes and executes (hardening tier); graphviz
# renders datapath_info's pictures (tests, docs/img); python3-pyroute2 is all a target
# that builds nothing needs besides libbpf1 (test_controller_build.py runs one).
TEST_PACKAGES := strace graphviz python3-pyroute2
VM_PACKAGES := qemu-system-x86 linux-image-amd64 busybox-static udev dropbear-bin openssh-client \
	mmdebstrap e2fsprogs
PACKAGES := $(BASE_PACKAGES) $(SANITY_PACKAGES) $(TEST_PACKAGES) $(VM_PACKAGES)

# Tiers `make test` runs, in order (an empty tier fails, it never passes).
# boot: tests/boot/tier, a systemd Debian guest converged, rebooted and checked.
TIERS := sanity lint docs unit integration matrix molecule vm molecule-vm boot

# Tools from the venv come first on PATH; ansible finds the collection through
# the symlink tree.
TOOLS_ENV := PATH="$(VENV)/bin:$$PATH" ANSIBLE_COLLECTIONS_PATH="$(ROOT)/build"

# Run pytest on a tier's directory. Exit 5 (no test collected) stays a failure:
# a tier that must have tests never passes empty.
pytest_tier = rc=0; $(PY) -m pytest $(2) || rc=$$?; if [ $$rc -eq 5 ]; then echo "tier $(1): pytest collected no test; that is a failure" >&2; fi; exit $$rc

require_root = if [ "$$(id -u)" -ne 0 ]; then echo "tier $(1) needs root (BPF, netns, bpffs)" >&2; exit 1; fi

.PHONY: help setup setup-demo packages base-packages venv bpffs links test $(TIERS) \
	build changelog demo bench bench-quick soak bench-fleet clean distclean

help:
	@echo "make setup        packages, .venv from requirements-dev.txt, bpffs, build/ symlink tree"
	@echo "make test         setup, then the tiers: $(TIERS)"
	@echo "make sanity       ansible-test sanity on a copy in build/sanity (no ignore file)"
	@echo "make lint         ansible-lint, production profile"
	@echo "make docs         antsibull-docs: markup lint, docs/collection/ current; changelog lint; tarball contents"
	@echo "make unit         pytest tests/unit"
	@echo "make integration  pytest tests/integration (root)"
	@echo "make matrix       ansible-test sanity, units, integration on the oldest and newest ansible-core (root)"
	@echo "make molecule     molecule scenarios on this host (extensions/molecule, all but vm)"
	@echo "make vm           tests/vm in Debian's stock kernel (virtme-ng; freplace mode)"
	@echo "make molecule-vm  extensions/molecule/vm: one play on the stock-kernel VM (SSH) and this host"
	@echo "make boot         tests/boot/tier: a systemd VM converged, rebooted and checked"
	@echo "make build        collection tarball in build/"
	@echo "make changelog    antsibull-changelog lint"
	@echo "make demo | bench | bench-quick | soak | bench-fleet"
	@echo "make clean        remove build/ and tests/output; distclean also removes .venv"

# ---------------------------------------------------------------- setup

setup: packages venv bpffs links

# What the demo needs and nothing more (no VM packages, no kernel image).
setup-demo: base-packages venv bpffs links

packages:
	@scripts/apt-ensure.sh $(PACKAGES)

base-packages:
	@scripts/apt-ensure.sh $(BASE_PACKAGES)

# Debian's interpreter, not whatever python3 is first on PATH, so the venv
# matches the python3 that targets run modules with.
$(PY):
	if [ -x /usr/bin/python3 ]; then /usr/bin/python3 -m venv "$(VENV)"; else python3 -m venv "$(VENV)"; fi

venv: $(PY)
	@if cmp -s requirements-dev.txt "$(REQ_STAMP)"; then \
		echo "venv: requirements unchanged, nothing to install"; \
	else \
		echo "venv: installing requirements-dev.txt"; \
		$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt; \
		$(PY) -m pip check; \
		cp requirements-dev.txt "$(REQ_STAMP)"; \
	fi

bpffs:
	@if [ "$$(stat -f -c %T $(BPFFS) 2>/dev/null)" = bpf_fs ]; then \
		echo "bpffs: mounted at $(BPFFS)"; \
	else \
		mount -t bpf bpf $(BPFFS); echo "bpffs: mounted $(BPFFS)"; \
	fi

links:
	@if [ "$$(readlink "$(COLLECTION_LINK)" || true)" != ../../.. ]; then \
		mkdir -p "$(dir $(COLLECTION_LINK))"; \
		ln -sfn ../../.. "$(COLLECTION_LINK)"; \
	fi

# ---------------------------------------------------------------- tiers

# Every tier runs even when an earlier one failed, so one CI log shows all
# failures; the exit status is non-zero if any failed.
test: setup
	@failed=""; \
	for tier in $(TIERS); do \
		echo "==================== tier: $$tier"; \
		$(MAKE) --no-print-directory $$tier || failed="$$failed $$tier"; \
	done; \
	if [ -n "$$failed" ]; then echo "make test: FAILED tiers:$$failed" >&2; exit 1; fi; \
	echo "make test: every tier passed ($(TIERS))"

sanity: venv
	scripts/sanity.sh

lint: venv links
	$(TOOLS_ENV) ansible-lint --profile production

# The collection's docs generated by antsibull-docs (docs/collection/ current, markup
# lint clean), the changelog lint, and the tarball: it holds what users need and no
# build leftovers (tests/packaging). That galaxy.yml, the releases and every
# version_added agree is a unit test (tests/unit/test_release_versions.py).
docs: venv links
	scripts/docs.sh --check
	$(TOOLS_ENV) antsibull-changelog lint
	@$(call pytest_tier,docs,tests/packaging)

unit: venv links
	@$(call pytest_tier,unit,tests/unit)

integration: venv links bpffs
	@$(call require_root,integration)
	@$(call pytest_tier,integration,tests/integration)

# ansible-test sanity, units and integration targets (tests/integration/targets)
# on the oldest ansible-core requires_ansible claims and on the newest release (on
# Python >= 3.12), each in its own venv under build/matrix (scripts/matrix.sh).
matrix: links bpffs
	@$(call require_root,matrix)
	scripts/matrix.sh

# The stock-kernel VM tier: Debian's own kernel booted with virtme-ng runs
# what this host's kernel cannot (freplace). tests/vm/tier runs inside it.
# run-in-vm's shebang is the `env python` ansible-test allows, and Debian has
# no `python` command by default: name the interpreter here.
vm: venv links
	@$(call require_root,vm)
	$(TOOLS_ENV) $(PY) tests/vm/run-in-vm -- tests/vm/tier

# Scenarios on this host (extensions/molecule/, where current molecule looks in a
# collection); extensions/molecule/vm boots a VM and has its own tier.
molecule: venv links
	@$(call require_root,molecule)
	$(TOOLS_ENV) molecule test --all --exclude vm

# extensions/molecule/vm: one play on two kernels, the stock kernel in a VM
# (tests/vm/vm-instance, reached over SSH) and this host; built on the controller.
molecule-vm: venv links bpffs
	@$(call require_root,molecule-vm)
	$(TOOLS_ENV) molecule test -s vm

# A systemd VM booted, the datapath applied, the VM rebooted, the datapath back.
boot: venv links bpffs
	@$(call require_root,boot)
	$(TOOLS_ENV) $(PY) tests/boot/tier

# ---------------------------------------------------------------- artefacts

build: venv
	$(TOOLS_ENV) ansible-galaxy collection build --force --output-path build/

changelog: venv
	$(TOOLS_ENV) antsibull-changelog lint
	$(TOOLS_ENV) antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml

# ---------------------------------------------------------------- demo

# A lab in network namespaces, a three-plugin chain counting real traffic,
# then everything torn down (playbooks/demo.yml).
demo: setup-demo
	$(TOOLS_ENV) ansible-playbook playbooks/demo.yml

# ---------------------------------------------------------------- benchmarks
# Measurements, not tests: slow numbers are reported in BENCHMARKS.md next to
# their goals and never fail the target. bench-quick (a few minutes): 1,000,000
# test-run repeats x 7 runs per variant, 20 traffic rounds and 150 traffic pairs,
# 40 chain changes on tcx, no VM. bench (about 10-15 minutes): 3,000,000 x 11,
# 40 traffic rounds and 400 pairs, 200 chain changes on tcx and clsact, freplace
# vs link in the stock-kernel VM (benchmarks/quick.py, MODES). Each
# writes benchmarks/results/{quick,full}.json and PNG plots next to it, and
# regenerates BENCHMARKS.md.

bench-quick: venv links bpffs
	@$(call require_root,bench-quick)
	$(PY) benchmarks/quick.py --mode quick
	$(PY) benchmarks/report.py benchmarks/results/quick.json

bench: venv links bpffs
	@$(call require_root,bench)
	$(PY) benchmarks/quick.py --mode full
	$(PY) benchmarks/report.py benchmarks/results/full.json

# 1000 chain changes under sequence-numbered traffic (benchmarks/results/soak.json).
soak: venv links bpffs
	@$(call require_root,soak)
	$(PY) benchmarks/soak.py

# A 20-host rollout built on the targets, then on the controller (~3 min).
bench-fleet: venv links bpffs
	@$(call require_root,bench-fleet)
	$(PY) benchmarks/fleet_rollout.py

# ---------------------------------------------------------------- cleanup

clean:
	rm -rf build tests/output ebpf-datapath-*.tar.gz

distclean: clean
	rm -rf "$(VENV)"
