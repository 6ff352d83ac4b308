// The process-wide default CPU generator.
#include "vbt/core/generator.h"

namespace vbt {
const GeneratorPtr& default_generator() {
  static GeneratorPtr gen = std::make_shared<Generator>();
  return gen;
}
}  // namespace vbt
