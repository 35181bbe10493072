#include "server/slo_planner.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace cnnserve::server {
namespace {

std::string Millis(absl::Duration d) {
  return absl::StrCat(std::round(absl::ToDoubleMilliseconds(d) * 10) / 10, " ms");
}

}  // namespace

SloPlanner::SloPlanner(const Options& options)
    : options_(options),
      budget_(options.slo * kShareForQueueAndCompute),
      running_(std::max(1, options.instances)) {}

double SloPlanner::RateAt(absl::Time now) const {
  if (last_arrival_ == absl::InfinitePast()) return 0;
  const double idle = std::max(0.0, absl::ToDoubleSeconds(now - last_arrival_));
  return rate_ * std::exp(-idle / absl::ToDoubleSeconds(kRateWindow));
}

void SloPlanner::OnArrival(absl::Time now, int64_t items) {
  // A decaying count of items over the window: its expectation is the rate.
  rate_ = RateAt(now) + static_cast<double>(items) / absl::ToDoubleSeconds(kRateWindow);
  last_arrival_ = std::max(last_arrival_, now);
}

int64_t SloPlanner::TargetBatch(absl::Time now) const {
  if (!cost_.ready()) return 1;
  const double rate = kHeadroom * RateAt(now) / static_cast<double>(running_.size());
  const double fixed = absl::ToDoubleSeconds(cost_.fit().fixed);
  const double per_item = absl::ToDoubleSeconds(cost_.fit().per_item);
  // Keeping up needs b items per t(b) = fixed + b * per_item at the rate.
  if (rate * per_item >= 1) return options_.max_batch_size;
  const double b = std::ceil(rate * fixed / (1 - rate * per_item));
  return std::clamp<int64_t>(static_cast<int64_t>(b), 1, options_.max_batch_size);
}

absl::Time SloPlanner::Due(absl::Time enqueued, absl::Time deadline) const {
  return std::min(enqueued + budget_, deadline);
}

bool SloPlanner::Join(absl::Time start, int64_t items, absl::Time due, Prefix* batch) const {
  const int64_t total = batch->items + items;
  if (total > options_.max_batch_size) return false;
  const absl::Time finish = cost_.ready() ? start + cost_.Upper(total) : start;
  if (batch->tasks > 0 && finish > batch->due) return false;
  ++batch->tasks;
  batch->items = total;
  batch->first_due = std::min(batch->first_due, due);
  // A task already too late to make its SLO does not hold its batch back:
  // cutting batches short for it would only make the queue later still.
  if (finish <= due) batch->due = std::min(batch->due, due);
  return true;
}

absl::Status SloPlanner::Admit(absl::Time now, const std::vector<Queued>& queue, int64_t items,
                               absl::Time deadline) const {
  if (!cost_.ready()) return absl::OkStatus();
  // Batches form from the front of the queue as Join cuts them; each goes
  // to the instance that comes free first.
  std::vector<absl::Time> free_at;
  for (const Running& r : running_) {
    free_at.push_back(r.items == 0 ? now : std::max(now, r.start + AdmitCost(r.items)));
  }
  auto first_free = [&] { return std::min_element(free_at.begin(), free_at.end()); };
  Prefix batch;
  int64_t queued_items = 0;
  auto add = [&](int64_t n, absl::Time due) {
    if (!Join(*first_free(), n, due, &batch)) {
      // Batches cut as Join will cut them, so that admission predicts the
      // batches the instances will really run: an admission that assumed
      // other cuts would admit requests late.
      *first_free() += AdmitCost(batch.items);
      batch = Prefix{};
      Join(*first_free(), n, due, &batch);
    }
  };
  for (const Queued& q : queue) {
    add(q.items, q.due);
    queued_items += q.items;
  }
  const absl::Time mine = Due(now, deadline);
  add(items, mine);
  const absl::Time done = *first_free() + AdmitCost(batch.items);
  if (done <= mine) return absl::OkStatus();
  const std::string past =
      deadline < now + budget_ ? absl::StrCat("its deadline in ", Millis(deadline - now))
                               : absl::StrCat("the model's latency SLO of ", Millis(options_.slo));
  return absl::ResourceExhaustedError(absl::StrCat(
      "shed: the model predicts this request of ", items, " items would finish in ",
      Millis(done - now), " (", queued_items, " items queued ahead), past ", past,
      "; refused now rather than answered late. Retry later or with fewer items"));
}

int64_t SloPlanner::Plan(absl::Time now, const Prefix& prefix, absl::Time* wake) const {
  if (prefix.tasks == 0) return 0;
  if (prefix.full || prefix.items >= options_.max_batch_size || !cost_.ready()) return prefix.tasks;
  const int64_t target = TargetBatch(now);
  if (prefix.items >= target) return prefix.tasks;
  // Wait for more, but start in time for the oldest to make its SLO in the
  // batch it is waiting to become; a task already late is sent at once.
  const absl::Time start_by = prefix.first_due - cost_.Upper(std::max(prefix.items, target));
  if (now >= start_by) return prefix.tasks;
  *wake = std::min(*wake, start_by);
  return 0;
}

void SloPlanner::OnBatchStart(int instance, absl::Time now, int64_t items) {
  running_[instance] = {now, items};
}

void SloPlanner::OnBatchDone(int instance, int64_t items, absl::Duration took, int64_t tasks,
                             int64_t late) {
  running_[instance] = Running{};
  cost_.Observe(items, took);
  if (tasks == 0 || !cost_.ready()) return;
  // Up by kMarginStepUp on a late batch, down by the step that balances it
  // at kLateBatchTarget late batches: the margin settles where that many are.
  static const double kDown =
      std::pow(kMarginStepUp, -kLateBatchTarget / (1 - kLateBatchTarget));
  margin_ = std::clamp(margin_ * (late > 0 ? kMarginStepUp : kDown), 1.0, kMaxMargin);
}

SloPlanner::State SloPlanner::state(absl::Time now) const {
  State s;
  s.cost = cost_.fit();
  s.cost_ready = cost_.ready();
  s.arrivals_per_second = RateAt(now);
  s.target_batch = TargetBatch(now);
  s.admission_margin = margin_;
  return s;
}

}  // namespace cnnserve::server
