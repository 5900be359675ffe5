#!/usr/bin/env bash
# Installs the external programs StereoSpot needs, only when missing (safe to run repeatedly).
# Usage: scripts/deps.sh runtime|test (both install ffmpeg, and ONNX Runtime and yt-dlp into .tools/;
# test adds Chromium and chromedriver for the web UI's browser test)
set -euo pipefail
what="${1:-runtime}"
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to install system packages: $*" >&2; return 1; fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || missing+=(ffmpeg)
# The web UI's browser test drives headless Chromium through chromedriver.
if [ "$what" = test ]; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  apt_install "${missing[@]}"
fi

# ONNX Runtime, the depth engine's inference library, loaded at run time by the `ort` crate.
# It comes from the PyPI `onnxruntime` wheel (its host for prebuilt binaries is unreachable
# here) and lives in .tools/onnxruntime/ (gitignored), where stereospot-stereo looks for it.
ort_version=1.31.1
ort_dir=.tools/onnxruntime
ort_lib="$ort_dir/libonnxruntime.so.$ort_version"
if [ ! -f "$ort_lib" ]; then
  if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
    echo "installing: python3 python3-pip python3-venv (to fetch the onnxruntime wheel)" >&2
    apt_install python3 python3-pip python3-venv
  fi
  echo "installing: ONNX Runtime $ort_version into $ort_dir (from the PyPI onnxruntime wheel)" >&2
  mkdir -p .tools/whl "$ort_dir"
  whl=$(ls .tools/whl/onnxruntime-"$ort_version"-*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$whl" ]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: "onnxruntime==$ort_version" -d .tools/whl
    whl=$(ls .tools/whl/onnxruntime-"$ort_version"-*.whl | head -n 1)
  fi
  # Extract only the shared library; write to a temporary name and rename, so an interrupted
  # run never leaves a truncated library behind.
  python3 - "$whl" "$ort_lib" <<'PY'
import os, shutil, sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
member = "onnxruntime/capi/" + os.path.basename(dest)
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(dest + ".part", "wb") as out:
    shutil.copyfileobj(src, out)
os.replace(dest + ".part", dest)
PY
fi
[ -L "$ort_dir/libonnxruntime.so" ] || ln -sf "libonnxruntime.so.$ort_version" "$ort_dir/libonnxruntime.so"

# yt-dlp, the media worker's URL ingest downloader, pinned, in its own virtual environment in
# .tools/yt-dlp/ (gitignored), where stereospot-media looks for it (YT_DLP_PATH overrides).
# A venv rather than `pip install --user`: Debian's Python refuses user installs (PEP 668).
ytdlp_version=2026.10.26
ytdlp_dir=.tools/yt-dlp
if [ "$("$ytdlp_dir/bin/yt-dlp" --version 2>/dev/null || true)" != "$ytdlp_version" ]; then
  if ! command -v python3 >/dev/null; then
    echo "installing: python3 python3-venv (for yt-dlp's virtual environment)" >&2
    apt_install python3 python3-venv
  fi
  echo "installing: yt-dlp $ytdlp_version into $ytdlp_dir (from PyPI)" >&2
  # Rebuilt from scratch: a half-made venv from an interrupted run fails the version check above
  # and is replaced here. Debian ships venv (with ensurepip) separately: install it on failure.
  rm -rf "$ytdlp_dir"
  if ! python3 -m venv "$ytdlp_dir" >/dev/null 2>&1; then
    echo "installing: python3-venv (for yt-dlp's virtual environment)" >&2
    apt_install python3-venv
    rm -rf "$ytdlp_dir"
    python3 -m venv "$ytdlp_dir"
  fi
  "$ytdlp_dir/bin/python" -m pip install --quiet --disable-pip-version-check "yt-dlp==$ytdlp_version"
fi

if ! command -v cargo >/dev/null; then
  echo "cargo not found: install the Rust toolchain (https://rustup.rs)" >&2
  exit 1
fi
if [ "$what" = test ]; then
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
fi
