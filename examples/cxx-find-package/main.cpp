// Standard containers and threads on hpcalloc, linked as a shared library:
// every new and delete of the program is hpcalloc's. hpcalloc's statistics
// (hpc_stat) show the program's own 8 MiB array among its huge blocks, so
// the program checks that new really is hpcalloc's. Exit 0 when all holds.
#include <hpcalloc/hpcalloc.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

int main() {
  std::vector<std::thread> threads;
  std::vector<std::map<int, std::string>> results(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &results] {
      std::map<int, std::string> m;
      for (int i = 0; i < 20000; ++i) m[i] = std::to_string(i * (t + 1));
      results[t] = std::move(m);  // freed later by the main thread
    });
  }
  for (std::thread& thread : threads) thread.join();
  long sum = 0;
  for (int t = 0; t < 4; ++t) {
    for (const auto& [key, value] : results[t]) sum += std::stol(value) - key * (t + 1);
  }
  auto big = std::make_unique<double[]>(1 << 20);  // 8 MiB: a huge block
  std::size_t huge_blocks = 0;
  if (sum != 0 || hpc_stat("huge_blocks", &huge_blocks) != 0 || huge_blocks < 1) {
    std::fprintf(stderr, "cxx_example: FAIL (sum %ld, hpcalloc's huge blocks %zu)\n", sum,
                 huge_blocks);
    return 1;
  }
  results.clear();
  std::printf("cxx_example: hpcalloc %s serves new and delete (%s flavour)\n", hpc_version(),
              hpc_flavour());
  return 0;
}
