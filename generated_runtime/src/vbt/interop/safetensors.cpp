// SafeTensors loader and saver (format and policy in vbt/interop/safetensors.h).
// Units: every offset and length here is in bytes. Validation happens in parse_header() and
// check_coverage() before any Storage is created, so a bad file can only produce a ValueError.
#include "vbt/interop/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "contiguous_bytes.h"
#include "strict_json.h"

namespace vbt::interop {

namespace {

struct DtypeEntry {
  const char* name;
  ScalarType type;
  int rank;  // the reference's dtype order; save() lays tensors out by descending rank, then name
};
constexpr DtypeEntry kDtypes[] = {
    {"BOOL", ScalarType::Bool, 0},     {"U8", ScalarType::UInt8, 1},    {"I8", ScalarType::Int8, 2},
    {"I16", ScalarType::Int16, 3},     {"F16", ScalarType::Float16, 4}, {"BF16", ScalarType::BFloat16, 5},
    {"I32", ScalarType::Int32, 6},     {"F32", ScalarType::Float32, 7}, {"F64", ScalarType::Float64, 8},
    {"I64", ScalarType::Int64, 9},
};
// Valid in the format but not representable in vibetensor: named in the error instead of "unknown".
constexpr const char* kKnownUnsupported[] = {"U16", "U32", "U64", "F8_E5M2", "F8_E4M3", "F8_E8M0",
                                              "F4", "F6_E2M3", "F6_E3M2", "C64"};

const DtypeEntry& dtype_entry(ScalarType t) {
  for (const auto& e : kDtypes)
    if (e.type == t) return e;
  VBT_INTERNAL_ASSERT(false, "safetensors: ScalarType missing from the dtype table");
}

[[noreturn]] void bad_file(const std::string& source, const std::string& problem) {
  throw_error(ErrorKind::Value, "safetensors: ", source, ": ", problem);
}

struct TensorEntry {
  std::string name;
  ScalarType dtype;
  Shape shape;
  uint64_t begin, end;
};

uint64_t to_offset(const JsonValue& v, const std::string& source, const std::string& name) {
  if (v.kind != JsonValue::Kind::Number || !v.is_integer || v.integer < 0)
    bad_file(source, "tensor '" + name + "': data_offsets must be non-negative integers, got " +
                         (v.kind == JsonValue::Kind::Number ? v.text : JsonValue::kind_name(v.kind)));
  return static_cast<uint64_t>(v.integer);
}

TensorEntry parse_tensor_entry(const std::string& name, const JsonValue& info, const std::string& source) {
  const std::string who = "tensor '" + name + "'";
  if (info.kind != JsonValue::Kind::Object) bad_file(source, who + ": expected an object, got " + JsonValue::kind_name(info.kind));
  const JsonValue* dtype = info.find("dtype");
  const JsonValue* shape = info.find("shape");
  const JsonValue* offsets = info.find("data_offsets");
  if (!dtype || !shape || !offsets) bad_file(source, who + ": missing one of 'dtype', 'shape', 'data_offsets'");
  if (dtype->kind != JsonValue::Kind::String) bad_file(source, who + ": 'dtype' must be a string");
  TensorEntry e{name, ScalarType::Bool, {}, 0, 0};
  const DtypeEntry* found = nullptr;
  for (const auto& d : kDtypes)
    if (dtype->text == d.name) found = &d;
  if (!found) {
    for (const char* u : kKnownUnsupported)
      if (dtype->text == u) bad_file(source, who + ": dtype " + u + " is not supported by vibetensor");
    bad_file(source, who + ": unknown dtype '" + dtype->text + "'");
  }
  e.dtype = found->type;
  if (shape->kind != JsonValue::Kind::Array) bad_file(source, who + ": 'shape' must be an array of integers");
  // numel * itemsize must fit in int64 (a TensorImpl invariant); __int128 makes the check exact.
  __int128 nbytes = itemsize(e.dtype);
  for (const JsonValue& d : shape->items) {
    if (d.kind != JsonValue::Kind::Number || !d.is_integer)
      bad_file(source, who + ": 'shape' must be an array of integers");
    if (d.integer < 0) bad_file(source, who + ": negative dimension " + std::to_string(d.integer) + " in shape");
    e.shape.push_back(d.integer);
    nbytes *= d.integer;
    if (nbytes > INT64_MAX) bad_file(source, who + ": shape " + shape_str(e.shape) + " is too large");
  }
  if (offsets->kind != JsonValue::Kind::Array || offsets->items.size() != 2)
    bad_file(source, who + ": 'data_offsets' must be [begin, end]");
  e.begin = to_offset(offsets->items[0], source, name);
  e.end = to_offset(offsets->items[1], source, name);
  if (e.end < e.begin)
    bad_file(source, who + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] end before they begin");
  if (static_cast<__int128>(e.end - e.begin) != nbytes)
    bad_file(source, who + ": data_offsets span " + std::to_string(e.end - e.begin) + " bytes but dtype " + found->name +
                         " x shape " + shape_str(e.shape) + " needs " + std::to_string(static_cast<int64_t>(nbytes)));
  return e;
}

std::string render_shape(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

// The offsets must tile [0, buffer_len) exactly: sorted by begin, each starts where the last ended.
void check_coverage(std::vector<TensorEntry> entries, uint64_t buffer_len, const std::string& source) {
  std::sort(entries.begin(), entries.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  for (const auto& e : entries) {
    if (e.begin < expected)
      bad_file(source, "tensor '" + e.name + "' overlaps the previous tensor (data_offsets begin at " +
                           std::to_string(e.begin) + ", previous ends at " + std::to_string(expected) + ")");
    if (e.begin > expected)
      bad_file(source, "gap in the data buffer: bytes [" + std::to_string(expected) + ", " + std::to_string(e.begin) +
                           ") belong to no tensor (before tensor '" + e.name + "')");
    expected = e.end;
  }
  if (expected != buffer_len)
    bad_file(source, "tensor data ends at byte " + std::to_string(expected) + " but the data buffer holds " +
                         std::to_string(buffer_len) + " bytes (truncated file or trailing bytes)");
}

// Parses and validates a whole file image. `owner` keeps [bytes, bytes + size) alive; tensors view it.
SafeTensorsContents parse_image(const char* bytes, uint64_t size, const std::shared_ptr<void>& owner,
                                const std::string& source) {
  if (size < 8) bad_file(source, "file is " + std::to_string(size) + " bytes, too small for the 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(bytes[i]);
  if (header_len > kMaxSafeTensorsHeaderBytes)
    bad_file(source, "header length " + std::to_string(header_len) + " exceeds the limit of " +
                         std::to_string(kMaxSafeTensorsHeaderBytes) + " bytes");
  if (header_len > size - 8)
    bad_file(source, "header length " + std::to_string(header_len) + " is larger than the rest of the file (" +
                         std::to_string(size - 8) + " bytes)");
  std::string_view header(bytes + 8, header_len);
  if (header.empty() || header.front() != '{') bad_file(source, "header does not start with '{'");
  JsonValue root;
  try {
    root = parse_json_strict(header);
  } catch (const JsonError& e) {
    bad_file(source, std::string("header is not valid JSON: ") + e.what());
  }
  if (root.kind != JsonValue::Kind::Object) bad_file(source, "header must be a JSON object");

  SafeTensorsContents out;
  std::vector<TensorEntry> entries;
  for (const auto& [name, info] : root.members) {
    if (name == "__metadata__") {
      if (info.kind != JsonValue::Kind::Object) bad_file(source, "__metadata__ must be an object of strings");
      SafeTensorsMetadata md;
      for (const auto& [k, v] : info.members) {
        if (v.kind != JsonValue::Kind::String)
          bad_file(source, "__metadata__ value for '" + k + "' must be a string, got " + JsonValue::kind_name(v.kind));
        md.emplace(k, v.text);
      }
      out.metadata = std::move(md);
      continue;
    }
    entries.push_back(parse_tensor_entry(name, info, source));
  }
  const uint64_t data_start = 8 + header_len;
  check_coverage(entries, size - data_start, source);

  for (auto& e : entries) {
    const char* p = bytes + data_start + e.begin;
    const uint64_t n = e.end - e.begin;
    auto st = std::make_shared<StorageImpl>();
    if (reinterpret_cast<uintptr_t>(p) % static_cast<uint64_t>(itemsize(e.dtype)) == 0) {
      st->data_ptr.owner = std::shared_ptr<void>(owner, const_cast<char*>(p));  // aliasing: keeps the image alive
      st->data_ptr.data = const_cast<char*>(p);
      st->data_ptr.device = Device{};
    } else {  // misaligned for this dtype: copy into the (64-byte aligned) CPU allocator
      st->data_ptr = cpu_allocator().allocate(n);
      if (n) std::memcpy(st->data_ptr.data, p, n);
    }
    st->nbytes = n;
    Shape strides = contiguous_strides(e.shape);
    out.tensors.emplace_back(e.name, Tensor(std::make_shared<TensorImpl>(std::move(st), e.dtype, e.shape, std::move(strides), 0)));
  }
  return out;
}

// serde_json's escaping: \" \\ \b \f \n \r \t, other control bytes as \u00xx, everything else raw.
void append_json_string(std::string& out, const std::string& s) {
  static const char* kHex = "0123456789abcdef";
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

bool is_valid_utf8(const std::string& s) {
  try {
    std::string quoted;
    append_json_string(quoted, s);
    parse_json_strict(quoted);
    return true;
  } catch (const JsonError&) {
    return false;
  }
}

struct SaveLayout {
  std::string header;  // length prefix + padded JSON
  std::vector<const std::pair<std::string, Tensor>*> order;
};

SaveLayout plan_save(const NamedTensors& tensors, const std::optional<SafeTensorsMetadata>& metadata) {
  SaveLayout layout;
  for (const auto& nt : tensors) {
    VBT_CHECK_VALUE(nt.second.defined(), "safetensors.save: tensor '", nt.first, "' is undefined");
    VBT_CHECK_VALUE(nt.second.device().type == DeviceType::CPU, "safetensors.save: tensor '", nt.first, "' is on ",
                    nt.second.device().str(), "; only CPU tensors can be saved");
    VBT_CHECK_VALUE(nt.first != "__metadata__", "safetensors.save: '__metadata__' is reserved and cannot name a tensor");
    VBT_CHECK_VALUE(is_valid_utf8(nt.first), "safetensors.save: tensor names must be valid UTF-8");
    layout.order.push_back(&nt);
  }
  std::sort(layout.order.begin(), layout.order.end(), [](auto* a, auto* b) {
    int ra = dtype_entry(a->second.dtype()).rank, rb = dtype_entry(b->second.dtype()).rank;
    return ra != rb ? ra > rb : a->first < b->first;
  });
  {
    std::vector<std::string_view> names;
    for (auto* nt : layout.order) names.push_back(nt->first);
    std::sort(names.begin(), names.end());
    auto dup = std::adjacent_find(names.begin(), names.end());
    VBT_CHECK_VALUE(dup == names.end(), "safetensors.save: duplicate tensor name '", dup == names.end() ? std::string_view() : *dup, "'");
  }
  std::string json = "{";
  bool first = true;
  if (metadata) {
    json += "\"__metadata__\":{";
    bool first_md = true;
    for (const auto& [k, v] : *metadata) {
      VBT_CHECK_VALUE(is_valid_utf8(k) && is_valid_utf8(v), "safetensors.save: metadata must be valid UTF-8");
      if (!first_md) json += ',';
      first_md = false;
      append_json_string(json, k);
      json += ':';
      append_json_string(json, v);
    }
    json += '}';
    first = false;
  }
  uint64_t offset = 0;
  for (auto* nt : layout.order) {
    const Tensor& t = nt->second;
    uint64_t n = static_cast<uint64_t>(t.numel() * itemsize(t.dtype()));
    if (!first) json += ',';
    first = false;
    append_json_string(json, nt->first);
    json += ":{\"dtype\":\"";
    json += dtype_entry(t.dtype()).name;
    json += "\",\"shape\":" + render_shape(t.sizes()) + ",\"data_offsets\":[" + std::to_string(offset) + "," +
            std::to_string(offset + n) + "]}";
    offset += n;
  }
  json += '}';
  json.append((8 - json.size() % 8) % 8, ' ');
  uint64_t len = json.size();
  layout.header.resize(8);
  for (int i = 0; i < 8; ++i) layout.header[i] = static_cast<char>((len >> (8 * i)) & 0xFF);
  layout.header += json;
  return layout;
}

uint64_t tensor_nbytes(const Tensor& t) { return static_cast<uint64_t>(t.numel() * itemsize(t.dtype())); }

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

}  // namespace

const char* safetensors_dtype_name(ScalarType t) { return dtype_entry(t).name; }

SafeTensorsContents load_safetensors_bytes(const void* data, size_t nbytes, const std::string& source) {
  // One aligned copy, so tensors can view it like a mapping (a Python bytes object is immutable).
  DataPtr buf = cpu_allocator().allocate(nbytes);
  if (nbytes) std::memcpy(buf.data, data, nbytes);
  return parse_image(static_cast<const char*>(buf.data), nbytes, buf.owner, source);
}

SafeTensorsContents load_safetensors_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("safetensors: cannot open '" + path + "'");
  struct stat sb;
  if (::fstat(fd, &sb) != 0) {
    int saved = errno;
    ::close(fd);
    errno = saved;
    throw_errno("safetensors: cannot stat '" + path + "'");
  }
  if (!S_ISREG(sb.st_mode)) {
    ::close(fd);
    bad_file(path, "not a regular file");
  }
  const uint64_t size = static_cast<uint64_t>(sb.st_size);
  if (size < 8) {
    ::close(fd);
    bad_file(path, "file is " + std::to_string(size) + " bytes, too small for the 8-byte header length");
  }
  // MAP_PRIVATE + PROT_WRITE: copy-on-write, so tensors are writable and the file never changes.
  void* map = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int saved = errno;
  ::close(fd);  // the mapping stays valid after close
  if (map == MAP_FAILED) {
    errno = saved;
    throw_errno("safetensors: cannot map '" + path + "'");
  }
  std::shared_ptr<void> owner(map, [size](void* p) { ::munmap(p, size); });
  return parse_image(static_cast<const char*>(map), size, owner, path);
}

std::string save_safetensors_bytes(const NamedTensors& tensors, const std::optional<SafeTensorsMetadata>& metadata) {
  SaveLayout layout = plan_save(tensors, metadata);
  std::string out = std::move(layout.header);
  size_t pos = out.size();
  uint64_t total = 0;
  for (auto* nt : layout.order) total += tensor_nbytes(nt->second);
  out.resize(pos + total);
  for (auto* nt : layout.order) {
    copy_to_contiguous_bytes(nt->second, out.data() + pos);
    pos += tensor_nbytes(nt->second);
  }
  return out;
}

void save_safetensors_file(const NamedTensors& tensors, const std::optional<SafeTensorsMetadata>& metadata,
                           const std::string& path) {
  SaveLayout layout = plan_save(tensors, metadata);
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw_errno("safetensors: cannot open '" + tmp + "' for writing");
  auto write_or_throw = [&](const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f) != n) {
      int saved = errno;
      std::fclose(f);
      std::remove(tmp.c_str());
      errno = saved;
      throw_errno("safetensors: cannot write '" + tmp + "'");
    }
  };
  write_or_throw(layout.header.data(), layout.header.size());
  std::vector<char> scratch;
  for (auto* nt : layout.order) {
    const Tensor& t = nt->second;
    size_t n = tensor_nbytes(t);
    if (t.is_contiguous()) {
      write_or_throw(t.data_ptr(), n);
    } else {
      scratch.resize(n);
      copy_to_contiguous_bytes(t, scratch.data());
      write_or_throw(scratch.data(), n);
    }
  }
  if (std::fclose(f) != 0) {
    int saved = errno;
    std::remove(tmp.c_str());
    errno = saved;
    throw_errno("safetensors: cannot write '" + tmp + "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int saved = errno;
    std::remove(tmp.c_str());
    errno = saved;
    throw_errno("safetensors: cannot rename '" + tmp + "' to '" + path + "'");
  }
}

}  // namespace vbt::interop
