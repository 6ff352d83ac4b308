// GoogleTest cases for the autograd engine (dependency counting, accumulation, retain_graph,
// saved-tensor version checks, grad mode, autograd::grad, hooks, custom nodes).
#include <gtest/gtest.h>

#include <cmath>

#include "vbt/autograd/autograd.h"
#include "vbt/core/error.h"
#include "vbt/dispatch/dispatcher.h"

using namespace vbt;
namespace ag = vbt::autograd;

namespace {

Tensor from(std::vector<float> v, Shape shape) {
  Tensor t = empty(shape, ScalarType::Float32);
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = v[i];
  return t;
}
Tensor leaf(std::vector<float> v, Shape shape) {
  Tensor t = from(std::move(v), std::move(shape));
  ag::set_requires_grad(t, true);
  return t;
}
float at(const Tensor& t, int64_t i) {
  Tensor c = call_tensor_op("contiguous", {t});
  return c.data<float>()[i];
}
Tensor grad_of(const Tensor& t) { return ag::get_meta(t)->grad; }

class AutogradEngine : public ::testing::Test {
 protected:
  void SetUp() override { ag::install(); }
};

TEST_F(AutogradEngine, MulSumGradient) {
  Tensor x = leaf({1, 2, 3}, {3}), y = leaf({4, 5, 6}, {3});
  Tensor z = call_tensor_op("sum", {call_tensor_op("mul", {x, y})});
  EXPECT_TRUE(ag::requires_grad(z));
  EXPECT_FALSE(ag::is_leaf(z));
  ag::backward({z}, {}, false, false);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FLOAT_EQ(at(grad_of(x), i), at(y, i));
    EXPECT_FLOAT_EQ(at(grad_of(y), i), at(x, i));
  }
}

TEST_F(AutogradEngine, DiamondAccumulatesAndLeafGradAccumulatesAcrossCalls) {
  // z = sum(x*x + x) -> dz/dx = 2x + 1; the graph has a diamond on x.
  Tensor x = leaf({1, -2}, {2});
  auto f = [&] {
    Tensor a = call_tensor_op("mul", {x, x});
    return call_tensor_op("sum", {call_tensor_op("add", {a, x})});
  };
  ag::backward({f()}, {}, false, false);
  EXPECT_FLOAT_EQ(at(grad_of(x), 0), 3.0f);
  EXPECT_FLOAT_EQ(at(grad_of(x), 1), -3.0f);
  ag::backward({f()}, {}, false, false);  // accumulates
  EXPECT_FLOAT_EQ(at(grad_of(x), 0), 6.0f);
}

TEST_F(AutogradEngine, BackwardTwiceWithoutRetainGraphRaises) {
  Tensor x = leaf({1, 2}, {2});
  Tensor z = call_tensor_op("sum", {call_tensor_op("exp", {x})});
  ag::backward({z}, {}, true, false);
  ag::backward({z}, {}, false, false);
  try {
    ag::backward({z}, {}, false, false);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("backward through the graph a second time"), std::string::npos);
  }
}

TEST_F(AutogradEngine, NonScalarWithoutGradientRaises) {
  Tensor x = leaf({1, 2}, {2});
  Tensor y = call_tensor_op("mul", {x, x});
  EXPECT_THROW(ag::backward({y}, {}, false, false), Error);
}

TEST_F(AutogradEngine, InplaceChangeOfSavedTensorRaises) {
  Tensor x = leaf({1, 2}, {2});
  Tensor y = call_tensor_op("exp", {x});      // saves its result
  Tensor z = call_tensor_op("sum", {call_tensor_op("mul", {y, y})});
  {
    ag::AutoGradMode no_grad(false);
    call_op("add", {y, y, Scalar(int64_t(1)), y});  // y += y in place
  }
  try {
    ag::backward({z}, {}, false, false);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("modified by an inplace operation"), std::string::npos);
  }
}

TEST_F(AutogradEngine, NoGradModeRecordsNothing) {
  Tensor x = leaf({1, 2}, {2});
  Tensor y;
  {
    ag::AutoGradMode no_grad(false);
    y = call_tensor_op("mul", {x, x});
  }
  EXPECT_FALSE(ag::requires_grad(y));
  EXPECT_TRUE(ag::is_leaf(y));
}

TEST_F(AutogradEngine, GradCapturesWithoutTouchingDotGrad) {
  Tensor x = leaf({3}, {1});
  Tensor y = call_tensor_op("sum", {call_tensor_op("mul", {x, call_tensor_op("mul", {x, x})})});  // x^3
  std::vector<Tensor> g = ag::grad({y}, {}, {x}, false, false, false);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_FLOAT_EQ(at(g[0], 0), 27.0f);  // 3x^2
  EXPECT_FALSE(grad_of(x).defined());
}

TEST_F(AutogradEngine, CreateGraphGivesSecondDerivative) {
  Tensor x = leaf({2}, {1});
  Tensor y = call_tensor_op("sum", {call_tensor_op("mul", {x, call_tensor_op("mul", {x, x})})});
  std::vector<Tensor> g = ag::grad({y}, {}, {x}, true, true, false);
  EXPECT_TRUE(ag::requires_grad(g[0]));
  std::vector<Tensor> g2 = ag::grad({call_tensor_op("sum", {g[0]})}, {}, {x}, false, false, false);
  EXPECT_FLOAT_EQ(at(g2[0], 0), 12.0f);  // 6x
}

TEST_F(AutogradEngine, HookReplacesGradient) {
  Tensor x = leaf({1, 1}, {2});
  Tensor y = call_tensor_op("mul", {x, x});
  ag::register_hook(y, [](const Tensor& g) { return call_tensor_op("mul", {g, g}); });  // g -> g*g with g = 3
  Tensor z = call_tensor_op("sum", {call_tensor_op("mul", {y, from({3, 3}, {2})})});
  ag::backward({z}, {}, false, false);
  EXPECT_FLOAT_EQ(at(grad_of(x), 0), 9.0f * 2.0f);
}

TEST_F(AutogradEngine, CustomNodeAndBroadcastReduction) {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor b = leaf({10}, {1});
  Tensor s = call_tensor_op("add", {x, b});  // b broadcasts: its grad sums
  Tensor out = call_tensor_op("clone", {s});
  {
    ag::AutoGradMode no_grad(false);
    out = call_tensor_op("clone", {s});
  }
  ag::make_custom_node("TimesTwo", {s}, {out}, [](std::vector<Tensor>&& g) {
    return std::vector<Tensor>{call_tensor_op("mul", {g[0], from({2, 2, 2}, {3})})};
  });
  ag::backward({call_tensor_op("sum", {out})}, {}, false, false);
  EXPECT_FLOAT_EQ(at(grad_of(x), 1), 2.0f);
  EXPECT_FLOAT_EQ(at(grad_of(b), 0), 6.0f);
}

TEST_F(AutogradEngine, LeafInPlaceRaises) {
  Tensor x = leaf({1, 2}, {2});
  EXPECT_THROW(call_op("add", {x, x, Scalar(int64_t(1)), x}), Error);
}

TEST_F(AutogradEngine, InplaceOnViewRebasesBaseHistory) {
  // y = x * 2; y[1] *= w (select view, out= in place); loss = sum(y) -> dx = [2, 2w, 2], dw = 2*x[1]
  Tensor x = leaf({1, 3, 5}, {3}), w = leaf({4}, {1});
  Tensor y = call_tensor_op("mul", {x, from({2, 2, 2}, {3})});
  Tensor v = call_tensor_op("narrow", {y, int64_t(0), int64_t(1), int64_t(1)});
  call_op("mul", {v, w, v});
  EXPECT_EQ(ag::grad_fn(y)->name(), "CopySlices");
  ag::backward({call_tensor_op("sum", {y})}, {}, false, false);
  EXPECT_FLOAT_EQ(at(grad_of(x), 0), 2.0f);
  EXPECT_FLOAT_EQ(at(grad_of(x), 1), 8.0f);
  EXPECT_FLOAT_EQ(at(grad_of(x), 2), 2.0f);
  EXPECT_FLOAT_EQ(at(grad_of(w), 0), 6.0f);
}

TEST_F(AutogradEngine, StaleViewRegeneratesFromBase) {
  // v is a view of y taken before y[0] is overwritten by z: v's gradient must reach z.
  Tensor x = leaf({1, 1}, {2}), z = leaf({7}, {1});
  Tensor y = call_tensor_op("mul", {x, from({1, 1}, {2})});
  Tensor v = call_tensor_op("view", {y, Shape{2}});
  Tensor first = call_tensor_op("narrow", {y, int64_t(0), int64_t(0), int64_t(1)});
  call_op("copy_", {first, z});
  ag::backward({call_tensor_op("sum", {call_tensor_op("mul", {v, from({3, 5}, {2})})})}, {}, false, false);
  EXPECT_FLOAT_EQ(at(grad_of(z), 0), 3.0f);
  EXPECT_FLOAT_EQ(at(grad_of(x), 0), 0.0f);
  EXPECT_FLOAT_EQ(at(grad_of(x), 1), 5.0f);
}

TEST_F(AutogradEngine, DeepGraphFreesWithoutRecursion) {
  Tensor x = leaf({1}, {1});
  Tensor y = x;
  for (int i = 0; i < 300000; ++i) y = call_tensor_op("neg", {y});
  y = Tensor();  // would overflow the stack with recursive destruction
  SUCCEED();
}

}  // namespace
