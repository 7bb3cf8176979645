// The model side of the state machines over an allocation API: which handles
// exist and the size each was last asked with (to aim reallocs near it),
// and which were freed (for misuse commands to use again).
// What each one holds (a block, or NULL after a failure) is only known by
// running, so it lives in the system under test, judged by the reference
// model.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace hpcalloc::proptest {

struct HandleList {
  struct Handle {
    unsigned id;
    std::size_t size;
  };
  std::vector<Handle> handles;
  std::vector<Handle> freed;
  unsigned next_id = 0;

  auto find(unsigned id) const {
    return std::find_if(handles.begin(), handles.end(),
                        [id](const Handle& h) { return h.id == id; });
  }
  bool has(unsigned id) const { return find(id) != handles.end(); }
  void add(unsigned id, std::size_t size) {
    handles.push_back({id, size});
    next_id = std::max(next_id, id + 1);
  }
  void resize(unsigned id, std::size_t size) {
    handles[static_cast<std::size_t>(find(id) - handles.begin())].size = size;
  }
  void remove(unsigned id) { handles.erase(find(id)); }
  void free(unsigned id) {
    freed.push_back(*find(id));
    remove(id);
  }
};

}  // namespace hpcalloc::proptest
