// short_slice CMD [ARGS...]: runs CMD with the shortest scheduler slice
// (server/thread_priority.h), as the server runs its own threads. A load
// generator that shares the server's cores otherwise waits, on each wake-up
// it loses to a batch thread, for the next scheduler tick (up to 4 ms), and
// reports that wait as the server's latency.
#include <unistd.h>

#include <cstdio>

#include "server/thread_priority.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: short_slice CMD [ARGS...]\n");
    return 2;
  }
  cnnserve::server::UseShortSchedulerSlices();
  execvp(argv[1], argv + 1);
  std::perror(argv[1]);
  return 127;
}
