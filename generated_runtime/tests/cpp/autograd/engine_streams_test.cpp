// The engine's stream ordering (Note [Autograd streams] in src/vbt/autograd/engine.cpp), checked on the
// CPU: fake StreamHooks registered for DeviceType::CPU keep a current stream per thread (a small integer)
// and log every cross-stream wait and record_stream the engine asks for.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "vbt/autograd/autograd.h"
#include "vbt/autograd/streams.h"
#include "vbt/dispatch/dispatcher.h"

using namespace vbt;
namespace ag = vbt::autograd;

namespace {

class FakeStreams final : public ag::StreamHooks {
 public:
  ag::StreamRef current_stream(Device device) override { return ref(current); }
  void set_current_stream(const ag::StreamRef& stream) override { current = stream.id; }
  void wait_stream(const ag::StreamRef& consumer, const ag::StreamRef& producer) override {
    EXPECT_NE(consumer.id, producer.id);
    log.push_back("wait " + std::to_string(consumer.id) + "<-" + std::to_string(producer.id));
  }
  void record_stream(const Tensor& t, const ag::StreamRef& stream) override {
    log.push_back("record " + std::to_string(stream.id));
    recorded.push_back(t.impl()->storage()->data_ptr.data);
  }
  static ag::StreamRef ref(uint64_t id) {
    ag::StreamRef r;
    r.device = Device{};
    r.id = id;
    r.has = true;
    return r;
  }
  uint64_t current = 0;
  std::vector<std::string> log;
  std::vector<void*> recorded;
};

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
using Log = std::vector<std::string>;

class AutogradStreams : public ::testing::Test {
 protected:
  void SetUp() override {
    ag::install();
    ag::set_stream_hooks(DeviceType::CPU, &fake);
  }
  void TearDown() override { ag::set_stream_hooks(DeviceType::CPU, nullptr); }
  FakeStreams fake;
};

TEST(AutogradStreamsOff, NoHooksNoStream) {
  ag::install();
  EXPECT_FALSE(ag::any_stream_hooks());
  Tensor x = leaf({1, 2}, {2});
  Tensor y = call_tensor_op("mul", {x, x});
  EXPECT_FALSE(ag::grad_fn(y)->stream.defined());
  EXPECT_FALSE(ag::current_stream_of(Device{}).defined());
}

TEST_F(AutogradStreams, NodesRecordTheirForwardStream) {
  Tensor x = leaf({1, 2}, {2});
  fake.current = 1;
  Tensor y = call_tensor_op("mul", {x, from({2, 2}, {2})});
  fake.current = 2;
  Tensor z = call_tensor_op("sum", {y});
  fake.current = 0;
  ASSERT_TRUE(ag::grad_fn(y)->stream.defined());
  EXPECT_EQ(ag::grad_fn(y)->stream.id, 1u);
  EXPECT_EQ(ag::grad_fn(z)->stream.id, 2u);
  EXPECT_EQ(ag::gradient_edge(x).fn->stream.id, 1u);  // the leaf's accumulator: made at its first use
}

TEST_F(AutogradStreams, CrossStreamGradientsWaitAndRecord) {
  Tensor x = leaf({1, 2}, {2});
  fake.current = 1;
  Tensor y = call_tensor_op("mul", {x, from({3, 3}, {2})});
  fake.current = 2;
  Tensor z = call_tensor_op("sum", {y});
  fake.current = 0;
  ag::backward({z}, {}, false, false);
  // root (caller stream 0) -> SumBackward on 2 -> MulBackward on 1 -> AccumulateGrad on 1; then the caller
  // waits for both streams and takes the leaf's .grad over.
  EXPECT_EQ(fake.log, (Log{"wait 2<-0", "record 2", "wait 1<-2", "record 1", "wait 0<-2", "wait 0<-1", "record 0"}));
  ASSERT_EQ(fake.recorded.size(), 3u);
  EXPECT_EQ(fake.recorded.back(), grad_of(x).impl()->storage()->data_ptr.data);
  EXPECT_EQ(fake.current, 0u);  // the caller's stream is current again
  EXPECT_FLOAT_EQ(at(grad_of(x), 0), 3.0f);
  EXPECT_FLOAT_EQ(at(grad_of(x), 1), 3.0f);
}

TEST_F(AutogradStreams, OneStreamNeedsNoSync) {
  fake.current = 5;
  Tensor x = leaf({1, 2}, {2});
  Tensor z = call_tensor_op("sum", {call_tensor_op("mul", {x, x})});
  ag::backward({z}, {}, false, false);
  EXPECT_TRUE(fake.log.empty());
  EXPECT_FLOAT_EQ(at(grad_of(x), 1), 4.0f);
}

TEST_F(AutogradStreams, BackwardIsOrderedWithTheCallersStream) {
  // Forward on stream 0, backward() called on stream 4: the root gradient is made on 4, the graph runs on 0.
  Tensor x = leaf({1, 2}, {2});
  Tensor z = call_tensor_op("sum", {call_tensor_op("mul", {x, x})});
  fake.current = 4;
  ag::backward({z}, {}, false, false);
  EXPECT_EQ(fake.log, (Log{"wait 0<-4", "record 0", "wait 4<-0", "record 4"}));
  EXPECT_EQ(fake.current, 4u);
}

TEST_F(AutogradStreams, NodeRunsOnItsForwardStream) {
  Tensor x = leaf({1, 2, 3}, {3});
  fake.current = 7;
  Tensor s = call_tensor_op("mul", {x, from({1, 1, 1}, {3})});
  Tensor out;
  {
    ag::AutoGradMode no_grad(false);
    out = call_tensor_op("clone", {s});
  }
  std::vector<uint64_t> seen;
  fake.current = 3;
  ag::make_custom_node("Observe", {s}, {out}, [&](std::vector<Tensor>&& g) {
    seen.push_back(fake.current);
    return std::vector<Tensor>{g[0]};
  });
  fake.current = 0;
  ag::backward({call_tensor_op("sum", {out})}, {}, false, false);
  EXPECT_EQ(seen, (std::vector<uint64_t>{3}));
  EXPECT_EQ(fake.current, 0u);
  EXPECT_FLOAT_EQ(at(grad_of(x), 2), 1.0f);
}

TEST_F(AutogradStreams, SecondGradientIsAddedAfterWaitingForItsProducer) {
  // x feeds two branches on streams 1 and 2; its accumulator (made on 1, x's first use) waits for 2.
  Tensor x = leaf({1, 2}, {2});
  fake.current = 1;
  Tensor a = call_tensor_op("mul", {x, from({2, 2}, {2})});
  fake.current = 2;
  Tensor b = call_tensor_op("mul", {x, from({5, 5}, {2})});
  fake.current = 0;
  Tensor z = call_tensor_op("sum", {call_tensor_op("add", {a, b})});
  ag::backward({z}, {}, false, false);
  int waits_1_on_2 = 0;
  for (const std::string& e : fake.log) waits_1_on_2 += e == "wait 1<-2";
  EXPECT_EQ(waits_1_on_2, 1);
  EXPECT_EQ(fake.log.back(), "record 0");  // x.grad handed to the caller's stream
  EXPECT_FLOAT_EQ(at(grad_of(x), 0), 7.0f);
}

TEST_F(AutogradStreams, GradCapturesAreHandedToTheCaller) {
  Tensor x = leaf({1, 2}, {2});
  fake.current = 1;
  Tensor z = call_tensor_op("sum", {call_tensor_op("mul", {x, x})});
  fake.current = 0;
  std::vector<Tensor> g = ag::grad({z}, {}, {x}, false, false, false);
  EXPECT_EQ(fake.log, (Log{"wait 1<-0", "record 1", "wait 0<-1", "record 0"}));
  EXPECT_FLOAT_EQ(at(g[0], 1), 4.0f);
  EXPECT_FALSE(ag::get_meta(x)->grad.defined());
}

}  // namespace
