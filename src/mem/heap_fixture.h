// A private heap for tests: platform, registry, one memory source and one
// ThreadHeap, on any Pal. Test-only.
#pragma once

#include <memory>

#include "mem/memory_source.h"
#include "mem/thread_heap.h"

namespace hpcalloc::testing_configs {

template <class Config>
struct HeapFixture {
  using Pal = typename Config::Pal;
  using Registry = SegmentRegistry<Config>;
  using Source = MemorySource<Config>;
  using Heap = ThreadHeap<Config>;

  template <class... PalArgs>
  explicit HeapFixture(const SourceLimits& limits = SourceLimits{}, PalArgs&&... pal_args)
      : pal(std::forward<PalArgs>(pal_args)...),
        registry(std::make_unique<Registry>(pal)),
        source(std::make_unique<Source>(pal, *registry, 0, limits)),
        heap(std::make_unique<Heap>(*registry, *source, reporter)) {}

  ~HeapFixture() {
    heap.reset();
    source.reset();
    registry.reset();
  }

  Pal pal;
  typename Config::Reporter reporter;
  std::unique_ptr<Registry> registry;
  std::unique_ptr<Source> source;
  std::unique_ptr<Heap> heap;
};

}  // namespace hpcalloc::testing_configs
