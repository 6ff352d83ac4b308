// The process-wide default CPU generator; Generator state save/restore.
#include "vbt/core/generator.h"

#include <sstream>

#include "vbt/core/error.h"

namespace vbt {

namespace {
constexpr const char* kStateHeader = "vbt-mt19937_64-v1";
}

const GeneratorPtr& default_generator() {
  static GeneratorPtr gen = std::make_shared<Generator>();
  return gen;
}

std::string Generator::get_state() {
  std::lock_guard<std::mutex> g(mu_);
  std::ostringstream os;
  os << kStateHeader << ' ' << seed_ << ' ' << engine_;
  return os.str();
}

void Generator::set_state(const std::string& state) {
  std::istringstream is(state);
  std::string header;
  uint64_t seed = 0;
  std::mt19937_64 engine;
  is >> header;
  VBT_CHECK(header == kStateHeader, "set_state: expected a CPU generator state made by get_state() (it starts with '",
            kStateHeader, "'), but got ", state.size(), " bytes that do not");
  is >> seed >> engine;
  VBT_CHECK(!is.fail(), "set_state: the generator state is truncated or corrupt (", state.size(), " bytes)");
  is >> std::ws;
  VBT_CHECK(is.eof(), "set_state: the generator state has trailing bytes (", state.size(), " bytes)");
  std::lock_guard<std::mutex> g(mu_);
  engine_ = engine;
  seed_ = seed;
}

}  // namespace vbt
