#include "cluster/etcd_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/check.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "rpc/grpc_util.h"

namespace txcoord::cluster {
namespace {

namespace pb = ::etcdserverpb;

// Streams (watches, lease keep-alives) ask the member to refuse them at
// once when it has no leader ("etcdserver: no leader", UNAVAILABLE), and to
// end them when it loses its leader; without this a watch on a member cut
// off from its quorum stays open and silent. etcd's own client does the
// same (rpctypes.MetadataRequireLeaderKey). Single calls do not ask: during
// an election they wait for the new leader within their deadline rather
// than fail at every member at once, and on a member cut off from its
// quorum they time out and fail over.
void RequireLeader(grpc::ClientContext* context) { context->AddMetadata("hasleader", "true"); }

void PrepareContext(grpc::ClientContext* context, absl::Time deadline) {
  context->set_deadline(absl::ToChronoTime(deadline));
}

bool FailsOver(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded;
}

}  // namespace

absl::Status FromEtcdStatus(const grpc::Status& status) {
  absl::Status result = FromGrpcStatus(status);
  if (result.code() == absl::StatusCode::kOutOfRange &&
      absl::StrContains(result.message(), "lease TTL")) {
    return absl::InvalidArgumentError(result.message());
  }
  if (result.code() == absl::StatusCode::kUnknown) {
    if (absl::StrContains(result.message(), "proposal dropped")) {
      return absl::UnavailableError(result.message());
    }
    // etcd 3.4 hands a call's own expired context back as a bare Go error,
    // which its gRPC server sends as UNKNOWN: the same as a deadline the
    // client saw pass, whichever of the two clocks noticed first.
    if (result.message() == "context deadline exceeded") {
      return absl::DeadlineExceededError(result.message());
    }
  }
  return result;
}

namespace {

// etcd's range_end for "every key that starts with `prefix`": the prefix
// with its last byte below 0xff incremented and what follows dropped; "\0"
// (every key from `prefix` on) when there is no such byte.
// Keys per page of GetPrefix: a few hundred KiB of the values this project
// stores (records and 2 KiB bitmap chunks), far under kMaxMessageBytes.
constexpr int64_t kRangePageKeys = 256;

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    const auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

KeyValue FromProto(const mvccpb::KeyValue& kv) {
  KeyValue result;
  result.key = kv.key();
  result.value = kv.value();
  result.create_revision = kv.create_revision();
  result.mod_revision = kv.mod_revision();
  result.version = kv.version();
  result.lease = kv.lease();
  return result;
}

// etcdctl prints lease ids in hex; so do messages here.
std::string LeaseName(int64_t lease) {
  return absl::StrCat("lease ", absl::Hex(static_cast<uint64_t>(lease)));
}

}  // namespace

struct EtcdClient::Endpoint {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::KV::Stub> kv;
  std::unique_ptr<pb::Lease::Stub> lease;
};

// One watch: a Watch stream of its own to one member, read by a thread of
// its own. The thread sends the create request, reports etcd's answer to it
// through AwaitCreated, then hands events to on_events until the stream
// ends; if nobody stopped the watch by then, it calls on_error once.
class EtcdClient::Watch final : public WatchHandle {
 public:
  Watch(const Endpoint& endpoint, pb::WatchRequest create, EventsFn on_events, ErrorFn on_error)
      : address_(endpoint.address),
        stub_(pb::Watch::NewStub(endpoint.channel)),
        create_(std::move(create)),
        on_events_(std::move(on_events)),
        on_error_(std::move(on_error)) {
    // The stream lives as long as the watch: no deadline.
    RequireLeader(&context_);
    thread_ = std::thread([this] { Run(); });
  }

  ~Watch() override {
    {
      absl::MutexLock lock(&callback_mu_);
      stopped_ = true;
    }
    // Ends a Read (or the stream's start) in progress; the thread then sees
    // `stopped_` and calls nothing.
    context_.TryCancel();
    thread_.join();
  }

  // OK once etcd confirmed the watch; its refusal or the stream's failure
  // otherwise, or DEADLINE_EXCEEDED if neither came by `deadline`.
  absl::Status AwaitCreated(absl::Time deadline) {
    absl::MutexLock lock(&state_mu_);
    if (!state_mu_.AwaitWithDeadline(absl::Condition(this, &Watch::Settled), deadline)) {
      return absl::DeadlineExceededError("etcd did not confirm the watch in time");
    }
    return create_status_;
  }

 private:
  bool Settled() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_mu_) { return settled_; }

  void SetCreateStatus(absl::Status status) {
    absl::MutexLock lock(&state_mu_);
    settled_ = true;
    create_status_ = std::move(status);
  }

  void Run() {
    std::unique_ptr<grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>> stream =
        stub_->Watch(&context_);
    bool created = false;
    // Set when a response ends the watch; else the stream's own end says why.
    absl::Status ended;
    if (stream->Write(create_)) {
      pb::WatchResponse response;
      std::vector<WatchEvent> events;  // gathered across fragments of one response
      while (ended.ok() && stream->Read(&response)) {
        if (!created) {
          if (!response.created()) continue;  // etcd sends nothing before it
          if (response.canceled()) {
            ended = absl::InvalidArgumentError(
                absl::StrCat("watch refused: ", response.cancel_reason()));
            break;
          }
          created = true;
          SetCreateStatus(absl::OkStatus());
          continue;
        }
        if (response.compact_revision() != 0) {
          // Asked for (or fell behind to) a revision etcd no longer keeps.
          ended = absl::OutOfRangeError(
              absl::StrCat("etcd at ", address_,
                           ": required revision has been compacted (history now starts at ",
                           response.compact_revision(), ")"));
        } else if (response.canceled()) {
          ended = absl::UnavailableError(absl::StrCat(
              "etcd at ", address_, " canceled the watch: ", response.cancel_reason()));
        } else {
          for (const mvccpb::Event& event : response.events()) {
            WatchEvent& added = events.emplace_back();
            added.type = event.type() == mvccpb::Event::DELETE ? WatchEvent::Type::kDelete
                                                               : WatchEvent::Type::kPut;
            added.kv = FromProto(event.kv());
          }
          if (response.fragment() || events.empty()) continue;
          // The revision of the last event, not the header's: while a watch
          // catches up etcd sends history in slices, each under the
          // store's current revision.
          const int64_t revision = events.back().kv.mod_revision;
          Deliver(events, revision);
          events.clear();
        }
      }
    }
    if (!ended.ok()) context_.TryCancel();
    const grpc::Status finish = stream->Finish();
    if (!created) {
      // WatchPrefix tries the next member if this one is down or unreachable.
      if (ended.ok()) {
        ended = finish.ok()
                    ? absl::UnavailableError("etcd closed the stream before the watch began")
                    : FromEtcdStatus(finish);
      }
      SetCreateStatus(std::move(ended));
      return;
    }
    if (ended.ok()) {
      // The stream broke: the member stopped, is unreachable or lost its
      // leader (or the destructor cancelled it, and nothing is called).
      ended = absl::UnavailableError(absl::StrCat(
          "etcd at ", address_,
          ": watch stream ended: ", finish.ok() ? "closed by etcd" : finish.error_message()));
    }
    absl::MutexLock lock(&callback_mu_);
    if (stopped_) return;
    stopped_ = true;
    on_error_(ended);
  }

  void Deliver(const std::vector<WatchEvent>& events, int64_t revision) {
    absl::MutexLock lock(&callback_mu_);
    if (stopped_) return;
    on_events_(events, revision);
  }

  const std::string address_;
  const std::unique_ptr<pb::Watch::Stub> stub_;
  const pb::WatchRequest create_;
  const EventsFn on_events_;
  const ErrorFn on_error_;
  grpc::ClientContext context_;  // TryCancel is thread-safe
  std::thread thread_;

  // What AwaitCreated waits for. Never held during a callback, so that a
  // caller of WatchPrefix may hold a lock its callbacks take.
  absl::Mutex state_mu_;
  bool settled_ ABSL_GUARDED_BY(state_mu_) = false;
  absl::Status create_status_ ABSL_GUARDED_BY(state_mu_);

  // Held while a callback runs, and to stop: once stopped_ is set no
  // callback starts, and one that runs has finished.
  absl::Mutex callback_mu_;
  bool stopped_ ABSL_GUARDED_BY(callback_mu_) = false;
};

EtcdClient::EtcdClient(EtcdClientOptions options)
    : call_timeout_(options.call_timeout), endpoints_([&] {
        TXCOORD_CHECK(!options.endpoints.empty()) << "EtcdClient needs at least one endpoint";
        TXCOORD_CHECK(options.call_timeout > absl::ZeroDuration())
            << "EtcdClient call_timeout " << absl::FormatDuration(options.call_timeout);
        std::vector<std::unique_ptr<Endpoint>> endpoints;
        for (const std::string& address : options.endpoints) {
          auto endpoint = std::make_unique<Endpoint>();
          endpoint->address = address;
          endpoint->channel = MakeChannel(address, options.credentials);
          endpoint->kv = pb::KV::NewStub(endpoint->channel);
          endpoint->lease = pb::Lease::NewStub(endpoint->channel);
          endpoints.push_back(std::move(endpoint));
        }
        return endpoints;
      }()) {}

EtcdClient::~EtcdClient() = default;

std::string EtcdClient::Describe() const {
  return absl::StrCat("etcd at ",
                      absl::StrJoin(endpoints_, ",", [](std::string* out, const auto& endpoint) {
                        out->append(endpoint->address);
                      }));
}

absl::Status EtcdClient::WithFailover(
    absl::FunctionRef<absl::Status(const Endpoint& endpoint, absl::Time deadline)> attempt) {
  size_t first;
  {
    absl::MutexLock lock(&mu_);
    first = current_;
  }
  std::vector<std::string> tried;
  absl::Status last;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    const size_t index = (first + i) % endpoints_.size();
    const Endpoint& endpoint = *endpoints_[index];
    absl::Status status = attempt(endpoint, absl::Now() + call_timeout_);
    if (!FailsOver(status.code())) {
      if (index != first) {
        absl::MutexLock lock(&mu_);
        current_ = index;
      }
      if (status.ok()) return status;
      return absl::Status(status.code(),
                          absl::StrCat("etcd at ", endpoint.address, ": ", status.message()));
    }
    tried.push_back(endpoint.address);
    last = absl::Status(status.code(), absl::StrCat(endpoint.address, ": ", status.message()));
  }
  return absl::UnavailableError(
      absl::StrCat("etcd unreachable at ", absl::StrJoin(tried, ","), ": ", last.message()));
}

absl::Status EtcdClient::Unary(
    absl::FunctionRef<grpc::Status(const Endpoint& endpoint, grpc::ClientContext* context)> call) {
  return WithFailover([&](const Endpoint& endpoint, absl::Time deadline) {
    grpc::ClientContext context;
    PrepareContext(&context, deadline);
    return FromEtcdStatus(call(endpoint, &context));
  });
}

absl::StatusOr<RangeResult> EtcdClient::Get(const std::string& key, int64_t revision) {
  pb::RangeRequest request;
  request.set_key(key);
  request.set_revision(revision);
  pb::RangeResponse response;
  absl::Status status = Unary([&](const Endpoint& endpoint, grpc::ClientContext* context) {
    return endpoint.kv->Range(context, request, &response);
  });
  if (!status.ok()) return status;
  RangeResult result;
  result.revision = response.header().revision();
  for (const mvccpb::KeyValue& kv : response.kvs()) result.kvs.push_back(FromProto(kv));
  return result;
}

absl::StatusOr<RangeResult> EtcdClient::GetPrefix(const std::string& prefix) {
  // In pages, every page at the first one's revision: one answer for a
  // large prefix (a decision log's outcome bitmaps, up to
  // --outcome_retention_max_bytes) would pass the channel's limit on a
  // received message (kMaxMessageBytes).
  RangeResult result;
  // An empty key is not allowed; "\0" to "\0" is every key.
  std::string from = prefix.empty() ? std::string(1, '\0') : prefix;
  const std::string end = PrefixEnd(prefix);
  while (true) {
    pb::RangeRequest request;
    request.set_key(from);
    request.set_range_end(end);
    request.set_limit(kRangePageKeys);
    request.set_revision(result.revision);  // 0 on the first page: the newest
    pb::RangeResponse response;
    absl::Status status = Unary([&](const Endpoint& endpoint, grpc::ClientContext* context) {
      return endpoint.kv->Range(context, request, &response);
    });
    if (!status.ok()) return status;
    if (result.revision == 0) result.revision = response.header().revision();
    for (const mvccpb::KeyValue& kv : response.kvs()) result.kvs.push_back(FromProto(kv));
    if (!response.more() || response.kvs_size() == 0) return result;
    from = response.kvs(response.kvs_size() - 1).key();
    from.push_back('\0');  // the next key after it
  }
}

absl::StatusOr<int64_t> EtcdClient::Put(const std::string& key, const std::string& value,
                                        int64_t lease) {
  pb::PutRequest request;
  request.set_key(key);
  request.set_value(value);
  request.set_lease(lease);
  pb::PutResponse response;
  absl::Status status = Unary([&](const Endpoint& endpoint, grpc::ClientContext* context) {
    return endpoint.kv->Put(context, request, &response);
  });
  if (!status.ok()) return status;
  return response.header().revision();
}

absl::StatusOr<bool> EtcdClient::PutIf(const std::string& key, const std::string& value,
                                       int64_t expected_mod_revision, int64_t lease) {
  pb::TxnRequest request;
  // A missing key compares as mod_revision 0, so one comparison covers
  // both "unchanged since" and "does not exist".
  pb::Compare* compare = request.add_compare();
  compare->set_key(key);
  compare->set_target(pb::Compare::MOD);
  compare->set_result(pb::Compare::EQUAL);
  compare->set_mod_revision(expected_mod_revision);
  pb::PutRequest* put = request.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  put->set_lease(lease);
  pb::TxnResponse response;
  absl::Status status = Unary([&](const Endpoint& endpoint, grpc::ClientContext* context) {
    return endpoint.kv->Txn(context, request, &response);
  });
  if (!status.ok()) return status;
  return response.succeeded();
}

absl::StatusOr<TxnResult> EtcdClient::Txn(const std::vector<TxnCompare>& compares,
                                          const std::vector<TxnOp>& writes) {
  pb::TxnRequest request;
  for (const TxnCompare& c : compares) {
    pb::Compare* compare = request.add_compare();
    compare->set_key(c.key);
    compare->set_result(pb::Compare::EQUAL);
    if (c.target == TxnCompare::Target::kCreateRevision) {
      compare->set_target(pb::Compare::CREATE);
      compare->set_create_revision(c.revision);
    } else {
      compare->set_target(pb::Compare::MOD);
      compare->set_mod_revision(c.revision);
    }
  }
  for (const TxnOp& op : writes) {
    pb::RequestOp* out = request.add_success();
    if (op.type == TxnOp::Type::kPut) {
      pb::PutRequest* put = out->mutable_request_put();
      put->set_key(op.key);
      put->set_value(op.value);
      put->set_lease(op.lease);
    } else {
      pb::DeleteRangeRequest* del = out->mutable_request_delete_range();
      del->set_key(op.key);
      if (op.type == TxnOp::Type::kDeletePrefix) del->set_range_end(PrefixEnd(op.key));
    }
  }
  pb::TxnResponse response;
  absl::Status status = Unary([&](const Endpoint& endpoint, grpc::ClientContext* context) {
    return endpoint.kv->Txn(context, request, &response);
  });
  if (!status.ok()) return status;
  return TxnResult{response.succeeded(), response.header().revision()};
}

absl::StatusOr<int64_t> EtcdClient::Delete(const std::string& key) {
  pb::DeleteRangeRequest request;
  request.set_key(key);
  pb::DeleteRangeResponse response;
  absl::Status status = Unary([&](const Endpoint& endpoint, grpc::ClientContext* context) {
    return endpoint.kv->DeleteRange(context, request, &response);
  });
  if (!status.ok()) return status;
  return response.deleted();
}

absl::Status EtcdClient::Compact(int64_t revision) {
  pb::CompactionRequest request;
  request.set_revision(revision);
  request.set_physical(true);  // return once the history is gone
  pb::CompactionResponse response;
  return Unary([&](const Endpoint& endpoint, grpc::ClientContext* context) {
    return endpoint.kv->Compact(context, request, &response);
  });
}

absl::StatusOr<int64_t> EtcdClient::GrantLease(absl::Duration ttl) {
  pb::LeaseGrantRequest request;
  request.set_ttl(std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(ttl, absl::Seconds(1)))));
  pb::LeaseGrantResponse response;
  absl::Status status = Unary([&](const Endpoint& endpoint, grpc::ClientContext* context) {
    return endpoint.lease->LeaseGrant(context, request, &response);
  });
  if (!status.ok()) return status;
  if (!response.error().empty() || response.id() == 0) {
    return absl::InternalError(
        absl::StrCat(Describe(), " granted no lease: \"", response.error(), "\""));
  }
  return response.id();
}

absl::StatusOr<absl::Duration> EtcdClient::KeepAlive(int64_t lease) {
  pb::LeaseKeepAliveRequest request;
  request.set_id(lease);
  pb::LeaseKeepAliveResponse response;
  // One renewal per call: a stream opened, asked once and closed. The
  // callers renew every few seconds, so a stream kept open would save
  // little and need a reader of its own.
  absl::Status status = WithFailover([&](const Endpoint& endpoint, absl::Time deadline) {
    grpc::ClientContext context;
    PrepareContext(&context, deadline);
    RequireLeader(&context);
    auto stream = endpoint.lease->LeaseKeepAlive(&context);
    if (stream->Write(request) && stream->Read(&response)) {
      stream->WritesDone();
      (void)stream->Finish();  // the answer is in; how the stream closes does not matter
      return absl::OkStatus();
    }
    const grpc::Status finish = stream->Finish();
    if (finish.ok()) return absl::UnavailableError("keep-alive stream closed without an answer");
    return FromEtcdStatus(finish);
  });
  if (!status.ok()) return status;
  // etcd answers an expired or revoked lease with TTL 0, not an error.
  if (response.ttl() <= 0) {
    return absl::NotFoundError(
        absl::StrCat(Describe(), ": ", LeaseName(lease), " not found (expired or revoked)"));
  }
  return absl::Seconds(response.ttl());
}

absl::Status EtcdClient::RevokeLease(int64_t lease) {
  pb::LeaseRevokeRequest request;
  request.set_id(lease);
  pb::LeaseRevokeResponse response;
  absl::Status status = Unary([&](const Endpoint& endpoint, grpc::ClientContext* context) {
    return endpoint.lease->LeaseRevoke(context, request, &response);
  });
  // Gone already (expired, or revoked by an earlier attempt): as asked.
  if (status.code() == absl::StatusCode::kNotFound) return absl::OkStatus();
  return status;
}

absl::StatusOr<std::unique_ptr<WatchHandle>> EtcdClient::WatchPrefix(const std::string& prefix,
                                                                     int64_t start_revision,
                                                                     EventsFn on_events,
                                                                     ErrorFn on_error) {
  pb::WatchRequest create;
  pb::WatchCreateRequest* request = create.mutable_create_request();
  request->set_key(prefix.empty() ? std::string(1, '\0') : prefix);
  request->set_range_end(PrefixEnd(prefix));
  request->set_start_revision(start_revision);
  std::unique_ptr<Watch> watch;
  absl::Status status = WithFailover([&](const Endpoint& endpoint, absl::Time deadline) {
    auto attempt = std::make_unique<Watch>(endpoint, create, on_events, on_error);
    absl::Status created = attempt->AwaitCreated(deadline);
    // A failed attempt is destroyed here: its stream cancelled, its thread
    // joined, no callback called.
    if (created.ok()) watch = std::move(attempt);
    return created;
  });
  if (!status.ok()) return status;
  return std::unique_ptr<WatchHandle>(std::move(watch));
}

}  // namespace txcoord::cluster
