// Factories (empty, zeros, ones, full, arange, linspace, eye), random fills (rand, randn,
// randint, randperm, normal_, uniform_, bernoulli), multinomial and fill_/zero_.
// Random policy: values are drawn serially from one Generator (std::mt19937_64) in element
// order, so a seed fully determines the result regardless of thread count.
#include <algorithm>
#include <cstring>
#include <limits>
#include <cmath>
#include <numeric>

#include "cpu_kernels.h"

namespace vbt {

namespace {

void fill_with(const Tensor& t, const Scalar& v) {
  TensorIterator it = TensorIteratorConfig("fill_").add_output(t).set_common_dtype(t.dtype()).is_inplace(true).build();
  VBT_DISPATCH_ALL(t.dtype(), "fill_", [&]<typename T>() {
    T value = v.to<T>();
    it.for_each([value](char** data, const int64_t* st, int64_t n) {
      for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(data[0] + i * st[0]) = value;
    });
  });
}

void check_size(const Shape& size, const char* op) {
  for (int64_t s : size)
    VBT_CHECK(s >= 0, op, ": Trying to create tensor with negative dimension ", s, ": ", shape_str(size));
}

// Writes f(i) for element i (in logical row-major order) of t, serially.
template <typename F> void fill_serial(const Tensor& t, F&& f) {
  Tensor target = t.is_contiguous() ? t : empty(t.sizes(), t.dtype());
  VBT_DISPATCH_ALL(t.dtype(), "random", [&]<typename T>() {
    T* p = target.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<T>(f());
  });
  if (!target.is_same(t)) copy_into(t, target);
}

double draw_normal(Generator& g) {
  // Box-Muller on (0,1] x [0,1)
  double u1 = 1.0 - g.next_double(), u2 = g.next_double();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

ScalarType float_dtype_arg(const Args& a, size_t i, const char* op) {
  ScalarType dt = a.dtype_or(i, default_float_dtype());
  VBT_CHECK(is_floating(dt), op, " expects a floating point dtype, got ", dtype_name(dt));
  return dt;
}

}  // namespace

// empty(int[] size, *, ScalarType? dtype=None, Device? device=None) -> Tensor
Value k_empty(const Args& a) {
  check_size(a.int_list(0), "empty");
  return empty(a.int_list(0), a.dtype_or(1, default_float_dtype()), a.device_or_cpu(2));
}

// zeros(int[] size, *, ScalarType? dtype=None, Device? device=None) -> Tensor
Value k_zeros(const Args& a) {
  check_size(a.int_list(0), "zeros");
  Tensor t = empty(a.int_list(0), a.dtype_or(1, default_float_dtype()), a.device_or_cpu(2));
  std::memset(t.data_ptr(), 0, static_cast<size_t>(t.numel() * itemsize(t.dtype())));
  return t;
}

// ones(int[] size, *, ScalarType? dtype=None, Device? device=None) -> Tensor
Value k_ones(const Args& a) {
  check_size(a.int_list(0), "ones");
  Tensor t = empty(a.int_list(0), a.dtype_or(1, default_float_dtype()), a.device_or_cpu(2));
  fill_with(t, Scalar(int64_t(1)));
  return t;
}

// full(int[] size, Scalar fill_value, *, ScalarType? dtype=None, Device? device=None) -> Tensor
Value k_full(const Args& a) {
  check_size(a.int_list(0), "full");
  Scalar v = a.scalar(1);
  ScalarType inferred = v.is_floating() ? default_float_dtype() : v.natural_dtype();
  Tensor t = empty(a.int_list(0), a.dtype_or(2, inferred), a.device_or_cpu(3));
  fill_with(t, v);
  return t;
}

// fill_(Tensor self, Scalar value) -> Tensor
Value k_fill_(const Args& a) {
  fill_with(a.tensor(0), a.scalar(1));
  a.tensor(0).impl()->bump_version();
  return a.tensor(0);
}

// zero_(Tensor self) -> Tensor
Value k_zero_(const Args& a) {
  fill_with(a.tensor(0), Scalar(int64_t(0)));
  a.tensor(0).impl()->bump_version();
  return a.tensor(0);
}

// arange(Scalar start, Scalar end, Scalar step=1, *, ScalarType? dtype=None, Device? device=None) -> Tensor
Value k_arange(const Args& a) {
  Scalar start = a.scalar(0), end = a.scalar(1), step = a.scalar(2);
  bool any_float = start.is_floating() || end.is_floating() || step.is_floating();
  ScalarType dt = a.dtype_or(3, any_float ? default_float_dtype() : ScalarType::Int64);
  double s = start.to_double(), e = end.to_double(), st = step.to_double();
  VBT_CHECK(st != 0.0, "arange: step must be nonzero");
  VBT_CHECK(std::isfinite(s) && std::isfinite(e), "arange: unsupported range: ", s, " -> ", e);
  VBT_CHECK((st > 0 && e >= s) || (st < 0 && e <= s), "arange: upper bound and larger bound inconsistent with step sign");
  int64_t n;
  if (!any_float) {
    int64_t si = start.to_int(), ei = end.to_int(), sti = step.to_int();
    n = sti > 0 ? (ei - si + sti - 1) / sti : (si - ei + (-sti) - 1) / (-sti);
  } else {
    n = static_cast<int64_t>(std::ceil((e - s) / st));
  }
  Tensor t = empty({n}, dt, a.device_or_cpu(4));
  VBT_DISPATCH_ALL(dt, "arange", [&]<typename T>() {
    T* p = t.data<T>();
    if (!any_float) {
      int64_t si = start.to_int(), sti = step.to_int();
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(si + i * sti);
    } else {
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(static_cast<opmath_t<T>>(s + static_cast<double>(i) * st));
    }
  });
  return t;
}

// linspace(Scalar start, Scalar end, int steps, *, ScalarType? dtype=None, Device? device=None) -> Tensor
Value k_linspace(const Args& a) {
  double s = a.scalar(0).to_double(), e = a.scalar(1).to_double();
  int64_t steps = a.integer(2);
  VBT_CHECK(steps >= 0, "linspace: number of steps must be non-negative, got ", steps);
  ScalarType dt = a.dtype_or(3, default_float_dtype());
  Tensor t = empty({steps}, dt, a.device_or_cpu(4));
  VBT_DISPATCH_ALL(dt, "linspace", [&]<typename T>() {
    T* p = t.data<T>();
    if (steps == 1) { p[0] = static_cast<T>(static_cast<opmath_t<T>>(s)); return; }
    double step = (e - s) / static_cast<double>(steps - 1);
    int64_t half = steps / 2;
    for (int64_t i = 0; i < steps; ++i) {
      double v = i < half ? s + step * static_cast<double>(i) : e - step * static_cast<double>(steps - 1 - i);
      if constexpr (std::is_integral_v<T>) p[i] = static_cast<T>(std::trunc(v)); else p[i] = static_cast<T>(static_cast<opmath_t<T>>(v));
    }
  });
  return t;
}

// eye(int n, int? m=None, *, ScalarType? dtype=None, Device? device=None) -> Tensor
Value k_eye(const Args& a) {
  int64_t n = a.integer(0), m = a.is_none(1) ? n : a.integer(1);
  VBT_CHECK(n >= 0 && m >= 0, "eye: n and m must be non-negative, got n=", n, " m=", m);
  Tensor t = empty({n, m}, a.dtype_or(2, default_float_dtype()), a.device_or_cpu(3));
  fill_with(t, Scalar(int64_t(0)));
  VBT_DISPATCH_ALL(t.dtype(), "eye", [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = static_cast<T>(1);
  });
  return t;
}

// rand(int[] size, *, Generator? generator=None, ScalarType? dtype=None, Device? device=None) -> Tensor
Value k_rand(const Args& a) {
  check_size(a.int_list(0), "rand");
  Tensor t = empty(a.int_list(0), float_dtype_arg(a, 2, "rand"), a.device_or_cpu(3));
  GeneratorPtr g = a.generator(1);
  fill_serial(t, [&] { return static_cast<float>(g->next_double()); });
  return t;
}

// randn(int[] size, *, Generator? generator=None, ScalarType? dtype=None, Device? device=None) -> Tensor
Value k_randn(const Args& a) {
  check_size(a.int_list(0), "randn");
  Tensor t = empty(a.int_list(0), float_dtype_arg(a, 2, "randn"), a.device_or_cpu(3));
  GeneratorPtr g = a.generator(1);
  fill_serial(t, [&] { return static_cast<float>(draw_normal(*g)); });
  return t;
}

// randint(int low, int high, int[] size, *, Generator? generator=None, ScalarType? dtype=None, Device? device=None)
Value k_randint(const Args& a) {
  int64_t low = a.integer(0), high = a.integer(1);
  VBT_CHECK(high > low, "randint: random_ expects 'from' to be less than 'to', but got from=", low, " >= to=", high);
  check_size(a.int_list(2), "randint");
  Tensor t = empty(a.int_list(2), a.dtype_or(4, ScalarType::Int64), a.device_or_cpu(5));
  GeneratorPtr g = a.generator(3);
  uint64_t range = static_cast<uint64_t>(high - low);
  fill_serial(t, [&] { return static_cast<double>(low + static_cast<int64_t>(g->next_u64() % range)); });
  return t;
}

// randperm(int n, *, Generator? generator=None, ScalarType? dtype=None, Device? device=None) -> Tensor
Value k_randperm(const Args& a) {
  int64_t n = a.integer(0);
  VBT_CHECK(n >= 0, "randperm: n must be non-negative, got ", n);
  GeneratorPtr g = a.generator(1);
  std::vector<int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  for (int64_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[g->next_u64() % static_cast<uint64_t>(i + 1)]);
  Tensor t = empty({n}, ScalarType::Int64, a.device_or_cpu(3));
  std::copy(perm.begin(), perm.end(), t.data<int64_t>());
  return cast_to(t, a.dtype_or(2, ScalarType::Int64));
}

// normal_(Tensor self, float mean=0, float std=1, *, Generator? generator=None) -> Tensor
Value k_normal_(const Args& a) {
  const Tensor& self = a.tensor(0);
  double mean = a.real(1), std = a.real(2);
  VBT_CHECK(std >= 0.0, "normal_ expects std >= 0.0, but found std ", std);
  VBT_CHECK(is_floating(self.dtype()), "normal_ expects a floating point tensor, got ", dtype_name(self.dtype()));
  GeneratorPtr g = a.generator(3);
  fill_serial(self, [&] { return mean + std * draw_normal(*g); });
  self.impl()->bump_version();
  return self;
}

// uniform_(Tensor self, float from=0, float to=1, *, Generator? generator=None) -> Tensor
Value k_uniform_(const Args& a) {
  const Tensor& self = a.tensor(0);
  double lo = a.real(1), hi = a.real(2);
  VBT_CHECK(lo <= hi, "uniform_ expects to return a [from, to) range, but found from=", lo, " > to=", hi);
  VBT_CHECK(is_floating(self.dtype()), "uniform_ expects a floating point tensor, got ", dtype_name(self.dtype()));
  GeneratorPtr g = a.generator(3);
  fill_serial(self, [&] { return lo + (hi - lo) * g->next_double(); });
  self.impl()->bump_version();
  return self;
}

// bernoulli(Tensor self, float? p=None, *, Generator? generator=None) -> Tensor
// Draws 1 with probability self[i] (or p when given) into a tensor shaped and typed like self.
Value k_bernoulli(const Args& a) {
  const Tensor& self = a.tensor(0);
  GeneratorPtr g = a.generator(2);
  Tensor probs = contiguous_or_self(cast_to(self, ScalarType::Float64));
  bool has_p = !a.is_none(1);
  double p = has_p ? a.real(1) : 0.0;
  VBT_CHECK(!has_p || (p >= 0.0 && p <= 1.0), "bernoulli: p must be in [0, 1], got ", p);
  const double* pp = probs.data<double>();
  for (int64_t i = 0; !has_p && i < probs.numel(); ++i)
    VBT_CHECK(pp[i] >= 0.0 && pp[i] <= 1.0, "bernoulli: all elements of input must be in [0, 1], got ", pp[i]);
  Tensor out = empty(self.sizes(), is_floating(self.dtype()) ? self.dtype() : default_float_dtype());
  int64_t i = 0;
  fill_serial(out, [&] {
    double prob = has_p ? p : pp[i];
    ++i;
    return g->next_double() < prob ? 1.0 : 0.0;
  });
  return out;
}

// multinomial(Tensor self, int num_samples, bool replacement=False, *, Generator? generator=None) -> Tensor
// Each row of self (a 1-D self is one row) holds unnormalised category weights. With replacement: one uniform
// draw per sample, located in the row's cumulative sums by binary search (zero weights are never drawn).
// Without: an exponential race, every category i gets the key E_i / w_i with E_i ~ Exp(1); the categories in
// order of increasing key are a sample without replacement with probabilities proportional to the weights
// (zero weights have key +inf and come last, by index, as torch also returns them once the others run out).
// Draws are serial in row order, so a seed (or a Generator state) fixes the result.
Value k_multinomial(const Args& a) {
  const Tensor& self = a.tensor(0);
  int64_t n = a.integer(1);
  bool replacement = a.boolean(2);
  GeneratorPtr g = a.generator(3);
  VBT_CHECK(self.dim() == 1 || self.dim() == 2, "prob_dist must be 1 or 2 dim");
  VBT_CHECK(is_floating(self.dtype()), "multinomial only supports floating-point dtypes for input, got: ",
            dtype_name(self.dtype()));
  VBT_CHECK(n > 0, "cannot sample n_sample <= 0 samples");
  int64_t ncat = self.sizes().back();
  VBT_CHECK(replacement || n <= ncat, "cannot sample n_sample > prob_dist.size(-1) samples without replacement");
  VBT_CHECK(ncat <= (int64_t(1) << 24), "number of categories cannot exceed 2^24");
  int64_t rows = self.dim() == 1 ? 1 : self.sizes()[0];
  Tensor w = contiguous_or_self(cast_to(self, ScalarType::Float64));
  const double* wp = w.data<double>();
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0.0;
    for (int64_t i = 0; i < ncat; ++i) {
      double v = wp[r * ncat + i];
      VBT_CHECK(std::isfinite(v) && v >= 0.0, "probability tensor contains either `inf`, `nan` or element < 0");
      sum += v;
    }
    VBT_CHECK(sum > 0.0, "invalid multinomial distribution (sum of probabilities <= 0)");
  }
  Tensor out = empty(self.dim() == 1 ? Shape{n} : Shape{rows, n}, ScalarType::Int64, self.device());
  int64_t* op = out.data<int64_t>();
  std::vector<double> acc(static_cast<size_t>(ncat));
  std::vector<int64_t> order(static_cast<size_t>(ncat));
  for (int64_t r = 0; r < rows; ++r) {
    const double* row = wp + r * ncat;
    int64_t* dst = op + r * n;
    if (replacement) {
      std::partial_sum(row, row + ncat, acc.begin());
      double total = acc.back();
      for (int64_t k = 0; k < n; ++k) {
        double u = g->next_double() * total;
        auto it = std::upper_bound(acc.begin(), acc.end(), u);
        int64_t idx = std::min<int64_t>(it - acc.begin(), ncat - 1);
        while (row[idx] == 0.0 && idx > 0) --idx;  // rounding at the top end never lands on a zero weight
        dst[k] = idx;
      }
    } else {
      for (int64_t i = 0; i < ncat; ++i) {
        double e = -std::log(1.0 - g->next_double());  // Exp(1); 1 - u is in (0, 1]
        acc[static_cast<size_t>(i)] = row[i] > 0.0 ? e / row[i] : std::numeric_limits<double>::infinity();
      }
      std::iota(order.begin(), order.end(), int64_t(0));
      std::partial_sort(order.begin(), order.begin() + n, order.end(), [&](int64_t x, int64_t y) {
        double kx = acc[static_cast<size_t>(x)], ky = acc[static_cast<size_t>(y)];
        return kx < ky || (kx == ky && x < y);
      });
      std::copy(order.begin(), order.begin() + n, dst);
    }
  }
  return out;
}

}  // namespace vbt
