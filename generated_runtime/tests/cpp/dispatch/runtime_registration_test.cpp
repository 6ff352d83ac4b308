// Dispatcher run-time registration (Note [Run-time registration]): register_op / remove_op, boxed
// kernels and restoring a built-in's kernel.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "vbt/dispatch/dispatcher.h"

using namespace vbt;

namespace {

Tensor filled(const Shape& shape, double v) {
  return call_tensor_op("full", {shape, Scalar(v)});
}

double item(const Tensor& t) { return std::get<Scalar>(call_op("item", {t})).to_double(); }

// A plain kernel for a run-time op: self * 2 + offset, composed from built-in ops.
Value twice_plus(const Args& args) {
  Tensor two = call_tensor_op("mul", {args.tensor(0), Scalar(2.0)});
  return call_tensor_op("add", {two, Scalar(args.real(1))});
}

}  // namespace

TEST(RuntimeRegistration, RegisterCallAndRemove) {
  Dispatcher& d = Dispatcher::get();
  const size_t n = d.ops().size();
  const OpHandle* first = &d.ops()[0];
  std::string schema = "vbt_test_twice_plus(Tensor self, float offset=0.5) -> Tensor";
  OpDef def{"vbt_test_twice_plus", schema.c_str(), &twice_plus};
  const OpHandle& h = d.register_op(def);
  EXPECT_TRUE(h.runtime);
  EXPECT_EQ(d.ops().size(), n + 1);
  EXPECT_EQ(&d.ops()[0], first);  // built-in handles never move
  EXPECT_EQ(d.find_or_null("vbt_test_twice_plus"), &h);
  EXPECT_EQ(std::string(h.def.schema), schema);
  schema.assign("overwritten");  // the dispatcher owns its copy of the strings
  EXPECT_EQ(std::string(h.def.name), "vbt_test_twice_plus");
  ASSERT_EQ(h.schema.args.size(), 2u);
  EXPECT_EQ(h.schema.args[1].type, ArgType::Float);

  // The default is filled in; 3 * 2 + 0.5 = 6.5, then with an explicit offset.
  EXPECT_DOUBLE_EQ(item(call_tensor_op("sum", {call_tensor_op("vbt_test_twice_plus", {filled({2, 2}, 3.0)})})),
                   4 * 6.5);
  EXPECT_DOUBLE_EQ(item(call_tensor_op("vbt_test_twice_plus", {filled({}, -1.0), 4.0})), 2.0);

  // A duplicate name is an error and changes nothing (also for built-in names).
  EXPECT_THROW(d.register_op(def), Error);
  OpDef builtin{"add", "add(Tensor self, Tensor other) -> Tensor", &twice_plus};
  EXPECT_THROW(d.register_op(builtin), Error);
  EXPECT_EQ(d.ops().size(), n + 1);

  d.remove_op("vbt_test_twice_plus");
  EXPECT_EQ(d.find_or_null("vbt_test_twice_plus"), nullptr);
  EXPECT_EQ(d.ops().size(), n);
  EXPECT_THROW(call_op("vbt_test_twice_plus", {filled({}, 1.0)}), Error);
  EXPECT_THROW(d.remove_op("vbt_test_twice_plus"), Error);  // already gone
  EXPECT_THROW(d.remove_op("add"), Error);                  // built-ins cannot be removed
  EXPECT_NE(d.find_or_null("add"), nullptr);

  // The name is free again.
  const OpHandle& again = d.register_op(OpDef{"vbt_test_twice_plus", "vbt_test_twice_plus(Tensor self, float offset) -> Tensor", &twice_plus});
  EXPECT_DOUBLE_EQ(item(call_tensor_op("vbt_test_twice_plus", {filled({}, 1.0), 1.0})), 3.0);
  (void)again;
  d.remove_op("vbt_test_twice_plus");
}

TEST(RuntimeRegistration, RemoveKeepsLaterOpsReachable) {
  Dispatcher& d = Dispatcher::get();
  d.register_op(OpDef{"vbt_test_a", "vbt_test_a(Tensor self, float offset) -> Tensor", &twice_plus});
  d.register_op(OpDef{"vbt_test_b", "vbt_test_b(Tensor self, float offset) -> Tensor", &twice_plus});
  d.remove_op("vbt_test_a");
  const OpHandle* b = d.find_or_null("vbt_test_b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(std::string(b->def.name), "vbt_test_b");
  EXPECT_DOUBLE_EQ(item(call_tensor_op("vbt_test_b", {filled({}, 2.0), 1.0})), 5.0);
  d.remove_op("vbt_test_b");
  EXPECT_EQ(d.find_or_null("vbt_test_b"), nullptr);
}

TEST(RuntimeRegistration, BoxedKernelOverridesBuiltinAndRestores) {
  Dispatcher& d = Dispatcher::get();
  int calls = 0;
  // Override neg on the CPU with "subtract 1" (observably different from neg).
  BoxedKernel prev = d.set_boxed_kernel("neg", DispatchKey::CPU, [&calls](const OpHandle& op, const Args& args) -> Value {
    ++calls;
    EXPECT_EQ(std::string(op.def.name), "neg");
    return call_tensor_op("sub", {args.tensor(0), Scalar(1.0)});
  });
  EXPECT_FALSE(prev);
  EXPECT_DOUBLE_EQ(item(call_tensor_op("neg", {filled({}, 5.0)})), 4.0);
  EXPECT_EQ(calls, 1);
  BoxedKernel mine = d.set_boxed_kernel("neg", DispatchKey::CPU, std::move(prev));  // restore
  EXPECT_TRUE(mine);
  EXPECT_DOUBLE_EQ(item(call_tensor_op("neg", {filled({}, 5.0)})), -5.0);
  EXPECT_EQ(calls, 1);
  EXPECT_THROW(d.set_boxed_kernel("no_such_op", DispatchKey::CPU, {}), Error);
}

TEST(RuntimeRegistration, SetKernelReturnsThePreviousKernel) {
  Dispatcher& d = Dispatcher::get();
  Kernel original = d.find("neg").def.cpu;
  ASSERT_NE(original, nullptr);
  Kernel prev = d.set_kernel("neg", DispatchKey::CPU, &twice_plus);
  EXPECT_EQ(prev, original);
  Kernel mine = d.set_kernel("neg", DispatchKey::CPU, prev);
  EXPECT_EQ(mine, &twice_plus);
  EXPECT_EQ(d.find("neg").def.cpu, original);
  EXPECT_DOUBLE_EQ(item(call_tensor_op("neg", {filled({}, 5.0)})), -5.0);
}
