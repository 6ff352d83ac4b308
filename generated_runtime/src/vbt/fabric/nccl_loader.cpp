// NcclLibrary (see nccl_loader.h): dlopen of libnccl.so.2 and the few calls the fabric's checks use.
// The declarations below restate NCCL 2.x's public C signatures; ncclComm_t is an opaque pointer and
// ncclResult_t / ncclDataType_t / ncclRedOp_t are C enums (int-sized).
#include "vbt/fabric/nccl_loader.h"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace vbt::fabric {

namespace {

using NcclResult = int;
constexpr int kNcclFloat32 = 7;
constexpr int kNcclSum = 0;

using GetVersionFn = NcclResult (*)(int*);
using CommInitAllFn = NcclResult (*)(void** comms, int ndev, const int* devlist);
using CommDestroyFn = NcclResult (*)(void* comm);
using AllReduceFn = NcclResult (*)(const void* send, void* recv, std::size_t count, int dtype, int op, void* comm,
                                   cudaStream_t stream);
using GroupFn = NcclResult (*)();
using ErrorStringFn = const char* (*)(NcclResult);

// Asks python3 where the pip package nvidia-nccl-cu* put libnccl.so.2 (empty when it does not know).
std::string python_nccl_path() {
  const char* cmd =
      "python3 -c \"import os, nvidia.nccl as m; "
      "ps = list(getattr(m, '__path__', [])) or [os.path.dirname(m.__file__)]; "
      "c = [os.path.join(p, 'lib', 'libnccl.so.2') for p in ps]; "
      "c = [x for x in c if os.path.exists(x)]; print(c[0] if c else '')\" 2>/dev/null";
  FILE* f = popen(cmd, "r");
  if (!f) return {};
  char buf[4096] = {0};
  std::string out;
  while (std::fgets(buf, sizeof(buf), f)) out += buf;
  pclose(f);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

NcclLibrary::NcclLibrary() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("VBT_NCCL_LIBRARY"); env && *env) {
    candidates.push_back(env);
  } else {
    if (std::string p = python_nccl_path(); !p.empty()) candidates.push_back(p);
    candidates.push_back("libnccl.so.2");
  }
  std::string errors;
  for (const std::string& c : candidates) {
    void* h = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h) {
      handle_ = h;
      path_ = c;
      break;
    }
    const char* e = dlerror();
    errors += (errors.empty() ? "" : "; ") + c + ": " + (e ? e : "dlopen failed");
  }
  if (!handle_) {
    reason_ = "NCCL not loadable (" + errors + ")";
    return;
  }
  struct Sym {
    const char* name;
    void** slot;
  } syms[] = {{"ncclGetVersion", &get_version_}, {"ncclCommInitAll", &comm_init_all_},
              {"ncclCommDestroy", &comm_destroy_}, {"ncclAllReduce", &all_reduce_},
              {"ncclGroupStart", &group_start_}, {"ncclGroupEnd", &group_end_},
              {"ncclGetErrorString", &error_string_}};
  for (const Sym& s : syms) {
    *s.slot = dlsym(handle_, s.name);
    if (*s.slot == nullptr) {
      reason_ = path_ + " lacks symbol " + s.name;
      dlclose(handle_);
      handle_ = nullptr;
      return;
    }
  }
  if (reinterpret_cast<GetVersionFn>(get_version_)(&version_) != 0) version_ = 0;
}

NcclLibrary::~NcclLibrary() {
  if (handle_) {
    try {
      destroy_comms();
    } catch (...) {
    }
    // Deliberately not dlclose'd: NCCL keeps threads and atexit handlers that outlive the comms.
  }
}

static void nccl_check(NcclResult r, void* error_string, const char* what) {
  if (r == 0) return;
  const char* msg = reinterpret_cast<ErrorStringFn>(error_string)(r);
  throw std::runtime_error(std::string(what) + " failed: " + (msg ? msg : "?") + " (ncclResult " +
                           std::to_string(r) + ")");
}

void NcclLibrary::init_comms(const std::vector<int>& devices) {
  if (!handle_) throw std::runtime_error("NCCL is not available: " + reason_);
  destroy_comms();
  comms_.assign(devices.size(), nullptr);
  nccl_check(reinterpret_cast<CommInitAllFn>(comm_init_all_)(comms_.data(), static_cast<int>(devices.size()),
                                                            devices.data()),
             error_string_, "ncclCommInitAll");
}

void NcclLibrary::destroy_comms() {
  for (void* c : comms_) {
    if (c) reinterpret_cast<CommDestroyFn>(comm_destroy_)(c);
  }
  comms_.clear();
}

void NcclLibrary::allreduce_sum(const std::vector<float*>& buffers, std::size_t count,
                                const std::vector<cudaStream_t>& streams) {
  if (!handle_) throw std::runtime_error("NCCL is not available: " + reason_);
  if (buffers.size() != comms_.size() || streams.size() != comms_.size()) {
    throw std::runtime_error("NCCL all-reduce: buffers/streams do not match the communicators");
  }
  nccl_check(reinterpret_cast<GroupFn>(group_start_)(), error_string_, "ncclGroupStart");
  NcclResult first_error = 0;
  for (std::size_t r = 0; r < comms_.size(); ++r) {
    const NcclResult res = reinterpret_cast<AllReduceFn>(all_reduce_)(buffers[r], buffers[r], count, kNcclFloat32,
                                                                     kNcclSum, comms_[r], streams[r]);
    if (res != 0 && first_error == 0) first_error = res;
  }
  const NcclResult end = reinterpret_cast<GroupFn>(group_end_)();
  nccl_check(first_error, error_string_, "ncclAllReduce");
  nccl_check(end, error_string_, "ncclGroupEnd");
}

}  // namespace vbt::fabric
