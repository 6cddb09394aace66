// Grouped 3x3 convolution, padding 1, stride 1 or 2, NCHW float32, on x86-64 CPUs with AVX-512: the forward, the
// input gradient and the weight gradient, as MindSpore custom operators (func_type "aot").
//
// Why: on the CPU MindSpore 2.7 runs every convolution through oneDNN's gemm:jit on plain NCHW. A grouped 3x3 with
// 4 to 32 channels per group becomes 32 tiny matrix products per image and runs at ~20 GFLOP/s, against ~180 for a
// 1x1 convolution: in resnext50_32x4d these convolutions are 5% of the arithmetic and a third of a training step.
// Here each group is computed directly: for groups of 4 or 8 channels the vector lanes hold 16 output positions of
// a row, for groups of 16 or 32 channels they hold 16 output channels.
//
// Entry points (MindSpore's aot signature: nparam, params, ndims, shapes, dtypes, stream, extra; 0 is success):
//   GroupedConv3x3Forward{1,2}        (x, w) -> y
//   GroupedConv3x3ForwardBias{1,2}    (x, w, b) -> y + b    (BatchNorm folded)
//   GroupedConv3x3BackwardInput{1,2}  (dy, w, x) -> dx       (x only for its shape)
//   GroupedConv3x3BackwardWeight{1,2} (dy, x, w) -> dw       (w only for its shape)
// The digit is the stride; the group count is C / w.shape[1].
// Sums run in another order than oneDNN's: results agree to float32 rounding, not bit for bit.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "parallel.h"

namespace {

constexpr int LANES = 16;  // floats in an AVX-512 vector

struct Problem {
  int64_t N, C, H, W;    // input
  int64_t Co, groups;    // output channels, groups
  int64_t Ho, Wo;        // output size
  int stride;
  int64_t Cg() const { return C / groups; }
  int64_t Cog() const { return Co / groups; }
};

using kernels::parallel_for;

// One image's group of channels, zero-padded by one row above and below and one column left, with `slack` more
// zero columns on the right so that whole vectors can be read past the edge. For stride 2 each row is stored as
// its even columns, then its odd columns, so that tap kx of output column ox, padded column 2*ox + kx, is a
// contiguous read: even[ox + kx / 2] for kx = 0, 2 and odd[ox] for kx = 1.
class PaddedGroup {
 public:
  PaddedGroup(int64_t channels, int64_t H, int64_t W, int stride, int64_t slack)
      : rows_(H + 2), stride_(stride) {
    half_ = stride == 1 ? 0 : (W + 2) / 2 + 1 + slack;
    width_ = stride == 1 ? W + 2 + slack : 2 * half_;
    data_.assign(channels * rows_ * width_, 0.f);
  }

  void load(const float *x, int64_t channels, int64_t H, int64_t W) {
    for (int64_t i = 0; i < channels; ++i)
      for (int64_t r = 0; r < H; ++r) {
        const float *src = x + (i * H + r) * W;
        float *dst = row(i, r + 1);
        if (stride_ == 1) {
          std::memcpy(dst + 1, src, W * sizeof(float));
        } else {
          for (int64_t c = 0; c < W; ++c) {
            const int64_t padded = c + 1;
            (padded % 2 ? dst + half_ : dst)[padded / 2] = src[c];
          }
        }
      }
  }

  float *row(int64_t channel, int64_t padded_row) { return &data_[(channel * rows_ + padded_row) * width_]; }

  // Where tap kx of output column 0 starts in a padded row.
  const float *tap(const float *padded_row, int kx) const {
    if (stride_ == 1) return padded_row + kx;
    return kx == 1 ? padded_row + half_ : padded_row + kx / 2;
  }

 private:
  int64_t rows_, width_, half_;
  int stride_;
  std::vector<float> data_;
};

// Forward for one (image, group), output positions in the lanes: O output channels x X vectors of 16 columns of one
// output row per block. For groups of few channels on large maps (stages 1 and 2 of the ImageNet networks).
template <int O, int X>
void forward_by_columns(const float *x, const float *w, const float *bias, float *y, const Problem &p) {
  constexpr int64_t SPAN = LANES * X;
  const int64_t Cg = p.Cg(), Cog = p.Cog();
  const int64_t spans = (p.Wo + SPAN - 1) / SPAN;
  PaddedGroup in(Cg, p.H, p.W, p.stride, spans * SPAN * p.stride);
  in.load(x, Cg, p.H, p.W);
  alignas(64) float out[SPAN];
  for (int64_t o0 = 0; o0 < Cog; o0 += O) {
    for (int64_t oy = 0; oy < p.Ho; ++oy) {
      for (int64_t s = 0; s < spans; ++s) {
        __m512 acc[O][X];
        for (int o = 0; o < O; ++o)
          for (int v = 0; v < X; ++v) acc[o][v] = bias ? _mm512_set1_ps(bias[o0 + o]) : _mm512_setzero_ps();
        for (int64_t i = 0; i < Cg; ++i) {
          for (int ky = 0; ky < 3; ++ky) {
            const float *row = in.row(i, oy * p.stride + ky);
            for (int kx = 0; kx < 3; ++kx) {
              const float *src = in.tap(row, kx) + s * SPAN;
              __m512 xv[X];
              for (int v = 0; v < X; ++v) xv[v] = _mm512_loadu_ps(src + LANES * v);
              const float *k = w + ((o0 * Cg + i) * 3 + ky) * 3 + kx;  // w[o0][i][ky][kx]
#pragma GCC unroll 8
              for (int o = 0; o < O; ++o) {
                const __m512 weight = _mm512_set1_ps(k[o * Cg * 9]);
                for (int v = 0; v < X; ++v) acc[o][v] = _mm512_fmadd_ps(weight, xv[v], acc[o][v]);
              }
            }
          }
        }
        const int64_t n = std::min(SPAN, p.Wo - s * SPAN);
        for (int o = 0; o < O; ++o) {
          for (int v = 0; v < X; ++v) _mm512_store_ps(out + LANES * v, acc[o][v]);
          std::memcpy(y + ((o0 + o) * p.Ho + oy) * p.Wo + s * SPAN, out, n * sizeof(float));
        }
      }
    }
  }
}

// Forward for one (image, group), output channels in the lanes: V vectors of 16 channels x B output columns per
// block; wt is the group's weight as (i, ky, kx, o). For groups of 16 or 32 channels on small maps.
template <int V, int B>
void forward_by_channels(const float *x, const float *wt, const float *bias, float *y, const Problem &p) {
  constexpr int COG = LANES * V;
  const int64_t Cg = p.Cg();
  const int64_t blocks = (p.Wo + B - 1) / B;
  PaddedGroup in(Cg, p.H, p.W, 1, blocks * B * p.stride);  // plain rows: columns are read one at a time
  in.load(x, Cg, p.H, p.W);
  alignas(64) float out[B][COG];
  for (int64_t oy = 0; oy < p.Ho; ++oy) {
    for (int64_t ox0 = 0; ox0 < p.Wo; ox0 += B) {
      __m512 acc[B][V];
      for (int b = 0; b < B; ++b)
        for (int v = 0; v < V; ++v) acc[b][v] = bias ? _mm512_loadu_ps(bias + LANES * v) : _mm512_setzero_ps();
      for (int64_t i = 0; i < Cg; ++i) {
        for (int ky = 0; ky < 3; ++ky) {
          const float *row = in.row(i, oy * p.stride + ky) + ox0 * p.stride;
          for (int kx = 0; kx < 3; ++kx) {
            const float *k = wt + ((i * 3 + ky) * 3 + kx) * COG;
            __m512 weight[V];
            for (int v = 0; v < V; ++v) weight[v] = _mm512_loadu_ps(k + LANES * v);
#pragma GCC unroll 16
            for (int b = 0; b < B; ++b) {
              const __m512 xv = _mm512_set1_ps(row[b * p.stride + kx]);
              for (int v = 0; v < V; ++v) acc[b][v] = _mm512_fmadd_ps(weight[v], xv, acc[b][v]);
            }
          }
        }
      }
      for (int b = 0; b < B; ++b)
        for (int v = 0; v < V; ++v) _mm512_store_ps(&out[b][LANES * v], acc[b][v]);
      const int n = static_cast<int>(std::min<int64_t>(B, p.Wo - ox0));
      for (int o = 0; o < COG; ++o)
        for (int b = 0; b < n; ++b) y[(o * p.Ho + oy) * p.Wo + ox0 + b] = out[b][o];
    }
  }
}

// What this file computes: groups of equal input and output width, a multiple of 4 up to 32 (where oneDNN's
// gemm:jit is slow; wider groups are large matrix products it runs well).
bool supported(const Problem &p) {
  return p.groups > 0 && p.C % p.groups == 0 && p.Co == p.C && p.Cog() % 4 == 0 && p.Cog() <= 2 * LANES &&
         (p.stride == 1 || p.stride == 2);
}

bool by_channels(const Problem &p) { return p.Cog() % LANES == 0; }

// y = conv(x, w) (+ bias[o] where bias is not null: BatchNorm folded for inference).
void forward(const float *x, const float *w, const float *bias, float *y, const Problem &p) {
  const int64_t Cg = p.Cg(), Cog = p.Cog();
  std::vector<float> wt;
  if (by_channels(p)) {  // the weight as (g, i, ky, kx, o): a group's 16 or 32 output channels side by side
    wt.resize(p.Co * Cg * 9);
    for (int64_t g = 0; g < p.groups; ++g)
      for (int64_t o = 0; o < Cog; ++o)
        for (int64_t i = 0; i < Cg; ++i)
          for (int k = 0; k < 9; ++k) wt[((g * Cg + i) * 9 + k) * Cog + o] = w[((g * Cog + o) * Cg + i) * 9 + k];
  }
  parallel_for(p.N * p.groups, [&](int64_t task) {
    const int64_t n = task / p.groups, g = task % p.groups;
    const float *xg = x + (n * p.C + g * Cg) * p.H * p.W;
    float *yg = y + (n * p.Co + g * Cog) * p.Ho * p.Wo;
    const float *bg = bias ? bias + g * Cog : nullptr;
    if (by_channels(p)) {
      const float *wg = wt.data() + g * Cg * 9 * Cog;
      if (Cog == LANES) forward_by_channels<1, 14>(xg, wg, bg, yg, p);
      else forward_by_channels<2, 7>(xg, wg, bg, yg, p);
    } else {
      const float *wg = w + g * Cog * Cg * 9;
      if (Cog % 8 == 0 && p.Wo <= 2 * LANES) forward_by_columns<8, 2>(xg, wg, bg, yg, p);
      else if (p.Wo > 2 * LANES) forward_by_columns<4, 4>(xg, wg, bg, yg, p);
      else forward_by_columns<4, 2>(xg, wg, bg, yg, p);
    }
  });
}

// The input gradient is a stride-1 convolution of the output gradient with each group's weight transposed (input
// and output channels swapped) and turned 180 degrees; for stride 2 the output gradient is first spread onto the
// even rows and columns of an input-sized map of zeros.
void backward_input(const float *dy, const float *w, float *dx, const Problem &p) {
  const int64_t Cg = p.Cg(), Cog = p.Cog();
  std::vector<float> wt(p.C * Cog * 9);  // (g, i, o, 2 - ky, 2 - kx)
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t o = 0; o < Cog; ++o)
      for (int64_t i = 0; i < Cg; ++i)
        for (int k = 0; k < 9; ++k) wt[((g * Cg + i) * Cog + o) * 9 + 8 - k] = w[((g * Cog + o) * Cg + i) * 9 + k];
  const Problem t{p.N, p.Co, p.H, p.W, p.C, p.groups, p.H, p.W, 1};
  if (p.stride == 1) {
    forward(dy, wt.data(), nullptr, dx, t);
    return;
  }
  std::vector<float> spread(p.N * p.Co * p.H * p.W, 0.f);
  parallel_for(p.N * p.Co, [&](int64_t plane) {
    for (int64_t oy = 0; oy < p.Ho; ++oy)
      for (int64_t ox = 0; ox < p.Wo; ++ox)
        spread[(plane * p.H + 2 * oy) * p.W + 2 * ox] = dy[(plane * p.Ho + oy) * p.Wo + ox];
  });
  forward(spread.data(), wt.data(), nullptr, dx, t);
}

// The weight gradient of one group: dw[o][i][ky][kx] = sum over images and output positions of
// dy[o][oy][ox] * x_padded[i][oy * stride + ky][ox * stride + kx]. For groups of 4 or 8 channels on large maps:
// 4 output channels x 3 taps (one kernel row) per block, 16 output columns per vector, lane sums kept apart until
// the end.
void backward_weight_group(const float *dy, const float *x, float *dw, int64_t g, const Problem &p) {
  const int64_t Cg = p.Cg(), Cog = p.Cog();
  const int64_t spans = (p.Wo + LANES - 1) / LANES;
  const __mmask16 tail = static_cast<__mmask16>((1u << (p.Wo - (spans - 1) * LANES)) - 1);
  PaddedGroup in(Cg, p.H, p.W, p.stride, spans * LANES * p.stride);
  std::vector<float> sums(Cog * Cg * 9 * LANES, 0.f);  // (o, i, ky, kx, lane)
  auto sum = [&](int64_t o, int64_t i, int ky, int kx) { return &sums[(((o * Cg + i) * 3 + ky) * 3 + kx) * LANES]; };
  for (int64_t n = 0; n < p.N; ++n) {
    in.load(x + (n * p.C + g * Cg) * p.H * p.W, Cg, p.H, p.W);
    const float *dyg = dy + (n * p.Co + g * Cog) * p.Ho * p.Wo;
    for (int64_t o0 = 0; o0 < Cog; o0 += 4) {
      for (int64_t i = 0; i < Cg; ++i) {
        for (int ky = 0; ky < 3; ++ky) {
          __m512 acc[4][3];
          for (int o = 0; o < 4; ++o)
            for (int kx = 0; kx < 3; ++kx) acc[o][kx] = _mm512_loadu_ps(sum(o0 + o, i, ky, kx));
          for (int64_t oy = 0; oy < p.Ho; ++oy) {
            const float *row = in.row(i, oy * p.stride + ky);
            for (int64_t s = 0; s < spans; ++s) {
              const __mmask16 mask = s == spans - 1 ? tail : static_cast<__mmask16>(0xFFFF);
              __m512 xv[3], gv[4];
              for (int kx = 0; kx < 3; ++kx) xv[kx] = _mm512_maskz_loadu_ps(mask, in.tap(row, kx) + s * LANES);
              for (int o = 0; o < 4; ++o)
                gv[o] = _mm512_maskz_loadu_ps(mask, dyg + ((o0 + o) * p.Ho + oy) * p.Wo + s * LANES);
              for (int o = 0; o < 4; ++o)
                for (int kx = 0; kx < 3; ++kx) acc[o][kx] = _mm512_fmadd_ps(gv[o], xv[kx], acc[o][kx]);
            }
          }
          for (int o = 0; o < 4; ++o)
            for (int kx = 0; kx < 3; ++kx) _mm512_storeu_ps(sum(o0 + o, i, ky, kx), acc[o][kx]);
        }
      }
    }
  }
  for (int64_t k = 0; k < Cog * Cg * 9; ++k) dw[g * Cog * Cg * 9 + k] = _mm512_reduce_add_ps(_mm512_loadu_ps(&sums[k * LANES]));
}

// The same for groups of 16 or 32 channels on small maps, output channels in the lanes: the output gradient is
// turned to (position, channel), and the 9 taps of one input channel x V vectors of 16 output channels are summed in
// registers over every position of every image.
template <int V>
void backward_weight_group_by_channels(const float *dy, const float *x, float *dw, int64_t g, const Problem &p) {
  constexpr int COG = LANES * V;
  const int64_t Cg = p.Cg(), positions = p.Ho * p.Wo;
  PaddedGroup in(Cg, p.H, p.W, 1, 0);
  std::vector<float> dyt(positions * COG);       // (position, o)
  std::vector<float> sums(Cg * 9 * COG, 0.f);    // (i, ky, kx, o)
  for (int64_t n = 0; n < p.N; ++n) {
    in.load(x + (n * p.C + g * Cg) * p.H * p.W, Cg, p.H, p.W);
    const float *dyg = dy + (n * p.Co + g * COG) * positions;
    for (int o = 0; o < COG; ++o)
      for (int64_t q = 0; q < positions; ++q) dyt[q * COG + o] = dyg[o * positions + q];
    for (int64_t i = 0; i < Cg; ++i) {
      __m512 acc[9][V];
      for (int k = 0; k < 9; ++k)
        for (int v = 0; v < V; ++v) acc[k][v] = _mm512_loadu_ps(&sums[(i * 9 + k) * COG + LANES * v]);
      for (int64_t oy = 0; oy < p.Ho; ++oy) {
        for (int64_t ox = 0; ox < p.Wo; ++ox) {
          __m512 grad[V];
          for (int v = 0; v < V; ++v) grad[v] = _mm512_loadu_ps(&dyt[(oy * p.Wo + ox) * COG + LANES * v]);
          for (int ky = 0; ky < 3; ++ky) {
            const float *row = in.row(i, oy * p.stride + ky) + ox * p.stride;
            for (int kx = 0; kx < 3; ++kx) {
              const __m512 xv = _mm512_set1_ps(row[kx]);
              for (int v = 0; v < V; ++v) acc[ky * 3 + kx][v] = _mm512_fmadd_ps(grad[v], xv, acc[ky * 3 + kx][v]);
            }
          }
        }
      }
      for (int k = 0; k < 9; ++k)
        for (int v = 0; v < V; ++v) _mm512_storeu_ps(&sums[(i * 9 + k) * COG + LANES * v], acc[k][v]);
    }
  }
  for (int o = 0; o < COG; ++o)
    for (int64_t i = 0; i < Cg; ++i)
      for (int k = 0; k < 9; ++k) dw[((g * COG + o) * Cg + i) * 9 + k] = sums[(i * 9 + k) * COG + o];
}

void backward_weight(const float *dy, const float *x, float *dw, const Problem &p) {
  parallel_for(p.groups, [&](int64_t g) {
    if (p.Cog() == LANES) backward_weight_group_by_channels<1>(dy, x, dw, g, p);
    else if (p.Cog() == 2 * LANES) backward_weight_group_by_channels<2>(dy, x, dw, g, p);
    else backward_weight_group(dy, x, dw, g, p);
  });
}

// The problem from an input shape (N, C, H, W), a weight shape (Co, C / groups, 3, 3), an output size and the
// stride; false when the shapes do not fit together or this file does not compute them (the caller then raises).
bool describe(const int64_t *input, const int64_t *weight, int64_t Ho, int64_t Wo, int stride, Problem *p) {
  if (weight[1] <= 0 || input[1] % weight[1] != 0 || weight[2] != 3 || weight[3] != 3) return false;
  *p = Problem{input[0], input[1], input[2], input[3], weight[0], input[1] / weight[1], Ho, Wo, stride};
  return Ho == (input[2] - 1) / stride + 1 && Wo == (input[3] - 1) / stride + 1 && supported(*p);
}

bool float32_4d(int first, int count, int *ndims, const char **dtypes) {
  return kernels::float32_of_rank(first, count, 4, ndims, dtypes);
}

int run_forward(int stride, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  Problem p;  // (x, w) -> y
  if (nparam != 3 || !float32_4d(0, nparam, ndims, dtypes) ||
      !describe(shapes[0], shapes[1], shapes[2][2], shapes[2][3], stride, &p))
    return 1;
  forward(static_cast<const float *>(params[0]), static_cast<const float *>(params[1]), nullptr,
          static_cast<float *>(params[2]), p);
  return 0;
}

int run_forward_bias(int stride, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  Problem p;  // (x, w, b) -> y
  if (nparam != 4 || !float32_4d(0, 2, ndims, dtypes) || !float32_4d(3, 1, ndims, dtypes) ||
      !describe(shapes[0], shapes[1], shapes[3][2], shapes[3][3], stride, &p) ||
      !kernels::float32_of_rank(2, 1, 1, ndims, dtypes) || shapes[2][0] != p.Co)
    return 1;
  forward(static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
          static_cast<const float *>(params[2]), static_cast<float *>(params[3]), p);
  return 0;
}

int run_backward_input(int stride, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  Problem p;  // (dy, w, x) -> dx
  if (nparam != 4 || !float32_4d(0, nparam, ndims, dtypes) ||
      !describe(shapes[2], shapes[1], shapes[0][2], shapes[0][3], stride, &p))
    return 1;
  backward_input(static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
                 static_cast<float *>(params[3]), p);
  return 0;
}

int run_backward_weight(int stride, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  Problem p;  // (dy, x, w) -> dw
  if (nparam != 4 || !float32_4d(0, nparam, ndims, dtypes) ||
      !describe(shapes[1], shapes[2], shapes[0][2], shapes[0][3], stride, &p))
    return 1;
  backward_weight(static_cast<const float *>(params[0]), static_cast<const float *>(params[1]),
                  static_cast<float *>(params[3]), p);
  return 0;
}

}  // namespace

// One entry point per stride: MindSpore keys a custom operator by its function, so the stride must be in the name.
#define ENTRY(name, run, stride)                                                                          \
  int name(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *) { \
    return run(stride, nparam, params, ndims, shapes, dtypes);                                            \
  }

extern "C" {
ENTRY(GroupedConv3x3Forward1, run_forward, 1)
ENTRY(GroupedConv3x3Forward2, run_forward, 2)
ENTRY(GroupedConv3x3ForwardBias1, run_forward_bias, 1)
ENTRY(GroupedConv3x3ForwardBias2, run_forward_bias, 2)
ENTRY(GroupedConv3x3BackwardInput1, run_backward_input, 1)
ENTRY(GroupedConv3x3BackwardInput2, run_backward_input, 2)
ENTRY(GroupedConv3x3BackwardWeight1, run_backward_weight, 1)
ENTRY(GroupedConv3x3BackwardWeight2, run_backward_weight, 2)
}  // extern "C"
