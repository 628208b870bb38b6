#include "common/scheduled_scope.h"

namespace txcoord {

ScheduledScope::ScheduledScope(Scheduler* scheduler) : shared_(std::make_shared<Shared>()) {
  shared_->scheduler = scheduler;
}

ScheduledScope::~ScheduledScope() { Close(); }

void ScheduledScope::Shared::Schedule(const std::shared_ptr<Shared>& shared, absl::Time at,
                                      std::function<void()> fn) {
  absl::MutexLock lock(&shared->mu);
  if (shared->closed) return;
  ScheduleLocked(shared, at, std::move(fn));
}

void ScheduledScope::Shared::ScheduleLocked(const std::shared_ptr<Shared>& shared, absl::Time at,
                                            std::function<void()> fn) {
  // Written under `mu` before the callback, which may already be running on
  // another thread, can read it under `mu`.
  auto id = std::make_shared<Scheduler::TimerId>(0);
  *id = shared->scheduler->Schedule(at, [shared, id, fn = std::move(fn)] {
    absl::MutexLock run(&shared->run);
    {
      absl::MutexLock lock(&shared->mu);
      if (shared->closed) return;
      shared->pending.erase(*id);
    }
    fn();
  });
  shared->pending.insert(*id);
}

void ScheduledScope::Close() {
  {
    absl::MutexLock lock(&shared_->mu);
    if (shared_->closed) return;
    shared_->closed = true;
    for (Scheduler::TimerId id : shared_->pending) shared_->scheduler->Cancel(id);
    shared_->pending.clear();
  }
  // A callback that started before `closed` was set finishes first.
  absl::MutexLock run(&shared_->run);
}

}  // namespace txcoord
