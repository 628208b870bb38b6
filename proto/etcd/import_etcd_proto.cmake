# Copies one of etcd's .proto files (from golang-etcd-server-dev) into the
# build tree for protoc: cmake -DIN=<etcd's file> -DOUT=<copy> -P this.
# Removes what only the Go build of etcd needs and protoc cannot resolve:
# the gogoproto import and options (Go code generation) and the
# google/api/annotations import with its `option (google.api.http)` blocks
# (the JSON gateway). Neither changes a message or the wire format. Imports
# are rewritten to the layout of the copies: etcd/mvccpb/kv.proto,
# etcd/authpb/auth.proto, etcd/etcdserverpb/rpc.proto.
file(READ "${IN}" text)

string(REPLACE "import \"gogoproto/gogo.proto\";\n" "" text "${text}")
string(REGEX REPLACE "option \\(gogoproto\\.[a-z_]+\\) = [a-z]+;\n" "" text "${text}")
string(REPLACE "// for grpc-gateway\n" "" text "${text}")
string(REPLACE "import \"google/api/annotations.proto\";\n" "" text "${text}")
# A block holds `post:` and `body:` lines and at most one level of nested
# blocks (`additional_bindings { ... }`).
string(REGEX REPLACE "[ \t]*option \\(google\\.api\\.http\\) = {([^{}]|{[^{}]*})*};\n" ""
       text "${text}")
string(REPLACE "\"etcd/mvcc/mvccpb/kv.proto\"" "\"etcd/mvccpb/kv.proto\"" text "${text}")
string(REPLACE "\"etcd/auth/authpb/auth.proto\"" "\"etcd/authpb/auth.proto\"" text "${text}")

# A newer etcd may use these in ways the patterns above do not cover (a
# field option, a nested block): fail here rather than in protoc.
foreach(leftover gogoproto google.api)
  string(FIND "${text}" "${leftover}" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "${IN}: \"${leftover}\" is still referenced after stripping; "
                        "proto/etcd/import_etcd_proto.cmake does not know this etcd version")
  endif()
endforeach()

file(WRITE "${OUT}" "// Copied from ${IN} by proto/etcd/import_etcd_proto.cmake\n"
                    "// (gogoproto and google.api.http options removed). Do not edit.\n"
                    "${text}")
