// How many threads the test process has now (/proc/self/task), for tests
// that check that OpenMP threads end with the thread that started them.
#ifndef CNNSERVE_TESTS_PROCESS_THREADS_H_
#define CNNSERVE_TESTS_PROCESS_THREADS_H_

#include <filesystem>
#include <iterator>

namespace cnnserve {

inline int ThreadsInProcess() {
  return static_cast<int>(std::distance(std::filesystem::directory_iterator("/proc/self/task"),
                                        std::filesystem::directory_iterator()));
}

}  // namespace cnnserve

#endif  // CNNSERVE_TESTS_PROCESS_THREADS_H_
