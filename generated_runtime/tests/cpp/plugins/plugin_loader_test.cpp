// The plugin loader from C++: example plugins load and compute; broken ones are rejected and rolled back.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "vbt/core/error.h"
#include "vbt/dispatch/dispatcher.h"
#include "vbt/plugins/registry.h"

using namespace vbt;

namespace {
std::string plugin(const std::string& name) { return std::string(VBT_PLUGIN_DIR) + "/lib" + name + ".so"; }

std::string load_error(const std::string& name) {
  try {
    plugins::load_library(plugin(name));
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(PluginLoader, ExampleHypotBroadcastsThroughTheIterator) {
  auto names = plugins::load_library(plugin("vbt_example_hypot"));
  ASSERT_EQ(names.size(), 2u);
  ASSERT_TRUE(plugins::has_ext_op("vbt_example_hypot"));
  Tensor a = empty({2, 1}, ScalarType::Float32), b = empty({3}, ScalarType::Float64);
  a.data<float>()[0] = 3.f;
  a.data<float>()[1] = 5.f;
  for (int i = 0; i < 3; ++i) b.data<double>()[i] = 4.0 + 8.0 * i;
  Tensor r = plugins::call_ext_op("vbt_example_hypot", {a, b});
  ASSERT_EQ(r.dtype(), ScalarType::Float64);  // float32 with float64 promotes
  ASSERT_EQ(r.sizes(), (Shape{2, 3}));
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      EXPECT_DOUBLE_EQ(r.data<double>()[i * 3 + j], std::hypot(double(a.data<float>()[i]), b.data<double>()[j]));
  // Loading the same library again is a no-op returning the same ops.
  EXPECT_EQ(plugins::load_library(plugin("vbt_example_hypot")), names);
}

TEST(PluginLoader, BrokenPluginsAreRejectedAndRolledBack) {
  EXPECT_NE(load_error("vbt_broken_missing_init").find("vbt_plugin_init"), std::string::npos);
  EXPECT_NE(load_error("vbt_broken_wrong_major").find("major"), std::string::npos);
  EXPECT_NE(load_error("vbt_broken_newer_minor").find("newer"), std::string::npos);
  EXPECT_NE(load_error("vbt_broken_init_fails").find("simulated failure"), std::string::npos);
  EXPECT_FALSE(plugins::has_ext_op("vbt_broken_partial"));
  EXPECT_NE(load_error("vbt_broken_duplicate_op").find("duplicate op name"), std::string::npos);
  EXPECT_FALSE(plugins::has_ext_op("vbt_broken_dup"));
  EXPECT_NE(load_error("vbt_broken_duplicate_builtin").find("built-in"), std::string::npos);
  EXPECT_FALSE(plugins::has_ext_op("vbt_broken_before_builtin"));
  for (const char* op : {"vbt_broken_partial", "vbt_broken_dup", "vbt_broken_before_builtin"})
    EXPECT_EQ(Dispatcher::get().find_or_null(op), nullptr) << op;
  EXPECT_NE(load_error("does_not_exist").find("cannot load"), std::string::npos);
}

TEST(PluginLoader, SchemaParserRejectsBadSchemas) {
  EXPECT_THROW(plugins::ExtSchema::parse("f(Tensor x)"), Error);
  EXPECT_THROW(plugins::ExtSchema::parse("f(Tensor x, Tensor x) -> Tensor"), Error);
  EXPECT_THROW(plugins::ExtSchema::parse("f(str s) -> Tensor"), Error);
  EXPECT_THROW(plugins::ExtSchema::parse("f(int n=abc) -> Tensor"), Error);
  auto s = plugins::ExtSchema::parse("f(Tensor x, Tensor? y=None, float a=0.5, int n=3, bool b=True) -> Tensor");
  ASSERT_EQ(s.args.size(), 5u);
  EXPECT_TRUE(s.args[1].optional);
  EXPECT_EQ(std::get<double>(s.args[2].default_value), 0.5);
  EXPECT_EQ(std::get<int64_t>(s.args[3].default_value), 3);
  EXPECT_EQ(std::get<bool>(s.args[4].default_value), true);
}

// ABI 1.2: Tensor[] arguments, `-> ()`, `ns::name` op names.
TEST(PluginLoader, SchemaParserTakesTensorListsNoneReturnsAndNamespaces) {
  auto s = plugins::ExtSchema::parse("fabric::ring_all_reduce(Tensor[] tensors) -> ()");
  EXPECT_EQ(s.name, "fabric::ring_all_reduce");
  EXPECT_TRUE(s.returns_none);
  ASSERT_EQ(s.args.size(), 1u);
  EXPECT_EQ(s.args[0].type, plugins::ExtArgType::TensorList);
  EXPECT_FALSE(plugins::ExtSchema::parse("f(Tensor[] xs, float a=1.0) -> Tensor").returns_none);
  EXPECT_THROW(plugins::ExtSchema::parse("f(Tensor[]? xs) -> Tensor"), Error);
  EXPECT_THROW(plugins::ExtSchema::parse("f(Tensor[] xs=None) -> Tensor"), Error);
  EXPECT_THROW(plugins::ExtSchema::parse("f(int[] xs) -> Tensor"), Error);
  EXPECT_THROW(plugins::ExtSchema::parse("a::b::c(Tensor x) -> Tensor"), Error);
  EXPECT_THROW(plugins::ExtSchema::parse("f(Tensor x) -> (Tensor, Tensor)"), Error);
}

TEST(PluginLoader, TensorListOpsRunThroughTheDispatcher) {
  plugins::load_library(plugin("vbt_list_ok"));
  Tensor a = call_tensor_op("full", {Shape{3}, Scalar(1.5)}), b = call_tensor_op("full", {Shape{3}, Scalar(2.0)});
  Tensor r = call_tensor_op("vbt_list_sum", {TensorList{a, b, b}, 2.0});
  EXPECT_FLOAT_EQ(r.data<float>()[2], 11.f);
  Value none = call_op("vbt_list::scale_", {TensorList{a}, 4.0});  // -> (): mutates, returns None
  EXPECT_TRUE(std::holds_alternative<std::monostate>(none));
  EXPECT_FLOAT_EQ(a.data<float>()[0], 6.f);
  EXPECT_FALSE(plugins::call_ext_op("vbt_list::scale_", {std::vector<Tensor>{a}, 0.5}).defined());
  EXPECT_FLOAT_EQ(a.data<float>()[1], 3.f);
  // the ring plugin's CPU kernel, three ranks of 5 elements (short last chunk)
  plugins::load_library(plugin("vbt_fabric_ring_allreduce"));
  TensorList ranks;
  for (int k = 1; k <= 3; ++k) ranks.push_back(call_tensor_op("full", {Shape{5}, Scalar(double(k))}));
  call_op("fabric::ring_all_reduce", {ranks});
  for (const Tensor& t : ranks)
    for (int i = 0; i < 5; ++i) EXPECT_FLOAT_EQ(t.data<float>()[i], 6.f);
  EXPECT_NE(load_error("vbt_list_minor3").find("newer than this runtime's 1.2"), std::string::npos);
  EXPECT_NE(load_error("vbt_list_multi_device_cpu").find("VBT_KERNEL_MULTI_DEVICE needs a kDLCUDA kernel"),
            std::string::npos);
}

TEST(PluginLoader, PluginOpsAreDispatcherOpsAndOverridesRollBack) {
  plugins::load_library(plugin("vbt_example_hypot"));
  const OpHandle* h = Dispatcher::get().find_or_null("vbt_example_hypot");
  ASSERT_NE(h, nullptr);
  EXPECT_TRUE(h->runtime);
  Tensor a = call_tensor_op("full", {Shape{2}, Scalar(3.0)}), b = call_tensor_op("full", {Shape{2}, Scalar(4.0)});
  Tensor r = call_tensor_op("vbt_example_hypot", {a, b});
  EXPECT_FLOAT_EQ(r.data<float>()[1], 5.f);

  auto mul_first = [&] { return call_tensor_op("mul", {a, b}).data<float>()[0]; };
  EXPECT_FLOAT_EQ(mul_first(), 12.f);
  const size_t n = Dispatcher::get().ops().size();
  EXPECT_NE(load_error("vbt_override_init_fails").find("simulated failure"), std::string::npos);
  EXPECT_FLOAT_EQ(mul_first(), 12.f);  // the override never became visible
  EXPECT_EQ(Dispatcher::get().ops().size(), n);
  std::string ok = plugin("vbt_override_ok");
  plugins::load_library(ok);
  EXPECT_FLOAT_EQ(mul_first(), 13.f);  // the test override computes self * other + 1
  EXPECT_EQ(Dispatcher::get().ops().size(), n + 1);
  EXPECT_TRUE(plugins::unload_library(ok));
  EXPECT_FLOAT_EQ(mul_first(), 12.f);
  EXPECT_EQ(Dispatcher::get().ops().size(), n);
  EXPECT_EQ(Dispatcher::get().find_or_null("vbt_override_probe"), nullptr);
}

#ifdef VBT_PLUGINS_TEST_AUTOGRAD
#include "vbt/autograd/autograd.h"

// Note [Run-time ops in the autograd layer]: a plugin op on an input that requires grad records a node;
// backward through it raises NotImplemented naming the op instead of silently losing the history.
TEST(PluginLoader, PluginOpOutputsKeepHistoryAndBackwardNamesTheOp) {
  autograd::install();
  plugins::load_library(plugin("vbt_example_axpby"));
  Tensor x = empty({3}, ScalarType::Float32), y = empty({3}, ScalarType::Float32);
  for (int i = 0; i < 3; ++i) x.data<float>()[i] = y.data<float>()[i] = float(i);
  autograd::set_requires_grad(x, true);
  Tensor r = call_tensor_op("vbt_example_axpby", {x, y, 2.0, 1.0});
  EXPECT_FLOAT_EQ(r.data<float>()[2], 6.f);
  ASSERT_TRUE(autograd::requires_grad(r));
  ASSERT_NE(autograd::grad_fn(r), nullptr);
  EXPECT_NE(autograd::grad_fn(r)->name().find("vbt_example_axpby"), std::string::npos);
  try {
    autograd::backward({call_tensor_op("sum", {r})}, {}, false, false);
    ADD_FAILURE() << "backward through a plugin op without a derivative must raise";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::NotImplemented);
    EXPECT_NE(std::string(e.what()).find("derivative for 'vbt_example_axpby' is not implemented"), std::string::npos)
        << e.what();
  }
  // No input requires grad: no history.
  EXPECT_FALSE(autograd::requires_grad(call_tensor_op("vbt_example_axpby", {y, y, 1.0, 1.0})));
}
#endif
