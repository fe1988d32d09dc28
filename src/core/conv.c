/* Convolution and pooling: the fast float paths (im2col + sgemm) and the
 * double reference paths they are tested against. The mathematics is in
 * include/pathfinder/conv.h. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "pathfinder/conv.h"

int pf_conv_shape_init(pf_conv_shape *s, int in_c, int in_h, int in_w, int out_c, int k,
                       int stride, int pad, pf_error *err)
{
    memset(s, 0, sizeof *s);
    if (in_c < 1 || in_h < 1 || in_w < 1 || out_c < 1)
        return pf_fail(err, PF_EINPUT, "convolution: sizes must be positive (input %dx%dx%d, %d outputs)",
                       in_c, in_h, in_w, out_c);
    if (k < 1 || stride < 1 || pad < 0)
        return pf_fail(err, PF_EINPUT, "convolution: kernel %d, stride %d, padding %d: kernel and "
                       "stride must be positive and padding at least 0", k, stride, pad);
    if (2 * pad > k) /* PyTorch's limit too */
        return pf_fail(err, PF_EINPUT, "convolution: padding %d is more than half the kernel %d",
                       pad, k);
    if (k > in_h + 2 * pad || k > in_w + 2 * pad)
        return pf_fail(err, PF_EINPUT, "convolution: kernel %d is larger than its input %dx%d "
                       "(padding %d)", k, in_h, in_w, pad);
    *s = (pf_conv_shape){in_c, in_h, in_w, out_c, k, stride, pad,
                         (in_h + 2 * pad - k) / stride + 1, (in_w + 2 * pad - k) / stride + 1};
    return PF_OK;
}

int pf_pool_shape_init(pf_pool_shape *s, int c, int in_h, int in_w, int k, pf_error *err)
{
    memset(s, 0, sizeof *s);
    if (c < 1 || in_h < 1 || in_w < 1 || k < 1)
        return pf_fail(err, PF_EINPUT, "pooling: sizes must be positive (input %dx%dx%d, window %d)",
                       c, in_h, in_w, k);
    if (in_h % k || in_w % k)
        return pf_fail(err, PF_EINPUT, "pooling: window %d does not divide its input %dx%d", k,
                       in_h, in_w);
    *s = (pf_pool_shape){c, in_h, in_w, k, in_h / k, in_w / k};
    return PF_OK;
}

size_t pf_conv_in_size(const pf_conv_shape *s) { return (size_t)s->in_c * s->in_h * s->in_w; }
size_t pf_conv_out_size(const pf_conv_shape *s) { return (size_t)s->out_c * s->out_h * s->out_w; }
size_t pf_conv_weight_size(const pf_conv_shape *s)
{
    return (size_t)s->out_c * s->in_c * s->k * s->k;
}
/* cols and its gradient. */
size_t pf_conv_work_size(const pf_conv_shape *s)
{
    return 2 * (size_t)s->in_c * s->k * s->k * s->out_h * s->out_w;
}

/* The outputs x in [*xa, *xb) whose input column x*S + j - P lies inside
 * the input (the others read padding). */
static void valid_columns(const pf_conv_shape *s, int j, int *xa, int *xb)
{
    const int S = s->stride, off = j - s->pad;
    int a = off < 0 ? (-off + S - 1) / S : 0;
    int b = s->in_w - 1 - off < 0 ? 0 : (s->in_w - 1 - off) / S + 1;
    b = b < s->out_w ? b : s->out_w;
    *xa = a < b ? a : b;
    *xb = b;
}

void pf_conv_im2col(float *cols, const float *in, const pf_conv_shape *s)
{
    const int K = s->k, S = s->stride, P = s->pad, OH = s->out_h, OW = s->out_w;
    for (int c = 0; c < s->in_c; c++)
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++) {
                float *row = cols + ((size_t)(c * K + i) * K + j) * OH * OW;
                int xa, xb;
                valid_columns(s, j, &xa, &xb);
                for (int y = 0; y < OH; y++) {
                    int iy = y * S + i - P;
                    float *r = row + (size_t)y * OW;
                    if (iy < 0 || iy >= s->in_h || xa == xb) {
                        memset(r, 0, (size_t)OW * sizeof *r);
                        continue;
                    }
                    const float *src = in + ((size_t)c * s->in_h + iy) * s->in_w + (xa * S + j - P);
                    for (int x = 0; x < xa; x++) r[x] = 0.0f;
                    if (S == 1)
                        memcpy(r + xa, src, (size_t)(xb - xa) * sizeof *r);
                    else
                        for (int x = xa; x < xb; x++) r[x] = src[(size_t)(x - xa) * S];
                    for (int x = xb; x < OW; x++) r[x] = 0.0f;
                }
            }
}

/* din += the columns' gradient, scattered back: the transpose of im2col. */
static void col2im_add(float *din, const float *dcols, const pf_conv_shape *s)
{
    const int K = s->k, S = s->stride, P = s->pad, OH = s->out_h, OW = s->out_w;
    for (int c = 0; c < s->in_c; c++)
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++) {
                const float *row = dcols + ((size_t)(c * K + i) * K + j) * OH * OW;
                int xa, xb;
                valid_columns(s, j, &xa, &xb);
                for (int y = 0; y < OH; y++) {
                    int iy = y * S + i - P;
                    if (iy < 0 || iy >= s->in_h) continue;
                    float *dst = din + ((size_t)c * s->in_h + iy) * s->in_w + (xa * S + j - P);
                    const float *r = row + (size_t)y * OW;
                    if (S == 1)
                        for (int x = xa; x < xb; x++) dst[x - xa] += r[x];
                    else
                        for (int x = xa; x < xb; x++) dst[(size_t)(x - xa) * S] += r[x];
                }
            }
}

void pf_conv_forward(float *out, const float *in, const float *weight, const float *bias,
                     const pf_conv_shape *s, int B, float *work)
{
    const int N = s->out_c, CKK = s->in_c * s->k * s->k, OHW = s->out_h * s->out_w;
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * pf_conv_out_size(s);
        pf_conv_im2col(work, in + (size_t)b * pf_conv_in_size(s), s);
        /* out_b (N, OHW) = W (N, CKK) cols (CKK, OHW) */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, OHW, CKK, 1.0f, weight, CKK, work,
                    OHW, 0.0f, o, OHW);
        if (bias)
            for (int n = 0; n < N; n++)
                for (int p = 0; p < OHW; p++) o[(size_t)n * OHW + p] += bias[n];
    }
}

void pf_conv_backward(float *din, float *dweight, float *dbias, const float *dout,
                      const float *in, const float *weight, const pf_conv_shape *s, int B,
                      float *work)
{
    const int N = s->out_c, CKK = s->in_c * s->k * s->k, OHW = s->out_h * s->out_w;
    float *cols = work, *dcols = work + (size_t)CKK * OHW;
    if (din) memset(din, 0, (size_t)B * pf_conv_in_size(s) * sizeof *din);
    for (int b = 0; b < B; b++) {
        const float *g = dout + (size_t)b * pf_conv_out_size(s);
        if (dweight) {
            pf_conv_im2col(cols, in + (size_t)b * pf_conv_in_size(s), s);
            /* dW (N, CKK) += g (N, OHW) cols^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, CKK, OHW, 1.0f, g, OHW, cols,
                        OHW, 1.0f, dweight, CKK);
        }
        if (din) {
            /* dcols (CKK, OHW) = W^T g */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CKK, OHW, N, 1.0f, weight, CKK, g,
                        OHW, 0.0f, dcols, OHW);
            col2im_add(din + (size_t)b * pf_conv_in_size(s), dcols, s);
        }
    }
    if (dbias)
        for (int n = 0; n < N; n++) {
            /* in double, in eight lanes (which vectorize), then the lanes in order */
            double lane[8] = {0};
            for (int b = 0; b < B; b++) {
                const float *g = dout + (size_t)b * pf_conv_out_size(s) + (size_t)n * OHW;
                int p = 0;
                for (; p + 8 <= OHW; p += 8)
                    for (int q = 0; q < 8; q++) lane[q] += g[p + q];
                for (; p < OHW; p++) lane[p & 7] += g[p];
            }
            double sum = 0.0;
            for (int q = 0; q < 8; q++) sum += lane[q];
            dbias[n] += (float)sum;
        }
}

/* Pooling has no sum that float could round differently (the average is
 * taken in double), so one definition serves the fast path (float) and the
 * reference (double). Windows do not overlap: backward writes, it need not
 * add. */
static size_t pool_in(const pf_pool_shape *s) { return (size_t)s->c * s->in_h * s->in_w; }
static size_t pool_out(const pf_pool_shape *s) { return (size_t)s->c * s->out_h * s->out_w; }
static size_t pool_at(const pf_pool_shape *s, int c, int y, int x)
{
    return ((size_t)c * s->in_h + y) * s->in_w + x;
}

#define POOLS(T, SUFFIX)                                                                     \
    /* Window (c, y, x)'s winner: its first NaN, else its first largest entry in            \
     * row-major order. */                                                                  \
    static inline int winner##SUFFIX(const T *in, const pf_pool_shape *s, int c, int y,     \
                                     int x)                                                  \
    {                                                                                        \
        const int k = s->k, w = s->in_w;                                                     \
        int at0 = (int)pool_at(s, c, y * k, x * k), best = at0, nan = 0;                     \
        T top = in[at0];                                                                     \
        /* without branches on the data (selects), then again for a NaN */                  \
        for (int i = 0; i < k; i++)                                                          \
            for (int j = 0; j < k; j++) {                                                    \
                int at = at0 + i * w + j, gt;                                                \
                T v = in[at];                                                                \
                nan |= v != v;                                                               \
                gt = v > top;                                                                \
                top = gt ? v : top;                                                          \
                best = gt ? at : best;                                                       \
            }                                                                                \
        if (nan)                                                                             \
            for (int i = 0; i < k; i++)                                                      \
                for (int j = 0; j < k; j++)                                                  \
                    if (in[at0 + i * w + j] != in[at0 + i * w + j]) return at0 + i * w + j;  \
        return best;                                                                         \
    }                                                                                        \
    /* A row of 2x2 windows in one pass that vectorizes (the usual pooling);   \
     * 0 if it holds a NaN, which the general path then handles. */                         \
    static int pool2_row##SUFFIX(T *out, int *arg, const T *x, const pf_pool_shape *s, int c, \
                                 int y)                                                      \
    {                                                                                        \
        int at0 = (int)pool_at(s, c, 2 * y, 0), w = s->in_w, nan = 0;                        \
        const T *r0 = x + at0, *r1 = r0 + w;                                                 \
        for (int q = 0; q < s->out_w; q++) {                                                 \
            T a = r0[2 * q], b = r0[2 * q + 1], e = r1[2 * q], f = r1[2 * q + 1];            \
            nan |= (a != a) | (b != b) | (e != e) | (f != f);                                \
            int i = 2 * q;                                                                   \
            T top = a;                                                                       \
            i = b > top ? 2 * q + 1 : i, top = b > top ? b : top;                            \
            i = e > top ? w + 2 * q : i, top = e > top ? e : top;                            \
            i = f > top ? w + 2 * q + 1 : i, top = f > top ? f : top;                        \
            out[q] = top;                                                                    \
            arg[q] = at0 + i;                                                                \
        }                                                                                    \
        return !nan;                                                                         \
    }                                                                                        \
    void pf_maxpool_forward##SUFFIX(T *out, int *arg, const T *in, const pf_pool_shape *s,  \
                                    int B)                                                   \
    {                                                                                        \
        for (int b = 0; b < B; b++) {                                                        \
            const T *x = in + (size_t)b * pool_in(s);                                        \
            size_t o = (size_t)b * pool_out(s);                                              \
            for (int c = 0; c < s->c; c++)                                                   \
                for (int y = 0; y < s->out_h; y++, o += (size_t)s->out_w) {                  \
                    if (s->k == 2 && pool2_row##SUFFIX(out + o, arg + o, x, s, c, y)) continue; \
                    for (int w = 0; w < s->out_w; w++) {                                     \
                        arg[o + w] = winner##SUFFIX(x, s, c, y, w);                          \
                        out[o + w] = x[arg[o + w]];                                          \
                    }                                                                        \
                }                                                                            \
        }                                                                                    \
    }                                                                                        \
    void pf_maxpool_backward##SUFFIX(T *din, const T *dout, const int *arg,                 \
                                     const pf_pool_shape *s, int B)                          \
    {                                                                                        \
        memset(din, 0, (size_t)B * pool_in(s) * sizeof *din);                                \
        for (int b = 0; b < B; b++)                                                          \
            for (size_t o = 0; o < pool_out(s); o++) {                                       \
                size_t at = (size_t)b * pool_out(s) + o;                                     \
                din[(size_t)b * pool_in(s) + (size_t)arg[at]] = dout[at];                    \
            }                                                                                \
    }                                                                                        \
    void pf_avgpool_forward##SUFFIX(T *out, const T *in, const pf_pool_shape *s, int B)     \
    {                                                                                        \
        for (int b = 0; b < B; b++) {                                                        \
            const T *x = in + (size_t)b * pool_in(s);                                        \
            T *o = out + (size_t)b * pool_out(s);                                            \
            for (int c = 0; c < s->c; c++)                                                   \
                for (int y = 0; y < s->out_h; y++)                                           \
                    for (int w = 0; w < s->out_w; w++) {                                     \
                        double sum = 0.0;                                                    \
                        for (int i = 0; i < s->k; i++)                                       \
                            for (int j = 0; j < s->k; j++)                                   \
                                sum += x[pool_at(s, c, y * s->k + i, w * s->k + j)];         \
                        *o++ = (T)(sum / ((double)s->k * s->k));                             \
                    }                                                                        \
        }                                                                                    \
    }                                                                                        \
    void pf_avgpool_backward##SUFFIX(T *din, const T *dout, const pf_pool_shape *s, int B)  \
    {                                                                                        \
        for (int b = 0; b < B; b++) {                                                        \
            T *d = din + (size_t)b * pool_in(s);                                             \
            const T *g = dout + (size_t)b * pool_out(s);                                     \
            for (int c = 0; c < s->c; c++)                                                   \
                for (int y = 0; y < s->in_h; y++)                                            \
                    for (int x = 0; x < s->in_w; x++)                                        \
                        d[pool_at(s, c, y, x)] =                                             \
                            (T)(g[((size_t)c * s->out_h + y / s->k) * s->out_w + x / s->k] / \
                                ((double)s->k * s->k));                                      \
        }                                                                                    \
    }
POOLS(float, )
POOLS(double, _ref)

/* ---------------------------------------------------------- reference */

/* The input at (c, iy, ix) of a padded convolution: 0 outside. */
static double padded(const double *in, const pf_conv_shape *s, int c, int iy, int ix)
{
    if (iy < 0 || iy >= s->in_h || ix < 0 || ix >= s->in_w) return 0.0;
    return in[((size_t)c * s->in_h + iy) * s->in_w + ix];
}

void pf_conv_forward_ref(double *out, const double *in, const double *weight,
                         const double *bias, const pf_conv_shape *s, int B)
{
    const int K = s->k;
    for (int b = 0; b < B; b++) {
        const double *x = in + (size_t)b * pf_conv_in_size(s);
        double *o = out + (size_t)b * pf_conv_out_size(s);
        for (int n = 0; n < s->out_c; n++)
            for (int y = 0; y < s->out_h; y++)
                for (int w = 0; w < s->out_w; w++) {
                    double z = bias ? bias[n] : 0.0;
                    for (int c = 0; c < s->in_c; c++)
                        for (int i = 0; i < K; i++)
                            for (int j = 0; j < K; j++)
                                z += weight[(((size_t)n * s->in_c + c) * K + i) * K + j] *
                                     padded(x, s, c, y * s->stride + i - s->pad,
                                            w * s->stride + j - s->pad);
                    *o++ = z;
                }
    }
}

void pf_conv_backward_ref(double *din, double *dweight, double *dbias, const double *dout,
                          const double *in, const double *weight, const pf_conv_shape *s, int B)
{
    const int K = s->k;
    if (din) memset(din, 0, (size_t)B * pf_conv_in_size(s) * sizeof *din);
    for (int b = 0; b < B; b++) {
        const double *x = in + (size_t)b * pf_conv_in_size(s);
        const double *g = dout + (size_t)b * pf_conv_out_size(s);
        double *dx = din ? din + (size_t)b * pf_conv_in_size(s) : NULL;
        for (int n = 0; n < s->out_c; n++)
            for (int y = 0; y < s->out_h; y++)
                for (int w = 0; w < s->out_w; w++) {
                    double gz = g[((size_t)n * s->out_h + y) * s->out_w + w];
                    if (dbias) dbias[n] += gz;
                    for (int c = 0; c < s->in_c; c++)
                        for (int i = 0; i < K; i++)
                            for (int j = 0; j < K; j++) {
                                int iy = y * s->stride + i - s->pad, ix = w * s->stride + j - s->pad;
                                size_t wi = (((size_t)n * s->in_c + c) * K + i) * K + j;
                                if (dweight) dweight[wi] += gz * padded(x, s, c, iy, ix);
                                if (dx && iy >= 0 && iy < s->in_h && ix >= 0 && ix < s->in_w)
                                    dx[((size_t)c * s->in_h + iy) * s->in_w + ix] += gz * weight[wi];
                            }
                }
    }
}
