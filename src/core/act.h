/* Activations, defined once: the fast float path (mlp.c, hessian.c) and the
 * double reference path (reference.c, pf_ref_hvp). Internal to src/core. */
#ifndef PATHFINDER_CORE_ACT_H
#define PATHFINDER_CORE_ACT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "pathfinder/core.h"

/* exp(x) in float, written so that loops over it vectorize: x = n ln2 + r
 * with |r| <= ln2/2 (ln2 split in two parts for an exact reduction), e^r by
 * its degree-6 Taylor polynomial (truncation < 2e-8 relative), and 2^n put
 * into the exponent bits. Within 2 ulp of expf over [-87, 88]. */
static inline float exp_vec(float x)
{
    /* Clamped to [-87, 88] (which saturates the sigmoid as expf does); a NaN
     * is clamped too, keeping the integer conversion defined, and passed
     * through at the end. */
    float c = x >= -87.0f ? (x <= 88.0f ? x : 88.0f) : -87.0f;
    /* Adding 1.5 * 2^23 rounds to the nearest integer (ties to even). */
    float n = (c * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = c - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union { int32_t i; float f; } scale = {.i = ((int32_t)n + 127) * (1 << 23)};
    return x == x ? p * scale.f : x;
}

static inline void activate(pf_act act, float *restrict a, const float *restrict z, size_t n)
{
    switch (act) {
    case PF_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) a[i] = 1.0f / (1.0f + exp_vec(-z[i]));
        break;
    case PF_ACT_TANH:
        for (size_t i = 0; i < n; i++) a[i] = tanhf(z[i]);
        break;
    case PF_ACT_RELU:
        for (size_t i = 0; i < n; i++) a[i] = z[i] > 0.0f ? z[i] : 0.0f;
        break;
    case PF_ACT_LINEAR:
        memcpy(a, z, n * sizeof *a);
        break;
    }
}

/* d *= act'(z), written in terms of a = act(z) where that is cheaper. */
static inline void times_act_grad(pf_act act, float *d, const float *z, const float *a, size_t n)
{
    switch (act) {
    case PF_ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) d[i] *= a[i] * (1.0f - a[i]);
        break;
    case PF_ACT_TANH:
        for (size_t i = 0; i < n; i++) d[i] *= 1.0f - a[i] * a[i];
        break;
    case PF_ACT_RELU:
        for (size_t i = 0; i < n; i++) d[i] = z[i] > 0.0f ? d[i] : 0.0f;
        break;
    case PF_ACT_LINEAR:
        break;
    }
}

/* The reference path's activations in double: a = f(z), d1 = f'(z),
 * d2 = f''(z) (the R-operator needs the second derivative). */
static inline void act_derivs(pf_act act, double z, double *a, double *d1, double *d2)
{
    switch (act) {
    case PF_ACT_SIGMOID: {
        double s = 1.0 / (1.0 + exp(-z));
        *a = s, *d1 = s * (1.0 - s), *d2 = s * (1.0 - s) * (1.0 - 2.0 * s);
        return;
    }
    case PF_ACT_TANH: {
        double t = tanh(z);
        *a = t, *d1 = 1.0 - t * t, *d2 = -2.0 * t * (1.0 - t * t);
        return;
    }
    case PF_ACT_RELU:
        *a = z > 0.0 ? z : 0.0, *d1 = z > 0.0 ? 1.0 : 0.0, *d2 = 0.0;
        return;
    case PF_ACT_LINEAR: break;
    }
    *a = z, *d1 = 1.0, *d2 = 0.0;
}

#endif
