// rapidcheck state machine over several heaps sharing one pool on SimPal
// (proptests/multi_heap_state.h): remote frees, one at a time and in batches
// of up to 70 blocks (chains and carriers), drains, thread exit and
// adoption, every result judged by the reference model. Checked along the
// way and at the end:
//   - a drain takes back every remote free pushed to that heap so far;
//   - heaps_created equals the peak number of threads attached at once
//     (exited threads' heaps are adopted, never leaked);
//   - after every block is freed and every heap drained and trimmed: nothing
//     in use in any heap, remote frees pushed == drained, nothing reported,
//     and once the heaps are torn down the source has nothing mapped.
// Misuse (double frees, interior pointers) is multi_heap_misuse_prop's.
// Default: rapidcheck's 100 cases. A campaign:
//   RC_PARAMS="max_success=20000 max_size=400" ./multi_heap_prop
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include "proptests/multi_heap_batches.h"
#include "proptests/multi_heap_state.h"

namespace hpcalloc::proptest {
namespace {

RC_GTEST_PROP(MultiHeapProp, RemoteFreesExitAndAdoptionAgainstReferenceModel, ()) {
  PoolSut sut;
  const auto commands = *rc::gen::scale(
      4.0,
      rc::state::gen::commands(
          PoolModel{}, rc::state::gen::execOneOfWithArgs<Allocate, Allocate, Allocate, Free, Free,
                                                         Realloc, Realloc, UsableSize, Drain, Exit,
                                                         Start, BatchFree<BatchMisuse::kNone>>()));
  rc::state::runAll(commands, PoolModel{}, sut);
  free_everything_and_tear_down(sut);
}

}  // namespace
}  // namespace hpcalloc::proptest
