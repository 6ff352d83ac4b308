// Strided gather for the interop writers (see contiguous_bytes.h). Byte-wise per element, so it is
// dtype-agnostic; the innermost dimension is a memcpy when it is contiguous.
#include "contiguous_bytes.h"

#include <cstring>

namespace vbt::interop {

void copy_to_contiguous_bytes(const Tensor& t, void* dst) {
  VBT_CHECK(t.device().type == DeviceType::CPU, "interop: expected a CPU tensor, got ", t.device().str());
  const int64_t item = itemsize(t.dtype());
  const int64_t n = t.numel();
  if (n == 0) return;
  const char* base = static_cast<const char*>(t.data_ptr());
  char* out = static_cast<char*>(dst);
  if (t.is_contiguous()) {
    std::memcpy(out, base, static_cast<size_t>(n * item));
    return;
  }
  const int64_t nd = t.dim();
  const Shape& sizes = t.sizes();
  const Shape& strides = t.strides();
  const int64_t inner = sizes[nd - 1];
  const int64_t inner_stride = strides[nd - 1];
  Shape index(nd, 0);
  for (int64_t done = 0; done < n; done += inner) {
    int64_t off = 0;
    for (int64_t d = 0; d < nd - 1; ++d) off += index[d] * strides[d];
    const char* src = base + off * item;
    if (inner_stride == 1) {
      std::memcpy(out, src, static_cast<size_t>(inner * item));
      out += inner * item;
    } else {
      for (int64_t i = 0; i < inner; ++i, out += item) std::memcpy(out, src + i * inner_stride * item, item);
    }
    for (int64_t d = nd - 2; d >= 0; --d) {  // odometer over the outer dims
      if (++index[d] < sizes[d]) break;
      index[d] = 0;
    }
  }
}

}  // namespace vbt::interop
