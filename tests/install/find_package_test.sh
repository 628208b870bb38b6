#!/usr/bin/env bash
# Installs this build into a temporary prefix (cmake --install) and builds
# a service against it from outside the source tree: transfer_example with
# find_package(txcoord CONFIG) and txcoord::client, then a small file with
# pkg-config's flags. Both must link and run.
#
#   find_package_test.sh BUILD_DIR CONSUMER_DIR EXAMPLE_SOURCE
set -euo pipefail
build=$1 consumer=$2 example=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/txcoord-find-package-XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
run() {  # run LOG CMD...: quiet unless it fails
  local log=$1; shift
  "$@" >"$work/$log" 2>&1 || { cat "$work/$log" >&2; fail "$*"; }
}

prefix=$work/prefix
run install.log cmake --install "$build" --prefix "$prefix"
[ -e "$prefix/etc" ] && fail "a plain install must not install configuration files"

# The source is copied out of the tree: nothing may resolve against it.
mkdir "$work/src"
cp "$consumer/CMakeLists.txt" "$example" "$work/src/"
run configure.log cmake -S "$work/src" -B "$work/out" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=Release
run build.log cmake --build "$work/out"
# The build tree is inside the source tree.
source_root=$(cd "$consumer/../../.." && pwd)
find "$prefix" \( -name '*.h' -o -name '*.cmake' -o -name '*.pc' -o -name '*.proto' \) -print0 |
  xargs -0 grep -lF -- "$source_root" && fail "installed files name $source_root"
grep -qF -- "$source_root" "$work/out/CMakeFiles/transfer_example.dir/flags.make" &&
  fail "the consumer compiled against $source_root"
set +e
"$work/out/transfer_example" >"$work/usage.txt" 2>&1
code=$?
set -e
[ "$code" -eq 2 ] || fail "transfer_example without arguments: exit $code, want 2 (usage)"
grep -q "usage:" "$work/usage.txt" || fail "transfer_example printed no usage"

# pkg-config: the same library and headers for a build without CMake.
export PKG_CONFIG_PATH=$(dirname "$(find "$prefix" -name txcoord.pc)")
cat >"$work/pc.cc" <<'CC'
#include <iostream>

#include "client/client.h"
#include "common/sql_value.h"

int main() {
  txcoord::SqlValue value = int64_t{1};
  std::cout << txcoord::IsOutcomeUnknown(absl::OkStatus()) << value.index() << "\n";
}
CC
run pkg-config.log pkg-config --cflags --libs txcoord
run pc-build.log c++ -std=c++17 "$work/pc.cc" -o "$work/pc" $(pkg-config --cflags --libs txcoord)
[ "$("$work/pc")" = "01" ] || fail "the pkg-config program printed $("$work/pc")"
echo "find_package and pkg-config consumers built against $prefix"
