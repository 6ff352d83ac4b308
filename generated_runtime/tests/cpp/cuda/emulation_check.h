// The check macro of the host emulations of CUDA code (tests/cpp/cuda/*_emulation.cpp): EXPECT(cond, printf-args)
// counts a check, and on failure prints the place and the message and counts a failure; main() reports
// emulation_failures at the end and returns non-zero when there were any.
#pragma once
#include <cstdio>

inline int emulation_failures = 0, emulation_checks = 0;

#define EXPECT(cond, ...)                                    \
  do {                                                       \
    ++emulation_checks;                                      \
    if (!(cond)) {                                           \
      ++emulation_failures;                                  \
      std::printf("FAIL %s:%d: ", __FILE__, __LINE__);       \
      std::printf(__VA_ARGS__);                              \
      std::printf("\n");                                     \
    }                                                        \
  } while (0)
