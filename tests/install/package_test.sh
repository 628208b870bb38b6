#!/usr/bin/env bash
# Builds the Debian packages of this build tree with cpack, unpacks them
# (dpkg-deb -x) into a throw-away root and checks what an operator gets:
# the file list (public headers only), the declared dependencies, the
# maintainer scripts, the systemd units (systemd-analyze verify where it
# is installed), and that the shipped configuration files are valid.
#
#   package_test.sh BUILD_DIR
set -euo pipefail
build=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/txcoord-package-XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cpack --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log" >&2; fail "cpack"; }
root=$work/root
mkdir -p "$work/control"
for package in txcoord txcoord-agent txcoord-tools libtxcoord-dev; do
  debs=("$work/out/${package}_"*.deb)
  [ -f "${debs[0]}" ] || fail "no package $package in: $(ls "$work/out")"
  dpkg-deb -x "${debs[0]}" "$root"
  dpkg-deb -e "${debs[0]}" "$work/control/$package"
  (cd "$work" && dpkg-deb -c "${debs[0]}" | awk '{print $NF}' | grep -v '/$' | sed 's|^\./||' |
     sort >"$work/files-$package")
done

expect_files() {  # expect_files PACKAGE FILE...: exactly these files
  local package=$1; shift
  printf '%s\n' "$@" | sort >"$work/want-$package"
  diff -u "$work/want-$package" "$work/files-$package" >&2 ||
    fail "$package: file list differs (- expected, + packaged)"
}
expect_files txcoord usr/bin/txcoord usr/lib/systemd/system/txcoord.service \
  etc/txcoord/txcoord.conf usr/share/doc/txcoord/operations.md
expect_files txcoord-agent usr/bin/txagent usr/lib/systemd/system/txagent@.service \
  etc/txcoord/txagent-orders.conf usr/share/doc/txcoord-agent/operations.md
expect_files txcoord-tools usr/bin/txctl
inc=usr/include/txcoord
expect_files libtxcoord-dev \
  $inc/client/agent_client.h $inc/client/client.h $inc/client/transaction.h \
  $inc/common/sql_value.h $inc/rpc/tls.h \
  $inc/txcoord/v1/txcoord.proto $inc/txcoord/v1/txcoord.pb.h $inc/txcoord/v1/txcoord.grpc.pb.h \
  $inc/txcoord/v1/admin.proto $inc/txcoord/v1/admin.pb.h $inc/txcoord/v1/admin.grpc.pb.h \
  usr/lib/libtxcoord_client.a usr/lib/pkgconfig/txcoord.pc \
  usr/lib/cmake/txcoord/txcoordConfig.cmake usr/lib/cmake/txcoord/txcoordConfigVersion.cmake \
  usr/lib/cmake/txcoord/txcoordTargets.cmake \
  usr/lib/cmake/txcoord/txcoordTargets-$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' \
    "$build/CMakeCache.txt" | tr '[:upper:]' '[:lower:]').cmake

# Every include of txcoord's own headers in an installed header names an
# installed one (abseil, gRPC and protobuf come from their packages).
grep -rhoE '#include "(client|common|coordinator|participant|cli|txcoord)/[^"]+"' "$root/$inc" |
  sed 's/#include "\(.*\)"/\1/' | sort -u |
  while read -r header; do
    [ -f "$root/$inc/$header" ] || fail "an installed header includes $header, not installed"
  done

control() { sed -n "s/^$2: //p" "$work/control/$1/control"; }
for package in txcoord txcoord-agent txcoord-tools; do
  control $package Depends | grep -q 'libgrpc++' || fail "$package: Depends lacks libgrpc++"
done
control txcoord-agent Depends | grep -q 'libsqlite3' || fail "txcoord-agent: Depends lacks libsqlite3"
for package in txcoord txcoord-agent; do
  control $package Depends | grep -q adduser || fail "$package: Depends lacks adduser"
  grep -q 'adduser --system' "$work/control/$package/postinst" ||
    fail "$package: postinst creates no system user"
  grep -q '^/etc/txcoord/' "$work/control/$package/conffiles" ||
    fail "$package: configuration is not a conffile"
  for script in postinst prerm postrm; do
    [ -x "$work/control/$package/$script" ] || fail "$package: $script not executable"
    sh -n "$work/control/$package/$script" || fail "$package: $script is not valid sh"
  done
done
control libtxcoord-dev Depends | grep -q 'libgrpc++-dev' || fail "libtxcoord-dev: Depends lacks libgrpc++-dev"

# The units: the packaged binary and configuration, the user, the data
# directory, readiness, and the hardening.
units=$root/usr/lib/systemd/system
for unit in "$units/txcoord.service" "$units/txagent@.service"; do
  for line in Type=notify User=txcoord NoNewPrivileges=yes ProtectSystem=strict \
              ProtectHome=yes PrivateTmp=yes StateDirectory=txcoord/ RestartPreventExitStatus=2; do
    grep -q "^$line" "$unit" || fail "$(basename "$unit") lacks $line"
  done
  binary=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
  [ -x "$root$binary" ] || fail "$(basename "$unit") starts $binary, not in the package"
done
grep -q -- '--config=/etc/txcoord/txagent-%i.conf' "$units/txagent@.service" ||
  fail "txagent@.service reads no per-instance configuration"

if command -v systemd-analyze >/dev/null; then
  # The units as packaged, but starting the unpacked binaries (verify checks
  # that ExecStart is executable), and an instance of the template as
  # systemctl would load txagent@orders. Verify exits 0 on many complaints
  # (e.g. an unknown Type=): any line about the units fails too.
  mkdir "$work/units"
  sed "s|^ExecStart=|ExecStart=$root|" "$units/txcoord.service" >"$work/units/txcoord.service"
  sed "s|^ExecStart=|ExecStart=$root|" "$units/txagent@.service" >"$work/units/txagent@.service"
  ln -s txagent@.service "$work/units/txagent@orders.service"
  if ! systemd-analyze verify "$work/units/txcoord.service" \
       "$work/units/txagent@orders.service" >"$work/verify.log" 2>&1 ||
     grep -qE 'txcoord|txagent' "$work/verify.log"; then
    cat "$work/verify.log" >&2
    fail "systemd-analyze verify"
  fi
else
  echo "systemd-analyze not installed: units not verified"
fi

# The shipped configuration files are valid for their daemon: --version
# exits 0 only after the file was read without error.
"$root/usr/bin/txcoord" \
  --config="$root/etc/txcoord/txcoord.conf" --version >/dev/null ||
  fail "txcoord rejects the shipped txcoord.conf"
"$root/usr/bin/txagent" --config="$root/etc/txcoord/txagent-orders.conf" --version >/dev/null ||
  fail "txagent rejects the shipped txagent-orders.conf"
echo "packages: $(cd "$work/out" && ls *.deb | tr '\n' ' ')"
