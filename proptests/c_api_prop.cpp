// rapidcheck state machine over the prefixed C API of the real library
// (proptests/c_api_state.h): every call of the malloc family judged by the
// reference model. At the end every block is freed and, after a trim, the
// library's in-use figures are back where they started. Misuse is
// c_api_misuse_prop's.
// Default: rapidcheck's 100 cases. A campaign:
//   RC_PARAMS="max_success=20000 max_size=400" ./c_api_prop
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include "proptests/c_api_state.h"

namespace hpcalloc::proptest {
namespace {

RC_GTEST_PROP(CApiProp, AgainstReferenceModel, ()) {
  hpc_malloc_trim(0);
  const std::size_t in_use_before = stat("in_use_bytes");
  const std::size_t huge_before = stat("huge_blocks");

  ApiSut sut;
  const auto commands = *rc::gen::scale(
      4.0,
      rc::state::gen::commands(
          ApiModel{}, rc::state::gen::execOneOfWithArgs<Allocate, Allocate, Allocate, Realloc,
                                                        Realloc, Free, Free, UsableSize, Trim>()));
  rc::state::runAll(commands, ApiModel{}, sut);

  for (const auto& [h, p] : sut.blocks) {
    sut.judge(sut.spec.free(p));
    hpc_free(p);
  }
  hpc_malloc_trim(0);
  RC_ASSERT(stat("in_use_bytes") == in_use_before);
  RC_ASSERT(stat("huge_blocks") == huge_before);
}

}  // namespace
}  // namespace hpcalloc::proptest
