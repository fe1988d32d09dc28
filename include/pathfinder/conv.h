/* Convolution and pooling kernels of the numerical core: the building
 * blocks of convolutional models. Tensors are NCHW floats, batch first,
 * as in PyTorch; a convolution's weight is [out, in, kh, kw] and its bias
 * [out], so a flat parameter vector in PyTorch order holds them as is.
 *
 *   conv:  out[b,n,y,x] = bias[n] + sum_{c,i,j} w[n,c,i,j] in[b,c,y*S+i-P,x*S+j-P]
 *          (zero outside the input)
 *   pool:  square windows of size K, stride K, which must tile the input;
 *          max pooling routes each window's gradient to its first largest
 *          entry in row-major order (a NaN counts as largest, as in PyTorch),
 *          average pooling spreads it evenly.
 *
 * The fast paths (float) lower convolution to sgemm through im2col, one
 * sample at a time; the reference paths (double, plain loops) are the
 * readable definitions they are tested against, and the subject of the
 * finite-difference checks. Pooling is one definition for both types.
 * None of these functions allocates.
 */
#ifndef PATHFINDER_CONV_H
#define PATHFINDER_CONV_H

#include <stddef.h>

#include "pathfinder/core.h"

/* pf_conv_shape and pf_pool_shape are in core.h (a model holds them). */

/* PF_EINPUT, with the sizes in the message, when the kernel (with its
 * padding) is larger than the input, or a size is not positive. */
int pf_conv_shape_init(pf_conv_shape *s, int in_c, int in_h, int in_w, int out_c, int k,
                       int stride, int pad, pf_error *err);
/* PF_EINPUT when K does not divide the input's height and width. */
int pf_pool_shape_init(pf_pool_shape *s, int c, int in_h, int in_w, int k, pf_error *err);

size_t pf_conv_in_size(const pf_conv_shape *s);     /* floats of one input sample */
size_t pf_conv_out_size(const pf_conv_shape *s);    /* floats of one output sample */
size_t pf_conv_weight_size(const pf_conv_shape *s); /* out * in * k * k */
size_t pf_conv_work_size(const pf_conv_shape *s);   /* floats of workspace the fast paths need */

/* cols (in_c*k*k, out_h*out_w) of one sample: row (c*k + i)*k + j holds
 * in[c, y*S+i-P, x*S+j-P] at column y*out_w + x. */
void pf_conv_im2col(float *cols, const float *in, const pf_conv_shape *s);

/* out (B, out_c, out_h, out_w) from in (B, in_c, in_h, in_w); bias may be NULL. */
void pf_conv_forward(float *out, const float *in, const float *weight, const float *bias,
                     const pf_conv_shape *s, int B, float *work);
/* Accumulates dweight and dbias (each unless NULL) from dout; writes din
 * unless NULL (it is overwritten, not accumulated). in is read only for
 * dweight. */
void pf_conv_backward(float *din, float *dweight, float *dbias, const float *dout,
                      const float *in, const float *weight, const pf_conv_shape *s, int B,
                      float *work);

/* Max pooling: out (B, c, out_h, out_w), arg the flat index in the sample's
 * input of each window's winner (kept for backward and the R-operator). */
void pf_maxpool_forward(float *out, int *arg, const float *in, const pf_pool_shape *s, int B);
/* din overwritten: dout at each winner, 0 elsewhere. */
void pf_maxpool_backward(float *din, const float *dout, const int *arg, const pf_pool_shape *s,
                         int B);
void pf_avgpool_forward(float *out, const float *in, const pf_pool_shape *s, int B);
void pf_avgpool_backward(float *din, const float *dout, const pf_pool_shape *s, int B);

/* The reference paths, in double. */
void pf_conv_forward_ref(double *out, const double *in, const double *weight,
                         const double *bias, const pf_conv_shape *s, int B);
void pf_conv_backward_ref(double *din, double *dweight, double *dbias, const double *dout,
                          const double *in, const double *weight, const pf_conv_shape *s, int B);
void pf_maxpool_forward_ref(double *out, int *arg, const double *in, const pf_pool_shape *s,
                            int B);
void pf_maxpool_backward_ref(double *din, const double *dout, const int *arg,
                             const pf_pool_shape *s, int B);
void pf_avgpool_forward_ref(double *out, const double *in, const pf_pool_shape *s, int B);
void pf_avgpool_backward_ref(double *din, const double *dout, const pf_pool_shape *s, int B);

#endif
