// Dispatcher: schema parsing, defaults, the op table's uniqueness, wrapper layers.
#include <gtest/gtest.h>

#include "vbt/dispatch/dispatcher.h"

using namespace vbt;

TEST(Dispatcher, SchemaParsing) {
  Schema s = Schema::parse("add(Tensor self, Tensor other, *, Scalar alpha=1, Tensor? out=None) -> Tensor");
  ASSERT_EQ(s.args.size(), 4u);
  EXPECT_EQ(s.name, "add");
  EXPECT_EQ(s.args[2].name, "alpha");
  EXPECT_TRUE(s.args[2].kwarg_only);
  EXPECT_TRUE(s.args[3].optional);
  EXPECT_EQ(s.returns, "Tensor");
  Schema r = Schema::parse("roll(Tensor self, int[] shifts, int[] dims=[]) -> Tensor");
  EXPECT_EQ(std::get<Shape>(r.args[2].default_value), Shape{});
}

TEST(Dispatcher, EveryOpHasAKernelAndParses) {
  const auto& ops = Dispatcher::get().ops();
  EXPECT_GT(ops.size(), 100u);
  // Built-in ops only: run-time ops (plugins loaded by other tests) may have boxed kernels only.
  for (size_t i = 0; i < Dispatcher::get().builtin_op_count(); ++i)
    EXPECT_NE(ops[i].kernel_for(DispatchKey::CPU), nullptr) << ops[i].def.name;
}

TEST(Dispatcher, UnknownOpIsUserError) { EXPECT_THROW(Dispatcher::get().find("no_such_op"), Error); }

TEST(Dispatcher, WrapperLayerSeesCallsAndContinues) {
  int seen = 0;
  Dispatcher::get().set_layer(DispatchKey::Autograd, [&](const OpHandle& op, Args& args, const std::function<Value(Args&)>& next) {
    ++seen;
    return next(args);
  });
  Tensor t = call_tensor_op("ones", {Shape{2}});
  Tensor u = call_tensor_op("add", {t, t});
  Dispatcher::get().set_layer(DispatchKey::Autograd, nullptr);
  EXPECT_GE(seen, 2);
  EXPECT_FLOAT_EQ(u.data<float>()[1], 2.0f);
  int before = seen;
  call_tensor_op("ones", {Shape{2}});
  EXPECT_EQ(seen, before);
}

TEST(Dispatcher, LayerReentryLetsALayerCallOpsThroughItself) {
  // The layer replaces "neg" by "add" (x + x); with LayerReentry the layer sees that inner "add", without it not.
  for (bool reenter : {false, true}) {
    std::vector<std::string> seen;
    Dispatcher::get().set_layer(DispatchKey::Autograd, [&](const OpHandle& op, Args& args,
                                                          const std::function<Value(Args&)>& next) -> Value {
      seen.push_back(op.def.name);
      if (std::string(op.def.name) != "neg") return next(args);
      if (!reenter) return call_tensor_op("add", {args.tensor(0), args.tensor(0)});
      LayerReentry again(DispatchKey::Autograd);
      return call_tensor_op("add", {args.tensor(0), args.tensor(0)});
    });
    Tensor t = call_tensor_op("ones", {Shape{3}});
    seen.clear();
    Tensor u = call_tensor_op("neg", {t});
    Tensor after = call_tensor_op("sub", {u, t});  // after the guard the layer sees calls from outside as before
    Dispatcher::get().set_layer(DispatchKey::Autograd, nullptr);
    EXPECT_FLOAT_EQ(u.data<float>()[2], 2.0f);
    EXPECT_FLOAT_EQ(after.data<float>()[0], 1.0f);
    const std::vector<std::string> want =
        reenter ? std::vector<std::string>{"neg", "add", "sub"} : std::vector<std::string>{"neg", "sub"};
    EXPECT_EQ(seen, want) << "reenter=" << reenter;
  }
}

TEST(Dispatcher, MixedDevicesAreRejected) {
  // A tensor that claims to live on CUDA (no CUDA backend here): the device policy must
  // reject the call before any kernel runs.
  auto st = std::make_shared<StorageImpl>();
  st->data_ptr.device = Device{DeviceType::CUDA, 0};
  Tensor fake(std::make_shared<TensorImpl>(st, ScalarType::Float32, Shape{2}, Shape{1}, 0));
  Tensor cpu_t = call_tensor_op("ones", {Shape{2}});
  try {
    call_tensor_op("add", {cpu_t, fake});
    FAIL();
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("same device"), std::string::npos);
    EXPECT_NE(msg.find("cuda:0"), std::string::npos);
  }
}
