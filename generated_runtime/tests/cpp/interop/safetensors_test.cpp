// SafeTensors in C++: round trips, the reference's byte layout, zero-copy mapping, corrupt files.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "vbt/interop/safetensors.h"

using namespace vbt;
using namespace vbt::interop;

namespace {

Tensor iota(const Shape& shape, ScalarType dt) {
  Tensor t = empty(shape, dt);
  VBT_DISPATCH_ALL(dt, "iota", [&]<typename T>() {
    for (int64_t i = 0; i < t.numel(); ++i) t.data<T>()[i] = static_cast<T>(static_cast<float>(i % 7));
  });
  return t;
}

std::string with_header(const std::string& json, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = json.size();
  std::memcpy(out.data(), &n, 8);  // little-endian host (x86-64/aarch64)
  return out + json + data;
}

std::string temp_path(const char* tag) {
  return std::string(::testing::TempDir()) + "vbt_st_" + tag + "_" + std::to_string(::getpid()) + ".safetensors";
}

void expect_value_error(const std::string& image, const std::string& needle) {
  try {
    load_safetensors_bytes(image.data(), image.size(), "<test>");
    ADD_FAILURE() << "no error; expected one mentioning: " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Value);
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("<test>"), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(SafeTensors, MatchesReferenceLayout) {
  // Layout the `safetensors` package produces: dtype rank descending (F32 before BF16 before U8), then name;
  // compact JSON padded with spaces to a multiple of 8.
  NamedTensors ts = {{"x", iota({2}, ScalarType::BFloat16)}, {"y", iota({1}, ScalarType::Float32)},
                     {"w", iota({1}, ScalarType::UInt8)}};
  std::string bytes = save_safetensors_bytes(ts, std::nullopt);
  std::string json =
      R"({"y":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]},)"
      R"("w":{"dtype":"U8","shape":[1],"data_offsets":[8,9]}})";
  ASSERT_EQ(json.size() % 8, 0u);
  EXPECT_EQ(bytes.substr(8, json.size()), json);
  EXPECT_EQ(bytes.size(), 8 + json.size() + 9);
  std::string empty_file = save_safetensors_bytes({}, std::nullopt);
  EXPECT_EQ(empty_file, std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
}

TEST(SafeTensors, RoundTripsEveryDtypeAndMetadata) {
  NamedTensors ts;
  for (int i = 0; i < kNumScalarTypes; ++i) {
    auto dt = static_cast<ScalarType>(i);
    ts.emplace_back(std::string("t_") + dtype_name(dt), iota({3, 2}, dt));
  }
  ts.emplace_back("scalar", iota({}, ScalarType::Float64));
  ts.emplace_back("empty", iota({0, 4}, ScalarType::Int32));
  SafeTensorsMetadata md{{"format", "pt"}, {"note", "quote\" \xC3\xA9"}};
  std::string bytes = save_safetensors_bytes(ts, md);
  SafeTensorsContents back = load_safetensors_bytes(bytes.data(), bytes.size());
  ASSERT_EQ(back.tensors.size(), ts.size());
  EXPECT_EQ(back.metadata, md);
  for (const auto& [name, t] : ts) {
    auto it = std::find_if(back.tensors.begin(), back.tensors.end(), [&](auto& p) { return p.first == name; });
    ASSERT_NE(it, back.tensors.end()) << name;
    EXPECT_EQ(it->second.dtype(), t.dtype());
    EXPECT_EQ(it->second.sizes(), t.sizes());
    EXPECT_EQ(std::memcmp(it->second.data_ptr(), t.data_ptr(), t.numel() * itemsize(t.dtype())), 0) << name;
  }
}

TEST(SafeTensors, SavesNonContiguousViewsAsTheirContents) {
  Tensor base = iota({4, 6}, ScalarType::Int32);
  Tensor view = make_view(base, {3, 2}, {6, 3}, 7);  // base[1:4, 1::3]
  std::string bytes = save_safetensors_bytes({{"v", view}}, std::nullopt);
  auto back = load_safetensors_bytes(bytes.data(), bytes.size());
  const int32_t* p = back.tensors[0].second.data<int32_t>();
  const int32_t* b = base.data<int32_t>();
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 2; ++c) EXPECT_EQ(p[r * 2 + c], b[7 + r * 6 + c * 3]);
}

TEST(SafeTensors, FileLoadIsZeroCopyAndCopyOnWrite) {
  std::string path = temp_path("cow");
  save_safetensors_file({{"a", iota({1000}, ScalarType::Float32)}}, std::nullopt, path);
  std::string before;
  {
    std::ifstream f(path, std::ios::binary);
    before.assign(std::istreambuf_iterator<char>(f), {});
  }
  {
    SafeTensorsContents c = load_safetensors_file(path);
    Tensor a = c.tensors[0].second;
    c = {};
    EXPECT_EQ(a.data<float>()[3], 3.0f);  // the mapping outlives the contents struct
    a.data<float>()[3] = 42.0f;           // private mapping: the file must not change
  }
  std::ifstream f(path, std::ios::binary);
  std::string after(std::istreambuf_iterator<char>(f), {});
  EXPECT_EQ(before, after);
  std::remove(path.c_str());
  EXPECT_THROW(load_safetensors_file(path), std::system_error);
}

TEST(SafeTensors, MisalignedDataIsCopied) {
  // A U8 tensor of 1 byte before an F32 puts the F32 at an odd buffer offset; the loader must copy it.
  std::string json = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}})";
  float v = 2.5f;
  std::string data(1, '\x07');
  data.append(reinterpret_cast<const char*>(&v), 4);
  std::string image = with_header(json, data);
  auto c = load_safetensors_bytes(image.data(), image.size());
  const Tensor& b = c.tensors[1].second;
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data_ptr()) % 4, 0u);
  EXPECT_EQ(b.data<float>()[0], 2.5f);
}

TEST(SafeTensors, RejectsCorruptFiles) {
  const std::string f4 = std::string(4, '\0');
  expect_value_error(std::string("\x01\x02", 2), "too small");
  expect_value_error(with_header("{}", "").substr(0, 9).replace(0, 1, "\x40"), "larger than the rest of the file");
  expect_value_error(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "\0\0"), "truncated");
  expect_value_error(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})", f4 + f4),
                     "overlaps");
  expect_value_error(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", f4 + f4), "gap");
  expect_value_error(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", f4), "needs 8");
  expect_value_error(with_header(R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}})", f4), "unknown dtype 'Q7'");
  expect_value_error(with_header(R"({"a":{"dtype":"U16","shape":[2],"data_offsets":[0,4]}})", f4), "not supported");
  expect_value_error(with_header(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", f4), "negative dimension");
  expect_value_error(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", f4), "end before");
  expect_value_error(with_header(R"({"a":1,"a":2})", ""), "duplicate key");
  expect_value_error(with_header("{\"\xff\":1}", ""), "not valid JSON");
  expect_value_error(with_header(R"({"a":{"dtype":"F32"})", ""), "not valid JSON");
  expect_value_error(with_header(R"({"__metadata__":{"k":1}})", ""), "must be a string");
  expect_value_error(with_header(R"({"a":{"dtype":"U8","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,0]}})", ""),
                     "too large");
  expect_value_error(with_header(R"([1])", ""), "does not start with '{'");
}

TEST(SafeTensors, SaveRejectsBadNames) {
  EXPECT_THROW(save_safetensors_bytes({{"__metadata__", iota({1}, ScalarType::UInt8)}}, std::nullopt), Error);
  EXPECT_THROW(save_safetensors_bytes({{"a", iota({1}, ScalarType::UInt8)}, {"a", iota({1}, ScalarType::Float32)}},
                                      std::nullopt),
               Error);
  EXPECT_THROW(save_safetensors_bytes({{"\xff", iota({1}, ScalarType::UInt8)}}, std::nullopt), Error);
}
