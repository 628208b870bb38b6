// Calls any gRPC method by its full name ("/txcoord.v1.Participant/Commit"),
// for tests that go over every method of a service whatever its stub: the
// role matrix and the non-loopback probe.
//
//   grpc::Status s = CallMethod(channel, "/txcoord.v1.Participant/Commit", request, &response);
#ifndef TXCOORD_HARNESS_GENERIC_CALL_H_
#define TXCOORD_HARNESS_GENERIC_CALL_H_

#include <google/protobuf/message.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

namespace txcoord::testing {

// One unary call with a 10 s deadline. `response` may be nullptr.
grpc::Status CallMethod(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                        const google::protobuf::Message& request,
                        google::protobuf::Message* response = nullptr);

// The same with an empty request (every field at its default).
grpc::Status CallWithEmptyRequest(const std::shared_ptr<grpc::Channel>& channel,
                                  const std::string& method);

// "/txcoord.v1.Participant/Prepare", ... : every method of the named proto
// service ("txcoord.v1.Participant") linked into this binary.
std::vector<std::string> MethodsOf(const std::string& service);

}  // namespace txcoord::testing

#endif  // TXCOORD_HARNESS_GENERIC_CALL_H_
