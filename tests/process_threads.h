// How many threads the test process has now (/proc/self/task), for tests
// that check that OpenMP threads end with the thread that started them.
#ifndef CNNSERVE_TESTS_PROCESS_THREADS_H_
#define CNNSERVE_TESTS_PROCESS_THREADS_H_

#include <chrono>
#include <filesystem>
#include <iterator>
#include <thread>

namespace cnnserve {

inline int ThreadsInProcess() {
  return static_cast<int>(std::distance(std::filesystem::directory_iterator("/proc/self/task"),
                                        std::filesystem::directory_iterator()));
}

// Waits (up to 10 s) for the process to have `want` threads: threads that
// end take a moment to leave /proc.
inline bool ThreadsComeBackTo(int want) {
  for (int i = 0; i < 1000 && ThreadsInProcess() != want; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return ThreadsInProcess() == want;
}

}  // namespace cnnserve

#endif  // CNNSERVE_TESTS_PROCESS_THREADS_H_
