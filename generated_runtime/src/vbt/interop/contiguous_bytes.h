// Internal helper shared by the interop writers: gathers a strided CPU tensor's elements, in
// row-major order, into a dense byte buffer of numel * itemsize bytes (the caller owns `dst`).
#pragma once
#include "vbt/core/tensor_impl.h"

namespace vbt::interop {

void copy_to_contiguous_bytes(const Tensor& t, void* dst);

}  // namespace vbt::interop
