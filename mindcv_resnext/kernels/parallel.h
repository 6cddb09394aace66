// What the kernel files share: spreading work over the CPUs this process may use, and the checks of MindSpore's
// aot arguments.
#pragma once

#include <sched.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace kernels {

inline int worker_count() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// body(t) for t in [0, tasks), spread over the CPUs this process may use; the calling thread takes a share.
template <typename Body>
void parallel_for(int64_t tasks, Body body) {
  const int threads = static_cast<int>(std::min<int64_t>(worker_count(), tasks));
  auto share = [&](int k) {
    for (int64_t t = k; t < tasks; t += threads) body(t);
  };
  std::vector<std::thread> pool;
  for (int k = 1; k < threads; ++k) pool.emplace_back(share, k);
  share(0);
  for (auto &thread : pool) thread.join();
}

// Whether arguments [first, first + count) are float32 tensors of `rank` dimensions.
inline bool float32_of_rank(int first, int count, int rank, const int *ndims, const char **dtypes) {
  for (int k = first; k < first + count; ++k)
    if (ndims[k] != rank || std::strcmp(dtypes[k], "float32") != 0) return false;
  return true;
}

}  // namespace kernels
