#include "server/served_model.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "server/infer_task.h"
#include "server/log.h"
#include "server/preemption_ticker.h"
#include "server/thread_priority.h"

namespace cnnserve::server {
namespace fs = std::filesystem;
namespace {

std::vector<std::string> ReadLabels(const fs::path& path) {
  std::vector<std::string> labels;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
  }
  return labels;
}

// Fills the image preprocessing from the config, checking it fits the
// model's [N, C, H, W] input. Models whose input is not an image keep
// accepts_images false and any `input` section is an error.
absl::Status SetUpPreprocessing(const std::string& where, ServedModel* m) {
  const engine::Shape& shape = m->model->input().shape;
  const v1::ImagePreprocessing& in = m->config.input();
  const bool has_input_section = m->config.has_input();
  const bool image_shaped = shape.size() == 4 && (shape[1] == 1 || shape[1] == 3);
  if (!image_shaped) {
    if (has_input_section) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": input preprocessing is set but the model's input '", m->model->input().name,
          "' is not an image [N, 1 or 3, H, W]"));
    }
    return absl::OkStatus();
  }
  const int channels = static_cast<int>(shape[1]);
  image::PreprocessSpec& p = m->preprocess;
  p.channels = channels;
  p.height = static_cast<int>(shape[2]);
  p.width = static_cast<int>(shape[3]);
  using Format = v1::ImagePreprocessing;
  if ((in.format() == Format::GRAY && channels != 1) ||
      ((in.format() == Format::RGB || in.format() == Format::BGR) && channels != 3)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": input.format ", Format::Format_Name(in.format()), " does not fit the model's ",
        channels, "-channel input"));
  }
  p.bgr = in.format() == Format::BGR;
  if (in.center_crop() > 0 && (in.center_crop() != p.width || in.center_crop() != p.height)) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": input.center_crop ", in.center_crop(),
                                                   " does not match the model's input ", p.height,
                                                   "x", p.width));
  }
  if (in.resize_shorter() > 0 && (in.resize_shorter() < p.width || in.resize_shorter() < p.height)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": input.resize_shorter ", in.resize_shorter(), " is smaller than the model's input ",
        p.height, "x", p.width, "; it must leave room for the centre crop"));
  }
  p.resize_shorter = in.resize_shorter();
  p.crop_only = in.resize_shorter() == 0 && in.center_crop() > 0;
  p.scale = in.scale();
  p.nearest = in.interpolation() == v1::ImagePreprocessing::NEAREST;
  for (const auto* values : {&in.mean(), &in.std()}) {
    if (values->size() > 1 && values->size() != channels) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": input.", values == &in.mean() ? "mean" : "std",
                                                     " has ", values->size(), " values for a ",
                                                     channels, "-channel model"));
    }
  }
  for (int c = 0; c < channels; ++c) {
    if (in.mean_size() > 0) p.mean[c] = in.mean(in.mean_size() == 1 ? 0 : c);
    if (in.std_size() > 0) p.std[c] = in.std(in.std_size() == 1 ? 0 : c);
  }
  m->accepts_images = true;
  return absl::OkStatus();
}

// Runs `instances` fresh contexts of `threads` threads on zero batches of
// `batch` items, all at once, for about `budget` after one warm-up batch each.
absl::StatusOr<TuneTrial> MeasureInstances(const engine::Model& model, int instances, int threads,
                                           int64_t batch, absl::Duration budget) {
  const std::vector<float> zeros(engine::ItemElements(model.input().shape) * batch);
  std::vector<std::unique_ptr<engine::ExecutionContext>> contexts;
  for (int i = 0; i < instances; ++i) {
    contexts.push_back(model.CreateContext(threads));
    std::vector<engine::Tensor> ignored;
    RETURN_IF_ERROR(model.Run(*contexts.back(), batch, zeros, &ignored));  // compiles the plan
  }
  std::vector<std::vector<absl::Duration>> times(instances);
  std::vector<absl::Status> errors(instances);
  const absl::Time start = absl::Now(), stop = start + budget;
  std::vector<std::thread> workers;
  for (int i = 0; i < instances; ++i) {
    workers.emplace_back([&, i] {
      do {
        std::vector<engine::Tensor> ignored;
        const absl::Time t0 = absl::Now();
        errors[i] = model.Run(*contexts[i], batch, zeros, &ignored);
        times[i].push_back(absl::Now() - t0);
      } while (errors[i].ok() && absl::Now() < stop);
    });
  }
  for (std::thread& w : workers) w.join();
  const absl::Duration elapsed = absl::Now() - start;
  std::vector<absl::Duration> all;
  for (int i = 0; i < instances; ++i) {
    RETURN_IF_ERROR(errors[i]);
    all.insert(all.end(), times[i].begin(), times[i].end());
  }
  std::sort(all.begin(), all.end());
  TuneTrial t;
  t.items_per_second = static_cast<double>(all.size() * batch) / absl::ToDoubleSeconds(elapsed);
  t.batch_latency = all[all.size() / 2];
  return t;
}

// instance_group { count: 0 }: the cached choice for this machine and model,
// or a fresh search (then cached).
absl::StatusOr<TuneChoice> ChooseInstances(const LoadSpec& spec, const ServedModel& m, int cores) {
  const absl::Duration slo = absl::Microseconds(m.config.dynamic_batching().latency_slo_micros());
  const std::string key = TuneCacheKey(cores, spec.fingerprint, m.config.max_batch_size(), slo);
  const std::string cache = (fs::path(spec.model_dir) / ".cnnserve-autotune").string();
  if (std::optional<TuneChoice> cached = ReadTuneCache(cache, key); cached.has_value()) {
    Log(Severity::kInfo, "model autotune cached",
        {{"model", spec.name}, {"instances", std::to_string(cached->instances)},
         {"threads", std::to_string(cached->threads)}});
    return *cached;
  }
  const engine::Model& model = *m.model;
  ASSIGN_OR_RETURN(TuneChoice choice,
                   Autotune({.cores = cores,
                             .max_batch_size = m.config.max_batch_size(),
                             .slo = slo,
                             .budget = spec.autotune_budget},
                            [&model](int instances, int threads, int64_t batch, absl::Duration budget) {
                              return MeasureInstances(model, instances, threads, batch, budget);
                            }));
  for (const TuneTrial& t : choice.trials) {
    Log(Severity::kInfo, "model autotune trial",
        {{"model", spec.name}, {"instances", std::to_string(t.instances)},
         {"threads", std::to_string(t.threads)}, {"batch", std::to_string(t.batch)},
         {"items_per_second", absl::StrCat(t.items_per_second)},
         {"batch_ms", absl::StrCat(absl::ToDoubleMilliseconds(t.batch_latency))}});
  }
  Log(Severity::kInfo, "model autotuned",
      {{"model", spec.name}, {"instances", std::to_string(choice.instances)},
       {"threads", std::to_string(choice.threads)}, {"reason", choice.reason}});
  if (absl::Status saved = WriteTuneCache(cache, key, choice); !saved.ok()) {
    Log(Severity::kWarning, "autotune not cached", {{"model", spec.name}, {"reason", std::string(saved.message())}});
  }
  return choice;
}

}  // namespace

void SubmitInfer(std::shared_ptr<const ServedModel> model, int64_t items, std::vector<float> input,
                 absl::Time deadline, std::function<bool()> is_cancelled, InferDone done,
                 std::function<absl::Status(int64_t item, float* out)> decode_item) {
  auto task = std::make_unique<InferTask>();
  task->items = items;
  task->input = std::move(input);
  task->decode_item = std::move(decode_item);
  task->enqueued = absl::Now();
  task->deadline_at = deadline;
  task->is_cancelled = std::move(is_cancelled);
  task->metrics = model->metrics;
  InferTask* raw = task.get();
  // The task holds the model: a request in flight keeps its version alive.
  auto shared_done = std::make_shared<InferDone>(std::move(done));
  task->done = [model, raw, shared_done](absl::StatusOr<std::vector<engine::Tensor>> out) {
    (*shared_done)(std::move(out), raw->queued, raw->compute);
  };
  model->metrics->queue_depth->Increment();
  std::unique_ptr<BatchTask> base = std::move(task);
  absl::Status scheduled = model->batcher->Schedule(&base);
  if (!scheduled.ok()) {
    model->metrics->queue_depth->Decrement();
    (*shared_done)(scheduled, absl::ZeroDuration(), absl::ZeroDuration());
  }
}

std::function<void()> DropQueuedOnCancel(const std::shared_ptr<const ServedModel>& model) {
  return [weak = std::weak_ptr<const ServedModel>(model)] {
    if (auto m = weak.lock()) m->batcher->DropDead();
  };
}

absl::StatusOr<std::shared_ptr<ServedModel>> LoadServedModel(const LoadSpec& spec) {
  auto m = std::make_shared<ServedModel>();
  m->name = spec.name;
  m->version = spec.version;
  m->config = spec.config;
  m->fingerprint = spec.fingerprint;
  const fs::path dir(spec.model_dir);
  const std::string config_path = (dir / "config.pbtxt").string();
  if (m->config.platform() == "zoo") {
    ASSIGN_OR_RETURN(m->model, engine::Model::Load("zoo:" + m->config.zoo()));
  } else {
    ASSIGN_OR_RETURN(m->model, engine::Model::Load(
                                   (dir / std::to_string(spec.version) / "model.onnx").string()));
  }
  RETURN_IF_ERROR(SetUpPreprocessing(config_path, m.get()));
  m->preprocess.max_pixels = spec.max_image_pixels;
  if (fs::exists(dir / "labels.txt")) m->labels = ReadLabels(dir / "labels.txt");
  for (const engine::Node& node : m->model->graph().nodes) {
    if (node.outputs[0] == m->model->outputs()[0].name) {
      m->outputs_probabilities = std::holds_alternative<engine::SoftmaxParams>(node.params);
    }
  }
  m->metrics = spec.metrics->ForModel(spec.name, std::to_string(spec.version),
                                      m->config.max_batch_size());

  // OMP_NUM_THREADS, when set (a container's CPU limit), bounds the cores.
  int cores = std::max(1u, std::thread::hardware_concurrency());
  if (const char* omp = std::getenv("OMP_NUM_THREADS"); omp != nullptr && std::atoi(omp) > 0) {
    cores = std::min(cores, std::atoi(omp));
  }
  if (m->config.instance_group(0).count() == 0) {
    ASSIGN_OR_RETURN(TuneChoice choice, ChooseInstances(spec, *m, cores));
    m->config.mutable_instance_group(0)->set_count(choice.instances);
    m->config.mutable_instance_group(0)->set_threads(choice.threads);
    m->autotune = std::move(choice);
  }
  // Instances: threads 0 shares the cores evenly among all instances.
  int instances = 0;
  for (const v1::InstanceGroup& g : m->config.instance_group()) instances += g.count();
  const int even_share = std::max(1, cores / std::max(1, instances));
  std::set<int> thread_counts;
  for (const v1::InstanceGroup& g : m->config.instance_group()) {
    for (int i = 0; i < g.count(); ++i) {
      const int threads = g.threads() > 0 ? g.threads() : (instances == 1 ? 0 : even_share);
      m->contexts.push_back(m->model->CreateContext(threads));
      thread_counts.insert(threads);
    }
  }
  // With a latency SLO, compile a plan for every batch size the scheduler
  // can form, for each instance's thread count: a compile costs about 100 ms
  // (ResNet-18 on one core; 3 s for sizes 1-32), and a first batch of a new
  // size that misses the SLO also raises the admission margin. Without an
  // SLO only the `warmup` sizes are compiled at load; the others on first use.
  if (m->config.dynamic_batching().latency_slo_micros() > 0) {
    for (int threads : thread_counts) {
      for (int64_t batch = 1; batch <= m->config.max_batch_size(); ++batch) {
        RETURN_IF_ERROR(m->model->Prepare(batch, threads));
      }
    }
  }
  // Warm up every instance: compile the plans and size the arenas now, so
  // that the first requests do not pay for it. With a latency SLO, batch 1
  // and max_batch_size are warmed too and then timed on the first instance,
  // so the scheduler starts from this machine's costs.
  const int64_t item = engine::ItemElements(m->model->input().shape);
  const v1::DynamicBatching& db = m->config.dynamic_batching();
  std::vector<int64_t> warm(m->config.warmup().batch_size().begin(),
                            m->config.warmup().batch_size().end());
  std::vector<int64_t> timed;
  if (db.latency_slo_micros() > 0) {
    timed = {1, m->config.max_batch_size()};
    warm.insert(warm.end(), timed.begin(), timed.end());
  }
  auto run_zeros = [&](engine::ExecutionContext& context, int64_t batch) {
    std::vector<float> zeros(item * batch);
    std::vector<engine::Tensor> ignored;
    return m->model->Run(context, batch, zeros, &ignored);
  };
  for (auto& context : m->contexts) {
    for (int64_t batch : warm) RETURN_IF_ERROR(run_zeros(*context, batch));
  }
  std::vector<std::pair<int64_t, absl::Duration>> seeds;
  for (int64_t batch : timed) {
    for (int i = 0; i < 2; ++i) {
      const absl::Time start = absl::Now();
      RETURN_IF_ERROR(run_zeros(*m->contexts[0], batch));
      seeds.emplace_back(batch, absl::Now() - start);
    }
  }

  Batcher::Options options;
  options.max_batch_size = m->config.max_batch_size();
  options.preferred_batch_sizes.assign(db.preferred_batch_size().begin(),
                                       db.preferred_batch_size().end());
  options.max_queue_delay_micros = db.max_queue_delay_micros();
  options.max_queue_size = db.max_queue_size();
  options.instances = static_cast<int>(m->contexts.size());
  options.latency_slo_micros = db.latency_slo_micros();
  options.clock = spec.clock;
  const engine::Model* model = m->model.get();
  ModelMetrics* metrics = m->metrics;
  options.on_shed = [metrics] { metrics->slo_shed->Increment(); };
  std::vector<engine::ExecutionContext*> contexts;
  // Idle this long, an instance's OpenMP threads end (idle_exit_thread.h);
  // the next batch starts them again in about 0.1 ms. Under TSan they live
  // until unload: TSan cannot see libgomp's barriers, and only the stacks
  // of live or just-ended threads show the libgomp frames that
  // tests/tsan.supp suppresses.
#if defined(__SANITIZE_THREAD__)
  constexpr absl::Duration kIdleBeforeExit = absl::Hours(1);
#else
  constexpr absl::Duration kIdleBeforeExit = absl::Milliseconds(200);
#endif
  std::vector<IdleExitThread*> runners;
  for (auto& c : m->contexts) {
    contexts.push_back(c.get());
    m->runners.push_back(c->threads() > 1 ? std::make_unique<IdleExitThread>(kIdleBeforeExit) : nullptr);
    runners.push_back(m->runners.back().get());
  }
  // The batcher is destroyed before the rest of *m, so its workers may use it.
  const ServedModel* self = m.get();
  auto export_slo_state = [self, metrics] {
    if (auto slo = self->batcher->slo_state(); slo.has_value()) {
      metrics->batch_cost_fixed->Set(absl::ToDoubleSeconds(slo->cost.fixed));
      metrics->batch_cost_per_item->Set(absl::ToDoubleSeconds(slo->cost.per_item));
      metrics->target_batch_size->Set(static_cast<double>(slo->target_batch));
      metrics->admission_margin->Set(slo->admission_margin);
    }
  };
  ASSIGN_OR_RETURN(m->batcher, Batcher::Create(options, [model, contexts, runners, metrics, export_slo_state](
                                                            int instance, auto batch) {
    thread_local const bool lowered = (RunBelowServingThreads(), true);
    (void)lowered;
    auto run = [&] {
      ScopedBatchTicking ticking;
      RunInferBatch(*model, *contexts[instance], *metrics, std::move(batch));
    };
    if (runners[instance] != nullptr) {
      runners[instance]->Run(run);
    } else {
      run();
    }
    export_slo_state();
  }));
  for (const auto& [batch, took] : seeds) m->batcher->SeedCost(batch, took);
  export_slo_state();
  return m;
}

}  // namespace cnnserve::server
