// The misuse opcodes of c_api_fuzz: double frees (on this thread or the
// worker), frees of interior pointers, realloc and malloc_usable_size of
// freed blocks, and batches of remote frees (1 to 70 blocks freed on the
// worker, chains and carriers) with one block freed twice or an interior
// pointer of one (as proptests/batch_plan.h describes them).
//
// They run only with HPCALLOC_ON_ERROR=warn, where a detected misuse prints
// one line and the call returns without touching the allocator; otherwise
// the first one would abort the process, so they do nothing (the harness
// says so once at start-up). Each misuse is judged by the reference model:
// after it, every remote free reaches its owner (malloc_trim on the worker,
// which pushes what it holds; on this thread, which drains; on the worker
// again, which takes back the carriers), and then hpc_stat("errors_reported")
// must have grown by exactly one per misuse, every live block must be
// intact, and no remote free pushed may stay untaken (a lost free).
//
// Only the allocator touches a misused pointer: hpcalloc poisons freed
// memory for ASan in this build, so the harness reading it would be an ASan
// report of its own; the model's misuse judgements never read it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "api/hpcalloc.h"
#include "fuzz/fuzz_input.h"  // fail()
#include "model/reference_model.h"
#include "proptests/worker_thread.h"

namespace hpcalloc::fuzz {

// Whether the misuse opcodes may run (HPCALLOC_ON_ERROR=warn).
inline bool misuse_enabled() {
  static const bool enabled = [] {
    const char* mode = std::getenv("HPCALLOC_ON_ERROR");
    return mode != nullptr && std::string_view(mode) == "warn";
  }();
  return enabled;
}

inline std::size_t stat_value(const char* name) {
  std::size_t value = 0;
  if (hpc_stat(name, &value) != 0) fail("c_api_fuzz", std::string("hpc_stat(") + name + ")");
  return value;
}

// The last few blocks an input freed, for the misuse opcodes to use again.
class Graveyard {
 public:
  struct Grave {
    void* p = nullptr;
  };

  void add(void* p) {
    if (p == nullptr) return;
    graves_[next_++ % kGraves] = Grave{p};
  }
  // The grave a selector byte names.
  const Grave& at(unsigned selector) const { return graves_[selector % kGraves]; }

 private:
  static constexpr unsigned kGraves = 8;
  Grave graves_[kGraves];
  unsigned next_ = 0;
};

class MisuseOps {
 public:
  MisuseOps(const char* harness, reference::ReferenceModel& model, proptest::WorkerThread& worker)
      : harness_(harness), model_(model), worker_(worker) {}

  // What an earlier input left (reports, frees pushed but never taken
  // back) is not this input's: compared with these from here on.
  void begin() {
    reports_seen_ = stat_value("errors_reported");
    outstanding_ = outstanding_remote_frees();
  }

  Graveyard& graves() { return graves_; }

  // free(p) of a freed block, here or on the worker.
  void double_free(unsigned grave, bool on_worker) {
    void* p = graves_.at(grave).p;
    if (p == nullptr || !model_.is_misuse(p)) return;  // a live block starts there again
    judge(model_.free_misused(p));
    call(on_worker, [p] { hpc_free(p); });
    settle();
  }

  // free(block + offset) of a live block, here or on the worker (+1 when
  // the offset is past its extent).
  void interior_free(void* block, std::size_t offset, bool on_worker) {
    if (block == nullptr) return;
    const std::size_t extent = model_.live().at(address(block)).extent;
    if (extent < 2) return;
    char* p = static_cast<char*>(block) + (offset < extent ? offset : 1);
    judge(model_.free_misused(p));
    call(on_worker, [p] { hpc_free(p); });
    settle();
  }

  // realloc(p, size) of a block this thread freed (one the worker freed may
  // still wait in this thread's queue: live as far as the allocator knows).
  void realloc_freed(unsigned selector, std::size_t size) {
    const Graveyard::Grave& grave = graves_.at(selector);
    if (grave.p == nullptr || !model_.is_misuse(grave.p)) return;
    drain_everywhere();
    void* q = hpc_realloc(grave.p, size);
    judge(model_.realloc_misused(grave.p, size, q));
    settle();
  }

  void usable_size_freed(unsigned selector) {
    const Graveyard::Grave& grave = graves_.at(selector);
    if (grave.p == nullptr || !model_.is_misuse(grave.p)) return;
    drain_everywhere();
    judge(model_.usable_size_misused(grave.p, hpc_malloc_usable_size(grave.p)));
    settle();
  }

  // The worker frees `blocks` (this thread's, live) in one batch, with the
  // misuse `pattern` picks: 0 none, 1 p q p, 2 p again at the end, 3 p
  // again in a second batch, 4 an interior pointer of p before p.
  void batch_free(const std::vector<char*>& blocks, unsigned pattern, unsigned target,
                  unsigned split_after, std::size_t offset) {
    const unsigned n = static_cast<unsigned>(blocks.size());
    target %= n;
    const unsigned split = target + 1 + split_after % (n - target);
    std::vector<char*> frees;
    std::size_t push_before = SIZE_MAX;
    for (unsigned i = 0; i < n; ++i) {
      if (pattern == 3 && i == split) break;
      if (pattern == 4 && i == target) {
        const std::size_t extent = model_.live().at(address(blocks[i])).extent;
        if (extent >= 2) frees.push_back(blocks[i] + (offset < extent ? offset : 1));
      }
      frees.push_back(blocks[i]);
      if (pattern == 1 && i == target + 1) frees.push_back(blocks[target]);
    }
    if (pattern == 1 && target + 1 == n) frees.push_back(blocks[target]);
    if (pattern == 2) frees.push_back(blocks[target]);
    if (pattern == 3) {
      push_before = frees.size();
      frees.push_back(blocks[target]);
      for (unsigned i = split; i < n; ++i) frees.push_back(blocks[i]);
    }
    // Judged here first (a valid free's judgement reads the block), freed
    // there in one job; settle() then checks every other block is intact.
    for (char* p : frees) {
      judge(model_.is_misuse(p) ? model_.free_misused(p) : model_.free(p));
      graves_.add(p);
    }
    worker_.run([&frees, push_before] {
      for (std::size_t i = 0; i < frees.size(); ++i) {
        if (i == push_before) hpc_malloc_trim(0);  // pushes the first batch
        hpc_free(frees[i]);
      }
    });
    settle();
  }

  // Every remote free reaches its owner and every report is made; then the
  // reports, the live blocks and the remote-free figures are judged.
  void settle() {
    worker_.run([] { hpc_malloc_trim(0); });
    hpc_malloc_trim(0);
    worker_.run([] { hpc_malloc_trim(0); });
    // A misused free its owner rejected may not count as taken back: one
    // per misuse is allowed, and becomes the new baseline.
    const std::size_t misused = model_.expected_reports();
    const std::size_t reports = stat_value("errors_reported");
    judge(model_.reports(reports - reports_seen_));
    reports_seen_ = reports;
    const std::size_t outstanding = outstanding_remote_frees();
    if (outstanding < outstanding_ || outstanding - outstanding_ > misused) {
      fail(harness_, std::to_string(outstanding - outstanding_) +
                         " remote frees pushed but never taken back by their owner (" +
                         std::to_string(misused) + " misuse)");
    }
    outstanding_ = outstanding;
  }

 private:
  // Every free either thread made reaches its block's owner: this thread
  // pushes what it holds for the worker, the worker takes it back and
  // pushes its own, this thread takes those back. Until then a block whose
  // free waits in a queue (a block of either heap freed on the other
  // thread, under any grave: addresses are reused) is live as far as its
  // owner can know, and realloc or usable size of it is no misuse yet.
  void drain_everywhere() {
    hpc_malloc_trim(0);
    worker_.run([] { hpc_malloc_trim(0); });
    hpc_malloc_trim(0);
  }
  static std::uintptr_t address(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }
  static std::size_t outstanding_remote_frees() {
    return stat_value("remote_frees_pushed") - stat_value("remote_frees_drained");
  }
  void judge(const std::string& verdict) const {
    if (!verdict.empty()) fail(harness_, verdict);
  }
  template <class Call>
  void call(bool on_worker, Call call) {
    if (on_worker) {
      worker_.run(call);
    } else {
      call();
    }
  }

  const char* harness_;
  reference::ReferenceModel& model_;
  proptest::WorkerThread& worker_;
  Graveyard graves_;
  std::size_t reports_seen_ = 0;
  std::size_t outstanding_ = 0;
};

}  // namespace hpcalloc::fuzz
