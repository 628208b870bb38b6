// grpc_probe: calls gRPC methods of a daemon with empty requests over a
// plaintext channel and prints "<method> <status code>" for each, for tests
// that run it where a test binary cannot be itself (inside a network
// namespace, with `ip netns exec`).
//
//   grpc_probe 169.254.3.1:7171 /txcoord.v1.Participant/Commit /txcoord.v1.Agent/Execute
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "harness/generic_call.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: grpc_probe HOST:PORT /package.Service/Method...\n");
    return 2;
  }
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials());
  for (int i = 2; i < argc; ++i) {
    const grpc::Status status = txcoord::testing::CallWithEmptyRequest(channel, argv[i]);
    std::printf(
        "%s %s\n", argv[i],
        absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code())).c_str());
  }
  return 0;
}
