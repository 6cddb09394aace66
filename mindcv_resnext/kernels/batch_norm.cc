// Training-mode BatchNorm of NCHW float32, optionally followed by ReLU, forward and backward, as MindSpore custom
// operators (func_type "aot").
//
// Why: MindSpore 2.7 on the CPU runs BatchNorm, ReLU and their gradients as four operators, each streaming the
// whole activation through memory: about 13 passes per layer. Here one channel at a time is computed start to end:
// its statistics in one pass over its N planes, then the output in a second pass, which finds the channel still in
// the core's cache (8 x 112 x 112 floats is 400 KB). So the forward reads x from memory once and writes y once; the
// backward reads dy and x once and writes dx once, the ReLU's mask recomputed from x instead of read.
//
// Entry points (MindSpore's aot signature: nparam, params, ndims, shapes, dtypes, stream, extra; 0 is success):
//   BatchNormForward, BatchNormReluForward     (x, gamma, beta, moving_mean, moving_variance, settings) -> (y, mean,
//                                              variance), and moving_mean, moving_variance updated in place
//   BatchNormBackward, BatchNormReluBackward   (dy, x, gamma, beta, mean, variance, settings) -> (dx, dgamma, dbeta)
// x is (N, C, H, W), settings is (eps, momentum), the rest is (C,). mean and variance are the batch's (the biased
// variance, which the output is normalised with). The moving statistics are updated as MindSpore's BatchNorm updates
// them, in place, as its kernel does: moving = (1 - momentum) * moving + momentum * batch, with the unbiased
// variance. (The forward op is declared with a memory side effect; two Assign operators per layer instead cost the
// graph compile ~25 ms each.) Sums run in another order than MindSpore's: results agree to float32 rounding, not
// bit for bit.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>

#include "parallel.h"

namespace {

constexpr int LANES = 16;  // floats in an AVX-512 vector

struct Shape {
  int64_t N, C, HW;
  int64_t count() const { return N * HW; }  // elements per channel
  int64_t plane(int64_t n, int64_t c) const { return (n * C + c) * HW; }
};

// Lanes [0, valid) of a vector load from `p`, the rest zero (a plane's tail).
inline __m512 load(const float *p, __mmask16 valid) { return _mm512_maskz_loadu_ps(valid, p); }
inline __mmask16 lanes(int64_t left) { return left >= LANES ? 0xFFFF : static_cast<__mmask16>((1u << left) - 1); }

// y = x * scale + shift. Forward and backward both derive it from the float32 mean and variance with this function,
// so the backward's ReLU mask (x * scale + shift > 0) is the forward's bit for bit.
struct Affine {
  float invstd, scale, shift;
  Affine(float gamma, float beta, float mean, float variance, float eps)
      : invstd(1.0f / std::sqrt(variance + eps)), scale(gamma * invstd), shift(beta - mean * scale) {}
};

// The batch mean and biased variance of channel c. Sums are of x - x[0, c, 0, 0] (close to the mean, so the
// variance does not cancel), in float32 lanes within a plane and in double across planes.
void statistics(const float *x, const Shape &s, int64_t c, float *mean, float *variance) {
  const __m512 origin = _mm512_set1_ps(x[s.plane(0, c)]);
  double sum = 0, squares = 0;
  for (int64_t n = 0; n < s.N; ++n) {
    const float *p = x + s.plane(n, c);
    __m512 sum_lanes = _mm512_setzero_ps(), square_lanes = _mm512_setzero_ps();
    for (int64_t i = 0; i < s.HW; i += LANES) {
      const __m512 d = _mm512_maskz_sub_ps(lanes(s.HW - i), load(p + i, lanes(s.HW - i)), origin);
      sum_lanes = _mm512_add_ps(sum_lanes, d);
      square_lanes = _mm512_fmadd_ps(d, d, square_lanes);
    }
    sum += _mm512_reduce_add_ps(sum_lanes);
    squares += _mm512_reduce_add_ps(square_lanes);
  }
  const double m = sum / s.count();
  *mean = static_cast<float>(x[s.plane(0, c)] + m);
  *variance = static_cast<float>(std::max(0.0, squares / s.count() - m * m));
}

// MindSpore's momentum: the weight of the batch's statistic.
struct Settings {
  float eps, momentum;
};

template <bool RELU>
void forward(const float *x, const float *gamma, const float *beta, float *moving_mean, float *moving_variance,
             Settings settings, float *y, float *mean, float *variance, const Shape &s) {
  const float eps = settings.eps, m = settings.momentum;
  const float unbiased = s.count() > 1 ? static_cast<float>(s.count()) / (s.count() - 1) : 1.0f;
  kernels::parallel_for(s.C, [&](int64_t c) {
    statistics(x, s, c, &mean[c], &variance[c]);
    moving_mean[c] = (1 - m) * moving_mean[c] + m * mean[c];
    moving_variance[c] = (1 - m) * moving_variance[c] + m * variance[c] * unbiased;
    const Affine a(gamma[c], beta[c], mean[c], variance[c], eps);
    const __m512 scale = _mm512_set1_ps(a.scale), shift = _mm512_set1_ps(a.shift), zero = _mm512_setzero_ps();
    for (int64_t n = 0; n < s.N; ++n) {
      const float *in = x + s.plane(n, c);
      float *out = y + s.plane(n, c);
      for (int64_t i = 0; i < s.HW; i += LANES) {
        __m512 v = _mm512_fmadd_ps(load(in + i, lanes(s.HW - i)), scale, shift);
        if (RELU) v = _mm512_max_ps(v, zero);
        _mm512_mask_storeu_ps(out + i, lanes(s.HW - i), v);
      }
    }
  });
}

// dz: the gradient reaching the normalised output z = x * scale + shift (dy where z > 0 when ReLU follows).
template <bool RELU>
inline __m512 gradient_at_z(__m512 dy, __m512 x, __m512 scale, __m512 shift) {
  if (!RELU) return dy;
  const __mmask16 positive = _mm512_cmp_ps_mask(_mm512_fmadd_ps(x, scale, shift), _mm512_setzero_ps(), _CMP_GT_OQ);
  return _mm512_maskz_mov_ps(positive, dy);
}

// With M = N * H * W, xhat = (x - mean) * invstd, dz as above:
//   dbeta = sum(dz), dgamma = sum(dz * xhat), dx = gamma * invstd * (dz - dbeta / M - xhat * dgamma / M).
template <bool RELU>
void backward(const float *dy, const float *x, const float *gamma, const float *beta, const float *mean,
              const float *variance, Settings settings, float *dx, float *dgamma, float *dbeta, const Shape &s) {
  kernels::parallel_for(s.C, [&](int64_t c) {
    const Affine a(gamma[c], beta[c], mean[c], variance[c], settings.eps);
    const __m512 scale = _mm512_set1_ps(a.scale), shift = _mm512_set1_ps(a.shift), centre = _mm512_set1_ps(mean[c]);
    double sum_dz = 0, sum_dz_centred = 0;  // sum(dz), sum(dz * (x - mean))
    for (int64_t n = 0; n < s.N; ++n) {
      const float *g = dy + s.plane(n, c), *in = x + s.plane(n, c);
      __m512 dz_lanes = _mm512_setzero_ps(), centred_lanes = _mm512_setzero_ps();
      for (int64_t i = 0; i < s.HW; i += LANES) {
        const __mmask16 valid = lanes(s.HW - i);
        const __m512 v = load(in + i, valid);
        const __m512 dz = gradient_at_z<RELU>(load(g + i, valid), v, scale, shift);
        dz_lanes = _mm512_add_ps(dz_lanes, dz);
        centred_lanes = _mm512_fmadd_ps(dz, _mm512_maskz_sub_ps(valid, v, centre), centred_lanes);
      }
      sum_dz += _mm512_reduce_add_ps(dz_lanes);
      sum_dz_centred += _mm512_reduce_add_ps(centred_lanes);
    }
    dbeta[c] = static_cast<float>(sum_dz);
    dgamma[c] = static_cast<float>(sum_dz_centred * a.invstd);
    // dx = k * dz + b * x + d, with k = gamma * invstd, b = -k * invstd * dgamma / M, d = -k * dbeta / M - b * mean.
    const double k = static_cast<double>(gamma[c]) * a.invstd;
    const double b = -k * a.invstd * (sum_dz_centred * a.invstd) / s.count();
    const double d = -k * sum_dz / s.count() - b * mean[c];
    const __m512 kv = _mm512_set1_ps(static_cast<float>(k)), bv = _mm512_set1_ps(static_cast<float>(b)),
                 dv = _mm512_set1_ps(static_cast<float>(d));
    for (int64_t n = 0; n < s.N; ++n) {
      const float *g = dy + s.plane(n, c), *in = x + s.plane(n, c);
      float *out = dx + s.plane(n, c);
      for (int64_t i = 0; i < s.HW; i += LANES) {
        const __mmask16 valid = lanes(s.HW - i);
        const __m512 v = load(in + i, valid);
        const __m512 dz = gradient_at_z<RELU>(load(g + i, valid), v, scale, shift);
        _mm512_mask_storeu_ps(out + i, valid, _mm512_fmadd_ps(kv, dz, _mm512_fmadd_ps(bv, v, dv)));
      }
    }
  });
}

// MindSpore's arguments: `image` indexes the (N, C, H, W) float32 tensors, `channel` the (C,) float32 ones,
// `settings` the (2,) float32 one; false when they do not fit together.
struct Arguments {
  int nparam;
  int *ndims;
  int64_t **shapes;
  const char **dtypes;

  bool shape(std::initializer_list<int> image, std::initializer_list<int> channel, int settings, Shape *s) const {
    const int x = *image.begin();
    if (nparam != static_cast<int>(image.size() + channel.size()) + 1) return false;
    if (!kernels::float32_of_rank(x, 1, 4, ndims, dtypes)) return false;
    *s = Shape{shapes[x][0], shapes[x][1], shapes[x][2] * shapes[x][3]};
    for (int k : image)
      if (!kernels::float32_of_rank(k, 1, 4, ndims, dtypes) || !std::equal(shapes[k], shapes[k] + 4, shapes[x]))
        return false;
    for (int k : channel)
      if (!kernels::float32_of_rank(k, 1, 1, ndims, dtypes) || shapes[k][0] != s->C) return false;
    return kernels::float32_of_rank(settings, 1, 1, ndims, dtypes) && shapes[settings][0] == 2 && s->count() > 0;
  }
};

template <bool RELU>
int run_forward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  Shape s;  // (x, gamma, beta, moving_mean, moving_variance, settings) -> (y, mean, variance)
  if (!Arguments{nparam, ndims, shapes, dtypes}.shape({0, 6}, {1, 2, 3, 4, 7, 8}, 5, &s)) return 1;
  auto in = [&](int k) { return static_cast<const float *>(params[k]); };
  auto out = [&](int k) { return static_cast<float *>(params[k]); };  // moving_mean, moving_variance too
  forward<RELU>(in(0), in(1), in(2), out(3), out(4), Settings{in(5)[0], in(5)[1]}, out(6), out(7), out(8), s);
  return 0;
}

template <bool RELU>
int run_backward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  Shape s;  // (dy, x, gamma, beta, mean, variance, settings) -> (dx, dgamma, dbeta)
  if (!Arguments{nparam, ndims, shapes, dtypes}.shape({1, 0, 7}, {2, 3, 4, 5, 8, 9}, 6, &s)) return 1;
  auto in = [&](int k) { return static_cast<const float *>(params[k]); };
  auto out = [&](int k) { return static_cast<float *>(params[k]); };
  backward<RELU>(in(0), in(1), in(2), in(3), in(4), in(5), Settings{in(6)[0], in(6)[1]}, out(7), out(8), out(9), s);
  return 0;
}

}  // namespace

#define ENTRY(name, run)                                                                                  \
  int name(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) { \
    return run(nparam, params, ndims, shapes, dtypes);                                                    \
  }

extern "C" {
ENTRY(BatchNormForward, run_forward<false>)
ENTRY(BatchNormReluForward, run_forward<true>)
ENTRY(BatchNormBackward, run_backward<false>)
ENTRY(BatchNormReluBackward, run_backward<true>)
}  // extern "C"
