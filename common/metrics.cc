#include "common/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace txcoord {
namespace metrics_internal {

namespace {
// The exposition format escapes backslash and newline everywhere, and the
// double quote only inside label values.
std::string Escape(const std::string& text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}
}  // namespace

std::string EscapeLabelValue(const std::string& value) { return Escape(value, /*quote=*/true); }

std::string EscapeHelp(const std::string& help) { return Escape(help, /*quote=*/false); }

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Shortest text that reads back as the same double (Prometheus parses
  // with Go's ParseFloat, which accepts this form).
  char buffer[64];
  std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  std::string text(buffer, result.ptr);
  // Bucket bounds read better as 0.0001 than as 1e-04: plain digits while
  // they stay short.
  const double magnitude = std::fabs(value);
  if (text.find('e') != std::string::npos && magnitude >= 1e-6 && magnitude < 1e15) {
    result = std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::fixed);
    if (result.ec == std::errc()) text.assign(buffer, result.ptr);
  }
  return text;
}

bool IsValidMetricName(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool IsValidLabelName(const std::string& name) {
  if (name.empty() || name == "le" || name.rfind("__", 0) == 0) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

}  // namespace metrics_internal

namespace {

using metrics_internal::EscapeLabelValue;
using metrics_internal::FormatValue;

// `{a="x",b="y"}` with `extra` (e.g. le="0.5") last; empty without labels.
std::string LabelText(const MetricLabels& labels, const std::string& extra = "") {
  if (labels.empty() && extra.empty()) return "";
  std::string text = "{";
  for (const auto& [name, value] : labels) {
    if (text.size() > 1) text += ',';
    absl::StrAppend(&text, name, "=\"", EscapeLabelValue(value), "\"");
  }
  if (!extra.empty()) {
    if (text.size() > 1) text += ',';
    text += extra;
  }
  text += '}';
  return text;
}

}  // namespace

const char* MetricsRegistry::TypeName(Type type) {
  switch (type) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  if (std::isnan(value)) return;
  // Bucket i counts values <= bounds_[i]; past the last bound is +Inf.
  const size_t index = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  buckets_[index].fetch_add(1, std::memory_order_relaxed);
  double sum = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(sum, sum + value, std::memory_order_relaxed)) {
  }
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snapshot;
  snapshot.bounds = bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    snapshot.cumulative.push_back(running);
  }
  snapshot.count = running;
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

std::vector<double> SyncBuckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
          0.01,    0.025,  0.05,    0.1,    0.25,  1,      5};
}

MetricsRegistry::Series* MetricsRegistry::AddSeries(const std::string& name,
                                                    const std::string& help, Type type,
                                                    const MetricLabels& labels) {
  if (!metrics_internal::IsValidMetricName(name)) {
    TXLOG(FATAL) << "metric name \"" << name << "\" is not valid";
  }
  for (const auto& label : labels) {
    if (!metrics_internal::IsValidLabelName(label.first)) {
      TXLOG(FATAL) << "metric " << name << ": label name \"" << label.first << "\" is not valid";
    }
  }
  auto [it, inserted] = families_.try_emplace(name, Family{type, help, {}});
  Family& family = it->second;
  if (family.type != type) {
    TXLOG(FATAL) << "metric " << name << " registered as " << TypeName(family.type) << " and as "
                 << TypeName(type);
  }
  for (const Series& series : family.series) {
    if (series.labels == labels) {
      TXLOG(FATAL) << "metric " << name << LabelText(labels) << " registered twice";
    }
  }
  family.series.push_back(Series{labels, nullptr, nullptr, nullptr});
  return &family.series.back();
}

Counter* MetricsRegistry::AddCounter(const std::string& name, const std::string& help,
                                     const MetricLabels& labels) {
  absl::MutexLock lock(&mu_);
  Series* series = AddSeries(name, help, Type::kCounter, labels);
  series->counter = std::make_unique<Counter>();
  return series->counter.get();
}

Histogram* MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                         std::vector<double> bounds, const MetricLabels& labels) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
      TXLOG(FATAL) << "histogram " << name << ": bucket bounds must be finite and increasing";
    }
  }
  absl::MutexLock lock(&mu_);
  Series* series = AddSeries(name, help, Type::kHistogram, labels);
  series->histogram = std::make_unique<Histogram>(std::move(bounds));
  return series->histogram.get();
}

void MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                               std::function<double()> value, const MetricLabels& labels) {
  absl::MutexLock lock(&mu_);
  AddSeries(name, help, Type::kGauge, labels)->function = std::move(value);
}

void MetricsRegistry::AddCounterFunction(const std::string& name, const std::string& help,
                                         std::function<double()> value,
                                         const MetricLabels& labels) {
  absl::MutexLock lock(&mu_);
  AddSeries(name, help, Type::kCounter, labels)->function = std::move(value);
}

void MetricsRegistry::AddRenderHook(std::function<void()> hook) {
  absl::MutexLock lock(&mu_);
  render_hooks_.push_back(std::move(hook));
}

std::string MetricsRegistry::Render() const {
  absl::MutexLock lock(&mu_);
  for (const auto& hook : render_hooks_) hook();
  std::string out;
  for (const auto& [name, family] : families_) {
    absl::StrAppend(&out, "# HELP ", name, " ", metrics_internal::EscapeHelp(family.help), "\n");
    absl::StrAppend(&out, "# TYPE ", name, " ", TypeName(family.type), "\n");
    for (const Series& series : family.series) {
      if (series.histogram != nullptr) {
        const Histogram::Snapshot s = series.histogram->snapshot();
        for (size_t i = 0; i < s.cumulative.size(); ++i) {
          const double bound = i < s.bounds.size() ? s.bounds[i] : INFINITY;
          absl::StrAppend(&out, name, "_bucket",
                          LabelText(series.labels, absl::StrCat("le=\"", FormatValue(bound), "\"")),
                          " ", s.cumulative[i], "\n");
        }
        absl::StrAppend(&out, name, "_sum", LabelText(series.labels), " ", FormatValue(s.sum),
                        "\n");
        absl::StrAppend(&out, name, "_count", LabelText(series.labels), " ", s.count, "\n");
      } else if (series.counter != nullptr) {
        absl::StrAppend(&out, name, LabelText(series.labels), " ", series.counter->value(), "\n");
      } else {
        absl::StrAppend(&out, name, LabelText(series.labels), " ",
                        FormatValue(series.function ? series.function() : 0), "\n");
      }
    }
  }
  return out;
}

}  // namespace txcoord
