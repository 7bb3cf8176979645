// xmalloc-test (Lever & Boreham, "malloc() Performance in a Multithreaded
// Linux Environment", USENIX 2000), as a producer/consumer pipeline: producer
// threads allocate blocks of random small sizes and pass them in batches to
// consumer threads, which check and free them. Every free is therefore a
// remote free, the pattern of a server whose I/O threads allocate requests
// that worker threads release. Half the threads produce (rounded up), half
// consume; with one thread it produces a batch and then consumes it itself.
//
// Each consumer has its own bounded queue, so memory in flight stays bounded
// and a slow allocator stalls producers rather than growing the heap.
// Producer p sends its b-th batch to consumer (p + b) % consumers, so which
// thread frees which block does not depend on scheduling.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "workload_common.h"

namespace {

using hpcalloc::bench::allocate;
using hpcalloc::bench::check_self_described_block;
using hpcalloc::bench::Rng;
using hpcalloc::bench::stamp_block;

using Batch = std::vector<void*>;  // each block describes its own size

struct Config {
  std::uint64_t min_size;
  std::uint64_t max_size;
  std::uint64_t batch;
  std::uint64_t batches;
  std::uint64_t queue_depth;
};

class BatchQueue {
 public:
  explicit BatchQueue(std::size_t depth) : depth_(depth) {}

  void push(Batch batch) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [this] { return batches_.size() < depth_; });
    batches_.push_back(std::move(batch));
    not_empty_.notify_one();
  }

  // Returns false once the queue is empty and no producer is left.
  bool pop(Batch* out) {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [this] { return !batches_.empty() || closed_; });
    if (batches_.empty()) return false;
    *out = std::move(batches_.front());
    batches_.pop_front();
    not_full_.notify_one();
    return true;
  }

  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::deque<Batch> batches_;
  std::size_t depth_;
  bool closed_ = false;
};

Batch produce(Rng& rng, const Config& config, std::uint64_t* next_tag) {
  Batch batch;
  batch.reserve(config.batch);
  for (std::uint64_t i = 0; i < config.batch; ++i) {
    const std::size_t size = rng.between(config.min_size, config.max_size);
    void* block = allocate(size);
    stamp_block(block, size, ++*next_tag);
    batch.push_back(block);
  }
  return batch;
}

void consume(Batch& batch, const Config& config) {
  for (void* block : batch) {
    check_self_described_block(block, config.max_size);
    std::free(block);
  }
}

}  // namespace

int main(int argc, char** argv) {
  hpcalloc::bench::Options options(
      "xmalloc",
      "xmalloc-test: producers allocate random small blocks and pass them in batches\n"
      "to consumer threads that free them (all frees are remote).");
  Config config{16, 512, 128, 60000, 8};
  options.add_count("min-size", &config.min_size, "smallest block in bytes (>= 16)");
  options.add_count("max-size", &config.max_size, "largest block in bytes");
  options.add_count("batch", &config.batch, "blocks per batch");
  options.add_count("batches", &config.batches, "batches per producer at scale 1");
  options.add_count("queue-depth", &config.queue_depth, "batches a consumer queue holds");
  options.parse(argc, argv);
  if (config.min_size < hpcalloc::bench::kStampHeaderBytes || config.min_size > config.max_size ||
      config.max_size - config.min_size >= (std::uint64_t{1} << 32) || config.batch == 0 ||
      config.queue_depth == 0) {
    std::fprintf(stderr,
                 "bench_xmalloc: need 16 <= min-size <= max-size, batch, queue-depth >= 1\n");
    return 2;
  }
  config.batches = options.scaled(config.batches);
  const auto threads = static_cast<unsigned>(options.threads);
  const unsigned producers = threads == 1 ? 1 : (threads + 1) / 2;
  const unsigned consumers = threads / 2;

  std::vector<std::unique_ptr<BatchQueue>> queues;
  for (unsigned c = 0; c < consumers; ++c) {
    queues.push_back(std::make_unique<BatchQueue>(config.queue_depth));
  }
  std::atomic<unsigned> producers_left{producers};

  const double seconds = hpcalloc::bench::run_threads(threads, [&](unsigned t) {
    if (threads == 1) {
      Rng rng(options.seed, 0);
      std::uint64_t tag = 0;
      for (std::uint64_t b = 0; b < config.batches; ++b) {
        Batch batch = produce(rng, config, &tag);
        consume(batch, config);
      }
    } else if (t < producers) {
      Rng rng(options.seed, t);
      std::uint64_t tag = 0;
      for (std::uint64_t b = 0; b < config.batches; ++b) {
        queues[(t + b) % consumers]->push(produce(rng, config, &tag));
      }
      // acq_rel: the last producer to leave closes every queue after all
      // producers' pushes, which the queues' mutexes already order.
      if (producers_left.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        for (auto& queue : queues) queue->close();
      }
    } else {
      BatchQueue& queue = *queues[t - producers];
      Batch batch;
      while (queue.pop(&batch)) consume(batch, config);
    }
  });

  const std::uint64_t ops = std::uint64_t{producers} * config.batches * config.batch;
  hpcalloc::bench::print_result(
      "xmalloc", threads, seconds, ops,
      {{"producers", std::to_string(producers)}, {"consumers", std::to_string(consumers)}});
  return 0;
}
