// Generator state save/restore: a restored state replays the same numbers; bad states are refused and leave the
// generator unchanged.
#include <gtest/gtest.h>

#include <vector>

#include "vbt/core/error.h"
#include "vbt/core/generator.h"

namespace vbt {
namespace {

std::vector<uint64_t> draw(Generator& g, int n) {
  std::vector<uint64_t> v;
  for (int i = 0; i < n; ++i) v.push_back(g.next_u64());
  return v;
}

TEST(Generator, StateRoundTripReplaysTheStream) {
  Generator g(42);
  draw(g, 5);
  std::string st = g.get_state();
  auto first = draw(g, 10);
  EXPECT_NE(draw(g, 10), first);
  g.set_state(st);
  EXPECT_EQ(draw(g, 10), first);
  Generator h(7);
  h.set_state(st);
  EXPECT_EQ(h.initial_seed(), 42u);
  EXPECT_EQ(draw(h, 10), first);
}

TEST(Generator, BadStateIsRefusedAndChangesNothing) {
  Generator g(3), ref(3);
  std::string st = g.get_state();
  EXPECT_THROW(g.set_state("garbage"), Error);
  EXPECT_THROW(g.set_state(st.substr(0, st.size() / 2)), Error);
  EXPECT_THROW(g.set_state(st + " 12"), Error);
  EXPECT_EQ(draw(g, 4), draw(ref, 4));
}

}  // namespace
}  // namespace vbt
