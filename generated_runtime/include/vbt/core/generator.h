// Generator: the source of random numbers for CPU random ops (rand, randn, normal_, dropout...).
// A process-wide default generator is seeded by manual_seed; ops take an optional Generator.
// Engine: std::mt19937_64. Streams are deterministic per seed but differ from PyTorch's.
// get_state()/set_state(): the whole state (engine + initial seed) as bytes (a text serialization of the
// engine after a versioned header), so restoring a state replays the same numbers.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>

namespace vbt {

class Generator {
 public:
  explicit Generator(uint64_t seed = 67280421310721ULL) : engine_(seed), seed_(seed) {}
  void manual_seed(uint64_t seed) { std::lock_guard<std::mutex> g(mu_); engine_.seed(seed); seed_ = seed; }
  uint64_t initial_seed() const { return seed_; }
  uint64_t next_u64() { std::lock_guard<std::mutex> g(mu_); return engine_(); }
  // Uniform double in [0, 1) with 53 random bits.
  double next_double() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
  std::string get_state();
  // Throws a RuntimeError (state unchanged) when `state` is not a state get_state() produced.
  void set_state(const std::string& state);
  std::mutex& mutex() { return mu_; }
  std::mt19937_64& engine() { return engine_; }  // callers must hold mutex()

 private:
  std::mt19937_64 engine_;
  uint64_t seed_;
  std::mutex mu_;
};

using GeneratorPtr = std::shared_ptr<Generator>;
const GeneratorPtr& default_generator();

}  // namespace vbt
