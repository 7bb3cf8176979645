// ThreadSanitizer stress of the region registry's publication, on the
// production path that registers segments: MemorySource (two of them, one
// per simulated node, sharing one SegmentRegistry, as NumaHeaps builds them)
// over the real platform (LinuxPal: real mmaps at real addresses), with the
// production geometry and memory orders.
//
//   writers  acquire fresh small and medium segments and huge mappings (some
//            over-aligned, so they are mapped and trimmed), each of which the
//            source initialises and then publishes with registry.assign();
//            after each, they hand an address inside it to the readers
//            through a relaxed mailbox. Relaxed on purpose: it carries the
//            address but no happens-before, so the only thing that can order
//            the header's initialisation before a reader's use of it is the
//            registry itself (assign's release store, lookup's acquire load).
//   readers  look the mailbox addresses up, and addresses a few segments
//            away (which other writers may be registering at that moment, or
//            nobody), and read the header fields the source wrote before
//            publishing: the plain mapping_size and fresh (a data race for
//            TSan unless the registry orders them) and the magic and node.
//            Every eighth pass they also walk the whole registry as the
//            resident_bytes statistic does (for_each_range, then mincore of
//            each range) and check each range's header the same way.
//
// Every round starts with a fresh registry, so the writers also race to
// install its first leaf. Checked, whatever the interleaving:
// - a header found for an address (or a walked range) is valid (magic, node 0 or 1, fresh) and
//   its mapping contains the address; its kind and owner are the writer's,
//   or still the zeros of a fresh mapping (set_owner's relaxed stores come
//   after the assign and nothing orders them for a reader);
// - after the threads join, every mapping's first and last byte look up to
//   its header (a lost leaf install loses entries);
// - the readers found headers at all (the stress raced something).
// Any TSan report fails the test (halt_on_error=1 in ctest).
//
//   region_registry_stress [--rounds N]
//   region_registry_stress --broken NAME   a weakened registry, which must be
//       caught: relaxed_lookup (lookup's loads relaxed), relaxed_entry_store
//       (assign's entry store relaxed): both by a TSan data race on a header
//       field; plain_store_install (a leaf installed by a plain store): by a
//       lost entry after the join. The twins go in through the Config's
//       RegistryOrders (mem/memory_source.h), so the sources, registry and
//       checks are the production ones; only the orders differ.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "mem/memory_source_impl.h"
#include "mem/test_configs.h"
#include "model/scenarios/region_registry_twins.h"
#include "pal/linux_pal.h"

namespace hpcalloc {
namespace {

template <class Orders>
struct StressConfig : testing_configs::ProductionGeometryConfig<LinuxPal> {
  using RegistryOrders = Orders;
};

// The broken twins (model/scenarios/region_registry_twins.h).
using scenarios::PlainStoreInstall;
using scenarios::RelaxedEntryStore;
using scenarios::RelaxedLookup;

constexpr int kWriters = 3;
constexpr int kReaders = 2;
constexpr int kMappingsPerWriter = 16;  // per round
constexpr int kMailboxSlots = 4;        // per writer
constexpr unsigned kNodes = 2;

std::atomic<unsigned> failures{0};
void check(bool ok, const char* what) {
  if (!ok && failures.fetch_add(1, std::memory_order_relaxed) == 0) {
    std::fprintf(stderr, "FAIL: %s\n", what);
  }
}

// Owner tags: what each writer passes as the segments' owner.
int owner_tags[kWriters];

template <class Orders>
class Round {
 public:
  using Config = StressConfig<Orders>;
  using Source = MemorySource<Config>;
  using Registry = typename Source::Registry;
  static constexpr std::size_t kSegment = Source::kSegmentSize;

  explicit Round(LinuxPal& pal, unsigned seed)
      : pal_(pal), registry_(std::make_unique<Registry>(pal)) {
    for (unsigned node = 0; node < kNodes; ++node) {
      sources_[node] = std::make_unique<Source>(pal, *registry_, node, SourceLimits{});
    }
    for (auto& writer : mailbox_) {
      for (auto& slot : writer) slot.store(nullptr, std::memory_order_relaxed);
    }
    seed_ = seed;
  }

  // Runs the writers and readers once; then checks and gives everything back.
  void run(std::atomic<unsigned long>& found) {
    std::vector<std::thread> threads;
    for (int w = 0; w < kWriters; ++w) threads.emplace_back([this, w] { write(w); });
    for (int r = 0; r < kReaders; ++r) threads.emplace_back([this, &found] { read(found); });
    start_.store(true, std::memory_order_release);
    for (auto& thread : threads) thread.join();
    check_after_join();
  }

  ~Round() {
    for (int w = 0; w < kWriters; ++w) {
      for (SegmentHeader* header : mappings_[w]) sources_[w % kNodes]->release_segment(header);
    }
    for (auto& source : sources_) source.reset();  // unmaps its cache
    registry_.reset();                             // releases its leaves
  }

 private:
  void wait_for_start() const {
    while (!start_.load(std::memory_order_acquire)) std::this_thread::yield();
  }

  void write(int w) {
    wait_for_start();
    Source& source = *sources_[w % kNodes];
    std::uint64_t random = (seed_ + 1) * 0x9e3779b97f4a7c15ull + static_cast<unsigned>(w);
    for (int i = 0; i < kMappingsPerWriter; ++i) {
      random = random * 6364136223846793005ull + 1442695040888963407ull;
      SegmentHeader* header = nullptr;
      switch (i % 4) {
        case 0: header = source.acquire_segment(SegmentKind::kSmall, &owner_tags[w]); break;
        case 1: header = source.acquire_segment(SegmentKind::kMedium, &owner_tags[w]); break;
        case 2:  // two to five segment slots
          header =
              source.acquire_huge(kSegment + (random >> 40) % (3 * kSegment), 4096, &owner_tags[w]);
          break;
        default:  // over-aligned: mapped larger, then trimmed to an aligned range
          header = source.acquire_huge(kSegment, 2 * kSegment, &owner_tags[w]);
          break;
      }
      check(header != nullptr, "a memory source served a mapping");
      if (header == nullptr) continue;
      mappings_[w].push_back(header);
      // The writer reads back its own write: no race.
      const std::size_t offset = (random >> 17) % header->mapping_size;
      // Relaxed: hands over the address only (see the file comment).
      mailbox_[w][i % kMailboxSlots].store(reinterpret_cast<char*>(header) + offset,
                                           std::memory_order_relaxed);
    }
    // Relaxed: only ends the readers' loops; publishes nothing.
    writers_done_.fetch_add(1, std::memory_order_relaxed);
  }

  void read(std::atomic<unsigned long>& found) {
    wait_for_start();
    unsigned long local_found = 0;
    for (unsigned pass = 0; writers_done_.load(std::memory_order_relaxed) != kWriters; ++pass) {
      if (pass % 8 == 0) local_found += walk_ranges();
      for (int w = 0; w < kWriters; ++w) {
        for (int s = 0; s < kMailboxSlots; ++s) {
          char* published = mailbox_[w][s].load(std::memory_order_relaxed);
          if (published == nullptr) continue;
          local_found += check_lookup(published);
          // Neighbours: other writers' mappings being registered, or nothing.
          for (int step = -2; step <= 2; ++step) {
            if (step != 0) local_found += check_lookup(published + step * std::ptrdiff_t(kSegment));
          }
        }
      }
    }
    found.fetch_add(local_found, std::memory_order_relaxed);
  }

  // Looks p up and checks what it finds; 1 when a header was found.
  unsigned check_lookup(const char* p) const {
    SegmentHeader* header = registry_->lookup(p);
    if (header == nullptr) return 0;  // not registered, or not yet visible
    const char* base = reinterpret_cast<const char*>(header);
    check(header->is_valid(), "a found header has its magic");
    check(header->node() < kNodes, "a found header names its source's node");
    // Plain fields written before assign(): a data race without the
    // registry's release/acquire pair.
    check(header->fresh, "a found header is of a fresh mapping");
    check(p >= base && p < base + header->mapping_size, "the found mapping holds the address");
    // Relaxed stores after the assign: either value may be seen.
    const SegmentKind kind = header->kind();
    void* owner = header->owner();
    const bool owner_ok =
        owner == nullptr || (owner >= static_cast<void*>(&owner_tags[0]) &&
                             owner <= static_cast<void*>(&owner_tags[kWriters - 1]));
    check(owner_ok, "a found header's owner is a writer's (or not yet set)");
    check(kind == SegmentKind::kCached || kind == SegmentKind::kSmall ||
              kind == SegmentKind::kMedium || kind == SegmentKind::kHuge,
          "a found header's kind is a kind");
    return 1;
  }

  // The resident_bytes walk (mem/resident_bytes.h): every range found is
  // inside its header's mapping, whose fields were published by assign()
  // (a range may be the part of a mapping whose slots are visible yet).
  unsigned walk_ranges() const {
    unsigned walked = 0;
    registry_->for_each_range([&](void* start, std::size_t size, SegmentHeader* header) {
      const char* base = reinterpret_cast<const char*>(header);
      const char* first = static_cast<const char*>(start);
      check(header->is_valid() && header->fresh, "a walked range's header is valid and fresh");
      check(first >= base && first + size <= base + align_up(header->mapping_size, kSegment),
            "a walked range lies inside its header's mapping");
      check(pal_.resident_bytes(start, size) <= size, "a range's resident bytes fit in it");
      ++walked;
    });
    return walked;
  }

  void check_after_join() const {
    for (int w = 0; w < kWriters; ++w) {
      for (SegmentHeader* header : mappings_[w]) {
        const char* base = reinterpret_cast<const char*>(header);
        check(registry_->lookup(base) == header &&
                  registry_->lookup(base + header->mapping_size - 1) == header,
              "after the join, every mapping's first and last byte find its header");
        check(header->owner() == &owner_tags[w], "after the join, every owner is its writer's");
      }
    }
  }

  LinuxPal& pal_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<Source> sources_[kNodes];
  std::atomic<char*> mailbox_[kWriters][kMailboxSlots];
  std::vector<SegmentHeader*> mappings_[kWriters];
  std::atomic<bool> start_{false};
  std::atomic<int> writers_done_{0};
  unsigned seed_ = 0;
};

template <class Orders>
int run(unsigned rounds) {
  LinuxPal pal;
  std::atomic<unsigned long> found{0};
  unsigned round = 0;
  for (; round < rounds && failures.load() == 0; ++round) Round<Orders>(pal, round).run(found);
  if (failures.load() != 0) std::fprintf(stderr, "FAIL in round %u\n", round);
  check(found.load() > 0, "the readers found registered headers while writers registered");
  if (failures.load() != 0) return 1;
  std::printf("region_registry_stress: %u rounds, %lu headers found and checked by readers\n",
              rounds, found.load());
  return 0;
}

}  // namespace
}  // namespace hpcalloc

int main(int argc, char** argv) {
  using namespace hpcalloc;
  if (argc == 1) return run<RegionRegistryOrders>(60);
  if (argc == 3 && std::strcmp(argv[1], "--rounds") == 0) {
    const unsigned rounds = static_cast<unsigned>(std::strtoul(argv[2], nullptr, 10));
    if (rounds > 0) return run<RegionRegistryOrders>(rounds);
  }
  if (argc == 3 && std::strcmp(argv[1], "--broken") == 0) {
    if (std::strcmp(argv[2], "relaxed_lookup") == 0) return run<RelaxedLookup>(60);
    if (std::strcmp(argv[2], "relaxed_entry_store") == 0) return run<RelaxedEntryStore>(60);
    if (std::strcmp(argv[2], "plain_store_install") == 0) return run<PlainStoreInstall>(1000);
  }
  std::fprintf(stderr,
               "usage: %s [--rounds N | --broken "
               "relaxed_lookup|relaxed_entry_store|plain_store_install]\n",
               argv[0]);
  return 2;
}
