// TensorIterator: broadcasting, promotion, coalescing, zero-size and out= checks; parallel_for's chunking.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "vbt/cpu/parallel.h"
#include "vbt/cpu/tensor_iterator.h"
#include "vbt/dispatch/dispatcher.h"

using namespace vbt;

TEST(TensorIterator, BroadcastShapeAndCoalescing) {
  Tensor a = empty({4, 1, 5}, ScalarType::Float32);
  Tensor b = empty({3, 1}, ScalarType::Float32);
  TensorIterator it = TensorIteratorConfig("add").add_output(Tensor()).add_input(a).add_input(b).build();
  EXPECT_EQ(it.broadcast_shape(), (Shape{4, 3, 5}));
  EXPECT_EQ(it.numel(), 60);
  // contiguous inputs of the same shape coalesce into one dim
  Tensor c = empty({2, 3, 4}, ScalarType::Float32);
  TensorIterator it2 = TensorIteratorConfig("add").add_output(Tensor()).add_input(c).add_input(c).build();
  EXPECT_EQ(it2.shape(), (Shape{24}));
}

TEST(TensorIterator, PromotionWithWrappedScalars) {
  Tensor i32 = empty({2}, ScalarType::Int32);
  Tensor wrapped_f = scalar_to_tensor(Scalar(2.5), ScalarType::Float64);
  EXPECT_EQ(result_type({i32, wrapped_f}, {false, true}), ScalarType::Float32);
  Tensor wrapped_i = scalar_to_tensor(Scalar(int64_t(3)), ScalarType::Int64);
  EXPECT_EQ(result_type({i32, wrapped_i}, {false, true}), ScalarType::Int32);
  Tensor zero_dim_f64 = empty({}, ScalarType::Float64);
  Tensor f16 = empty({2}, ScalarType::Float16);
  EXPECT_EQ(result_type({f16, zero_dim_f64}, {false, false}), ScalarType::Float16);
  EXPECT_EQ(result_type({i32, zero_dim_f64}, {false, false}), ScalarType::Float64);
}

TEST(TensorIterator, MismatchedShapesNameTheOp) {
  Tensor a = empty({2, 3}, ScalarType::Float32), b = empty({4}, ScalarType::Float32);
  try {
    TensorIteratorConfig("mul").add_output(Tensor()).add_input(a).add_input(b).build();
    FAIL();
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("mul"), std::string::npos);
    EXPECT_NE(msg.find("[2, 3]"), std::string::npos);
  }
}

TEST(TensorIterator, NonContiguousAndZeroSize) {
  Tensor m = call_tensor_op("arange", {Scalar(int64_t(0)), Scalar(int64_t(6))});
  m = call_tensor_op("view", {m, Shape{2, 3}});
  Tensor mt = call_tensor_op("t", {m});
  Tensor r = call_tensor_op("add", {mt, mt});
  EXPECT_EQ(r.sizes(), (Shape{3, 2}));
  const int64_t* p = r.data<int64_t>();
  EXPECT_EQ(p[0], 0); EXPECT_EQ(p[1], 6); EXPECT_EQ(p[2], 2); EXPECT_EQ(p[5], 10);
  Tensor z = call_tensor_op("zeros", {Shape{0, 3}});
  Tensor rz = call_tensor_op("mul", {z, z});
  EXPECT_EQ(rz.sizes(), (Shape{0, 3}));
}

TEST(TensorIterator, ParallelLoopMatchesSerial) {
  int64_t n = 3 * kParallelGrain + 7;
  Tensor a = call_tensor_op("arange", {Scalar(int64_t(0)), Scalar(n)});
  Tensor s = call_tensor_op("sum", {call_tensor_op("mul", {a, Scalar(int64_t(2))})});
  EXPECT_EQ(*s.data<int64_t>(), n * (n - 1));
}

TEST(TensorIterator, InplaceCannotBroadcastOutput) {
  Tensor a = call_tensor_op("zeros", {Shape{3}});
  Tensor b = call_tensor_op("zeros", {Shape{2, 3}});
  EXPECT_THROW(call_op("add", {a, b, Scalar(int64_t(1)), a}), Error);
}

// parallel_for: a range of at most one grain runs on the calling thread in one piece (it used to be split in two
// and run on two threads, waking the pool for a 4-element sum); larger ranges are cut into pieces of at least
// the grain that cover the range exactly once.
TEST(ParallelFor, OneGrainRunsOnTheCallingThreadLargerRangesSplitByGrain) {
  const int saved = vbt::get_num_threads();
  vbt::set_num_threads(2);
  const auto caller = std::this_thread::get_id();
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> pieces;
  std::vector<std::thread::id> who;
  auto record = [&](int64_t b, int64_t e) {
    std::lock_guard<std::mutex> g(mu);
    pieces.emplace_back(b, e);
    who.push_back(std::this_thread::get_id());
  };
  for (int64_t n : {1, 7, 100}) {
    pieces.clear();
    who.clear();
    vbt::parallel_for(0, n, 100, record);
    ASSERT_EQ(pieces.size(), 1u) << n;
    EXPECT_EQ(pieces[0], std::make_pair(int64_t(0), n));
    EXPECT_EQ(who[0], caller);
  }
  pieces.clear();
  vbt::parallel_for(0, 1000, 100, record);
  std::sort(pieces.begin(), pieces.end());
  int64_t next = 0;
  for (auto [b, e] : pieces) {
    EXPECT_EQ(b, next);
    EXPECT_GE(e - b, 100);
    next = e;
  }
  EXPECT_EQ(next, 1000);
  vbt::set_num_threads(saved);
}
