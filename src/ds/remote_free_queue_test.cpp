#include "ds/remote_free_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "sync/std_sync.h"

namespace hpcalloc {
namespace {

using Queue = RemoteFreeQueue<StdSync>;

struct alignas(16) Block {
  void* link;
  int producer;
  int index;
};

TEST(RemoteFreeQueue, TakesEverythingPushedInLifoOrder) {
  Queue queue;
  EXPECT_EQ(queue.take_all(), nullptr);
  EXPECT_TRUE(queue.empty_relaxed());
  Block blocks[3] = {};
  for (Block& b : blocks) queue.push(&b);
  EXPECT_FALSE(queue.empty_relaxed());
  void* p = queue.take_all();
  EXPECT_EQ(p, &blocks[2]);
  p = Queue::next(p);
  EXPECT_EQ(p, &blocks[1]);
  p = Queue::next(p);
  EXPECT_EQ(p, &blocks[0]);
  EXPECT_EQ(Queue::next(p), nullptr);
  EXPECT_EQ(queue.take_all(), nullptr);
}

TEST(RemoteFreeQueue, PushChainLinksABatchAtOnce) {
  Queue queue;
  Block a{}, b{}, c{}, d{};
  queue.push(&a);
  Queue::link(&b, &c);
  Queue::link(&c, &d);
  queue.push_chain(&b, &d);
  void* p = queue.take_all();
  std::vector<void*> seen;
  for (; p != nullptr; p = Queue::next(p)) seen.push_back(p);
  EXPECT_EQ(seen, (std::vector<void*>{&b, &c, &d, &a}));
}

// Real threads: every pushed block is taken exactly once, and its contents
// (written before the push) are seen by the consumer. The interleaving proof
// is the Relacy model (model/remote_free_queue_model.cpp) and TSan.
TEST(RemoteFreeQueue, ManyProducersOneConsumerLoseNothing) {
  constexpr int kProducers = 4;
  constexpr int kBlocksEach = 20000;
  Queue queue;
  std::vector<Block> blocks(kProducers * kBlocksEach);
  std::vector<int> taken(blocks.size(), 0);
  std::atomic<int> done{0};
  std::vector<std::thread> producers;
  for (int t = 0; t < kProducers; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < kBlocksEach; ++i) {
        Block& b = blocks[t * kBlocksEach + i];
        b.producer = t;
        b.index = i;
        queue.push(&b);
      }
      done.fetch_add(1, std::memory_order_release);
    });
  }
  long total = 0;
  auto drain = [&] {
    for (void* p = queue.take_all(); p != nullptr; p = Queue::next(p)) {
      const Block* b = static_cast<const Block*>(p);
      ASSERT_EQ(b, &blocks[b->producer * kBlocksEach + b->index]);
      ++taken[b - blocks.data()];
      ++total;
    }
  };
  while (done.load(std::memory_order_acquire) < kProducers) drain();
  for (auto& t : producers) t.join();
  drain();
  EXPECT_EQ(total, long{kProducers} * kBlocksEach);
  for (int n : taken) ASSERT_EQ(n, 1);
}

}  // namespace
}  // namespace hpcalloc
