#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image, with
# this zip unpacked in /autograder/source. Written by `mann grade --make-autograder`
# (mann-bench @VERSION@); the README's "As a Gradescope autograder" explains it.
#
# Environment (all optional; Gradescope sets none of them):
#   AUTOGRADER_ROOT     default /autograder
#   MANN_PYTHON         the Python that grades, >= 3.11 (default python3)
#   MANN_PIP_ARGS       extra pip arguments when dependencies must come from the internet
#                       (default: PyTorch's CPU wheels, --extra-index-url https://download.pytorch.org/whl/cpu)
#   MANN_APT            0: never run apt-get (which installs pip and bubblewrap where missing)
#   MANN_SELF_TEST      0: do not grade the shipped correct submission at the end
set -euo pipefail
ROOT=${AUTOGRADER_ROOT:-/autograder}
SRC=$ROOT/source
PY=${MANN_PYTHON:-python3}
DATA=@DATA@                                        # packed | download
export MANN_CACHE=${MANN_CACHE:-$ROOT/mann-cache}   # the decoded store: the grader's only
TREE=${MANN_TREE:-$ROOT/omniglot_resized}           # the PNG tree handed to submissions (read-only)
export OMNIGLOT_ROOT=$SRC/omniglot
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_BREAK_SYSTEM_PACKAGES=1
say() { echo "==> $*"; }
root() { [[ $(id -u) -eq 0 ]]; }

# 1. Python >= 3.11 with pip
if ! command -v "$PY" >/dev/null; then
  echo "setup.sh: there is no $PY here; install Python >= 3.11, or set MANN_PYTHON" >&2
  exit 1
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup.sh: $PY is Python $("$PY" -c 'import platform; print(platform.python_version())'); mann-bench needs" \
       ">= 3.11: choose a base image whose python3 is 3.11 or newer (Ubuntu 24.04: 3.12), or install one and set" \
       "MANN_PYTHON at the top of setup.sh and run_autograder" >&2
  exit 1
fi
can_apt() { [[ ${MANN_APT:-1} != 0 ]] && root && command -v apt-get >/dev/null; }
if ! "$PY" -m pip --version >/dev/null 2>&1 && can_apt; then
  say "installing pip (apt-get install python3-pip)"
  { apt-get update -qq && apt-get install -y -qq python3-pip; } >/dev/null 2>&1 || true
fi

# 2. bubblewrap: the sandbox's namespaces (without it, or where the container forbids
#    namespaces, `mann grade` uses its fallback level, so a failure here only warns)
if ! command -v bwrap >/dev/null; then
  if can_apt; then
    say "installing bubblewrap (apt-get)"
    { timeout 120 apt-get install -y -qq bubblewrap \
        || { timeout 180 apt-get update -qq && timeout 120 apt-get install -y -qq bubblewrap; }; } >/dev/null 2>&1 \
      || say "note: could not install bubblewrap; grading will use the sandbox's fallback level"
  else
    say "note: bubblewrap (bwrap) is missing and is not installed here (that takes root, apt-get and MANN_APT=1)"
  fi
fi

# 3. mann-bench from its wheel (offline), then its dependencies: from the internet only
#    when this Python lacks them or has other versions than pyproject.toml pins
wheel=$(ls "$SRC"/mann_bench-*.whl)
say "installing $(basename "$wheel") into $("$PY" -c 'import sys; print(sys.prefix)')"
"$PY" -m pip install --quiet --no-deps --no-index --force-reinstall "$wheel"
if "$PY" -m mann.grading.autograder check-deps; then
  say "dependencies already installed: nothing downloaded"
else
  say "installing the dependencies with pip"
  pip_args=${MANN_PIP_ARGS-"--extra-index-url https://download.pytorch.org/whl/cpu"}
  # shellcheck disable=SC2086 # several arguments
  "$PY" -m pip install --quiet $pip_args "$wheel[grading]"
  "$PY" -m mann.grading.autograder check-deps
fi

# 4. the data, decoded and cached once; the PNG tree the submissions read
if [[ $DATA == download ]]; then
  say "downloading Omniglot into $OMNIGLOT_ROOT"
  "$PY" -m mann.commands data
else
  "$PY" -m mann.commands data --no-download
fi
say "writing the PNG tree $TREE"
"$PY" -m mann.grading.autograder tree "$TREE"

# 5. as root: the rubric, the data and the cache hidden from the sandbox's user (nobody);
#    the tree stays readable
if root; then
  chmod -R go-rwx "$SRC" "$MANN_CACHE"
  chmod go+x "$ROOT"
fi

# 6. self-test: the shipped correct submission, graded as a student's upload would be
if [[ ${MANN_SELF_TEST:-1} != 0 ]]; then
  check=$(mktemp -d)
  "$PY" -c 'import shutil, sys; from mann.grading.specimens import CORRECT
shutil.copytree(CORRECT / "submission", sys.argv[1] + "/submission")' "$check"
  say "self-test: grading the shipped correct submission"
  AUTOGRADER_SUBMISSION=$check/submission AUTOGRADER_RESULTS=$check/results "$SRC/run_autograder"
  "$PY" -m mann.grading.autograder summary "$check/results/results.json"
  rm -rf "$check"
fi
say "autograder ready"
