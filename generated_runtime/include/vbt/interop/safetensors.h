// SafeTensors: reading and writing the `.safetensors` file format.
// Format: 8-byte little-endian header length N; N bytes of UTF-8 JSON
//   {"__metadata__": {str: str} (optional), name: {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...}
// padded with spaces; then the byte buffer, offsets relative to its start.
// Policy:
//  * Loading validates everything before any tensor is made: header length within the file, strict
//    UTF-8 JSON without duplicate names, known dtype, non-negative dims, end - begin == numel * itemsize,
//    and offsets that tile the buffer exactly (sorted by begin: no gap, no overlap, ending at its end).
//    Any violation throws vbt::Error(ErrorKind::Value) naming the source (file path or "<bytes>").
//  * Files are memory-mapped privately (copy-on-write): tensors are zero-copy views over the mapping when
//    their address is aligned to the element size (else a copy), and every storage keeps the mapping
//    alive. Writes to a loaded tensor never reach the file.
//  * Saving is byte-identical to the reference `safetensors` package: tensors ordered by dtype rank then
//    name (the header lists them in that order, metadata first), compact JSON, header padded with spaces
//    to a multiple of 8. Non-contiguous tensors are written as their contiguous contents.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vbt/core/tensor_impl.h"

namespace vbt::interop {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
using SafeTensorsMetadata = std::map<std::string, std::string>;

struct SafeTensorsContents {
  NamedTensors tensors;  // in file (data-offset) order
  std::optional<SafeTensorsMetadata> metadata;  // nullopt when the file has no "__metadata__"
};

// Upper bound on the JSON header (the reference implementation uses the same limit).
constexpr uint64_t kMaxSafeTensorsHeaderBytes = 100'000'000;

// A file that cannot be opened/read/written throws std::system_error carrying errno (the binding
// turns it into OSError / FileNotFoundError); a malformed file throws vbt::Error(Value).
SafeTensorsContents load_safetensors_file(const std::string& path);
// `source` names the buffer in error messages. The bytes are copied once into an aligned buffer.
SafeTensorsContents load_safetensors_bytes(const void* data, size_t nbytes, const std::string& source = "<bytes>");

// metadata: nullopt writes no "__metadata__" entry; an empty map writes "__metadata__":{} (as the
// reference does). Its keys are written sorted (the reference's order is unspecified).
std::string save_safetensors_bytes(const NamedTensors& tensors, const std::optional<SafeTensorsMetadata>& metadata);
// Writes to `path + ".tmp"` and renames, so a failed save never leaves a half-written file.
void save_safetensors_file(const NamedTensors& tensors, const std::optional<SafeTensorsMetadata>& metadata,
                           const std::string& path);

// "F32" <-> ScalarType::Float32 ...; unknown names throw ValueError.
const char* safetensors_dtype_name(ScalarType t);

}  // namespace vbt::interop
