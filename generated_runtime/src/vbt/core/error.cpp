// Internal-assert failure path: print file, line and condition, then abort (never caught).
#include <cstdio>
#include <cstdlib>

#include "vbt/core/error.h"

namespace vbt {
namespace {
WarningHandler g_warning_handler = nullptr;
}
void set_warning_handler(WarningHandler h) { g_warning_handler = h; }
void warn(const std::string& msg) {
  if (g_warning_handler) {
    g_warning_handler(msg);
    return;
  }
  std::fprintf(stderr, "vibetensor warning: %s\n", msg.c_str());
}
}  // namespace vbt

namespace vbt::detail {
void internal_assert_fail(const char* file, int line, const char* cond, const std::string& msg) {
  std::fprintf(stderr, "vibetensor internal error at %s:%d: assertion `%s` failed. %s\n", file, line, cond,
               msg.c_str());
  std::fflush(stderr);
  std::abort();
}
}  // namespace vbt::detail
