#!/usr/bin/env bash
# Provides the reference METEOR 1.5 jar (with its data/paraphrase-en.gz) for the METEOR test.
#
# Usage (run it, do not source it):
#     export COCA_METEOR_JAR="$(.ci/meteor.sh)"
# It prints exactly one line on stdout, the absolute path of meteor-1.5.jar; all progress and
# errors go to stderr, and it exits non-zero (printing nothing on stdout) when it cannot
# provide a verified jar or when `java` is missing.
#
# Source: the PyPI wheel pycocoevalcap==1.2 (`pip download --no-deps`; a wheel is a zip), from
# which only `pycocoevalcap/meteor/` is unpacked. The jar and its paraphrase table are checked
# against the sha256 sums pinned below. They are cached in
# ${XDG_CACHE_HOME:-$HOME/.cache}/coca/meteor-1.5/ (meteor-1.5.jar, data/paraphrase-en.gz) and
# reused while their sums match; nothing is downloaded then. Needs python3 with pip, unzip,
# sha256sum; network access to PyPI only on the first run.
set -euo pipefail

PKG="pycocoevalcap==1.2"
WHEEL_SHA256="083ed7910f1aec000b0a237ef6665f74edf19954204d0b1cbdb8399ed132228d"
JAR_SHA256="1e57b4c72c0830ebe68558f1c799a624e96cbc1b6045c9f6330e26dcff6eafc2"
PARA_SHA256="c147ac7d2c91f2fbb3ad31e4b352235061eb83145e0434daf217ee9ca5975f48"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/coca/meteor-1.5"
PYTHON="${PYTHON:-python3}"

say() { echo "meteor.sh: $*" >&2; }
die() {
  say "error: $*"
  exit 1
}

# Whether $1 exists and has sha256 $2.
sum_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }
cached_ok() {
  sum_ok "$CACHE/meteor-1.5.jar" "$JAR_SHA256" && sum_ok "$CACHE/data/paraphrase-en.gz" "$PARA_SHA256"
}

command -v java >/dev/null 2>&1 || die "no \`java\` on PATH (METEOR 1.5 needs a Java runtime)"

if cached_ok; then
  say "using cached $CACHE/meteor-1.5.jar"
else
  command -v unzip >/dev/null 2>&1 || die "unzip is needed"
  mkdir -p "$(dirname "$CACHE")"
  tmp="$(mktemp -d "$(dirname "$CACHE")/.meteor-dl.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  say "downloading $PKG from PyPI"
  "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: "$PKG" -d "$tmp/dl" >&2 ||
    die "pip download $PKG failed"
  wheel="$(find "$tmp/dl" -maxdepth 1 -name 'pycocoevalcap-1.2-*.whl' | head -n 1)"
  [ -n "$wheel" ] || die "pip download gave no pycocoevalcap-1.2 wheel"
  sum_ok "$wheel" "$WHEEL_SHA256" || die "$wheel: sha256 differs from the pinned $WHEEL_SHA256"
  unzip -q "$wheel" 'pycocoevalcap/meteor/*' -d "$tmp/x" || die "cannot unzip pycocoevalcap/meteor/ from $wheel"
  src="$tmp/x/pycocoevalcap/meteor"
  sum_ok "$src/meteor-1.5.jar" "$JAR_SHA256" || die "meteor-1.5.jar in the $PKG wheel: sha256 differs from the pinned $JAR_SHA256"
  sum_ok "$src/data/paraphrase-en.gz" "$PARA_SHA256" ||
    die "data/paraphrase-en.gz in the $PKG wheel: sha256 differs from the pinned $PARA_SHA256"
  mkdir -p "$tmp/new/data"
  mv "$src/meteor-1.5.jar" "$tmp/new/"
  mv "$src/data/paraphrase-en.gz" "$tmp/new/data/"
  # Replace the cache folder as a whole (another run may have filled it meanwhile: fine).
  rm -rf "$CACHE.old"
  if [ -e "$CACHE" ]; then mv "$CACHE" "$CACHE.old"; fi
  mv "$tmp/new" "$CACHE"
  rm -rf "$CACHE.old"
  cached_ok || die "$CACHE does not hold the verified files after unpacking"
  say "cached in $CACHE"
fi

echo "$CACHE/meteor-1.5.jar"
