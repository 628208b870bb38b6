#include "harness/generic_call.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>

#include <chrono>

#include "absl/synchronization/notification.h"

namespace txcoord::testing {

namespace {

// One unary call of `method` with `request` as its serialized body; the
// answer's bytes in `*response` if not null.
grpc::Status CallBytes(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                       const std::string& request, std::string* response) {
  grpc::Slice slice(request);
  grpc::ByteBuffer send(&slice, 1);
  grpc::ByteBuffer received;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::GenericStub stub(channel);
  absl::Notification done;
  grpc::Status status;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &send, &received, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  done.WaitForNotification();
  if (!status.ok() || response == nullptr) return status;
  std::vector<grpc::Slice> slices;
  if (!received.Dump(&slices).ok()) return grpc::Status(grpc::StatusCode::INTERNAL, "dump");
  for (const grpc::Slice& s : slices) {
    response->append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return status;
}

}  // namespace

grpc::Status CallMethod(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                        const google::protobuf::Message& request,
                        google::protobuf::Message* response) {
  std::string text;
  grpc::Status status = CallBytes(channel, method, request.SerializeAsString(),
                                  response != nullptr ? &text : nullptr);
  if (status.ok() && response != nullptr && !response->ParseFromString(text)) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "cannot parse the response");
  }
  return status;
}

grpc::Status CallWithEmptyRequest(const std::shared_ptr<grpc::Channel>& channel,
                                  const std::string& method) {
  return CallBytes(channel, method, "", nullptr);
}

std::vector<std::string> MethodsOf(const std::string& service) {
  std::vector<std::string> methods;
  const google::protobuf::ServiceDescriptor* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
  if (descriptor == nullptr) return methods;
  for (int i = 0; i < descriptor->method_count(); ++i) {
    methods.push_back("/" + service + "/" + descriptor->method(i)->name());
  }
  return methods;
}

}  // namespace txcoord::testing
