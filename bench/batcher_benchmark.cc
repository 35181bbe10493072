// Scheduler overhead per request with a fake runner that does no work:
// Schedule() from a client thread, batch formation, the run callback, and
// the task's answer. What remains is the batcher's own cost (goal: under
// 20 us per request). Run: build/bin/batcher_benchmark
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "server/batcher.h"

namespace cnnserve::server {
namespace {

struct NopTask : BatchTask {
  int64_t size() const override { return 1; }
  void Fail(const absl::Status&) override {}
};

// `threads` clients each schedule requests as fast as the queue takes
// them; the figure is wall time per answered request.
void BM_ScheduleAndRun(benchmark::State& state) {
  const int clients = static_cast<int>(state.range(0));
  const int64_t delay = state.range(1);
  std::atomic<int64_t> answered{0};
  auto batcher = Batcher::Create({.max_batch_size = 32, .max_queue_delay_micros = delay,
                                  .max_queue_size = 1 << 20, .instances = 1},
                                 [&](int, std::vector<std::unique_ptr<BatchTask>> batch) {
                                   answered += static_cast<int64_t>(batch.size());
                                 });
  constexpr int64_t kPerClient = 20000;
  for (auto _ : state) {
    answered = 0;
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&] {
        for (int64_t i = 0; i < kPerClient; ++i) {
          std::unique_ptr<BatchTask> t = std::make_unique<NopTask>();
          while (!(*batcher)->Schedule(&t).ok()) {
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    while (answered.load() < clients * kPerClient) std::this_thread::yield();
  }
  // items_per_second is answered requests/s; its inverse the cost of one.
  state.SetItemsProcessed(state.iterations() * clients * kPerClient);
}
BENCHMARK(BM_ScheduleAndRun)->Args({1, 0})->Args({4, 0})->Args({4, 100})->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cnnserve::server

BENCHMARK_MAIN();
