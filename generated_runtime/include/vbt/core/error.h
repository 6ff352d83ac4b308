// Two kinds of checks (see Note [Error kinds]):
//  * VBT_CHECK_*(cond, msg...) -- a USER error (bad shape, bad dim, bad index, bad dtype). Throws
//    vbt::Error carrying an ErrorKind that the Python binding maps to ValueError / IndexError /
//    TypeError / RuntimeError / NotImplementedError. Messages name the op, the operand and shapes.
//  * VBT_INTERNAL_ASSERT(cond) -- an internal invariant. Aborts with file and line; never caught.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace vbt {

// Note [Error kinds]
// The kinds follow what PyTorch raises for the same mistake, so that code catching e.g.
// IndexError behaves the same under torch and vibetensor.
enum class ErrorKind { Runtime, Value, Index, Type, NotImplemented };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string msg) : std::runtime_error(std::move(msg)), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

namespace detail {
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
[[noreturn]] void internal_assert_fail(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace detail

// Warnings (torch's TORCH_WARN): the Python binding installs a handler that raises a Python
// UserWarning (and may throw when warnings are errors); the default handler prints to stderr.
using WarningHandler = void (*)(const std::string& msg);
void set_warning_handler(WarningHandler h);  // nullptr restores the default
void warn(const std::string& msg);

template <typename... Args>
[[noreturn]] void throw_error(ErrorKind kind, const Args&... args) {
  throw Error(kind, detail::str_cat(args...));
}

}  // namespace vbt

#define VBT_CHECK_KIND(kind, cond, ...) \
  do { if (!(cond)) ::vbt::throw_error(kind, __VA_ARGS__); } while (0)
#define VBT_CHECK(cond, ...) VBT_CHECK_KIND(::vbt::ErrorKind::Runtime, cond, __VA_ARGS__)
#define VBT_CHECK_VALUE(cond, ...) VBT_CHECK_KIND(::vbt::ErrorKind::Value, cond, __VA_ARGS__)
#define VBT_CHECK_INDEX(cond, ...) VBT_CHECK_KIND(::vbt::ErrorKind::Index, cond, __VA_ARGS__)
#define VBT_CHECK_TYPE(cond, ...) VBT_CHECK_KIND(::vbt::ErrorKind::Type, cond, __VA_ARGS__)
#define VBT_NOT_IMPLEMENTED(...) ::vbt::throw_error(::vbt::ErrorKind::NotImplemented, __VA_ARGS__)
#define VBT_INTERNAL_ASSERT(cond, ...)                                                       \
  do {                                                                                       \
    if (!(cond))                                                                             \
      ::vbt::detail::internal_assert_fail(__FILE__, __LINE__, #cond,                         \
                                          ::vbt::detail::str_cat("" __VA_OPT__(, ) __VA_ARGS__)); \
  } while (0)
