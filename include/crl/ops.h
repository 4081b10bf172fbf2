/* crl/ops.h — tensor operations.
 *
 * Every op returns a NEW REFERENCE (see the ownership rule in crl/tensor.h)
 * or NULL on error, with crl_last_error() naming the shapes, dtype or index at
 * fault; inputs are borrowed and never modified by a failing call.
 * Ops whose name ends in `_` work in place and return 0 or a CRL_E* code.
 *
 * Differentiable ops record a node for autograd when grad mode is on and an
 * input requires grad (see crl/autograd.h). Binary elementwise ops broadcast
 * as NumPy does and promote dtypes as torch does (crl_promote_types);
 * float-only math (exp, tanh, ...) on an integer tensor computes in float32. */
#ifndef CRL_OPS_H
#define CRL_OPS_H

#include "crl/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- elementwise: binary (broadcasting, promoting) ------------------- */
CRL_API crl_tensor *crl_add(crl_tensor *a, crl_tensor *b);
CRL_API crl_tensor *crl_sub(crl_tensor *a, crl_tensor *b);
CRL_API crl_tensor *crl_mul(crl_tensor *a, crl_tensor *b);
CRL_API crl_tensor *crl_div(crl_tensor *a, crl_tensor *b); /* true division */
CRL_API crl_tensor *crl_pow(crl_tensor *a, crl_tensor *b);
CRL_API crl_tensor *crl_minimum(crl_tensor *a, crl_tensor *b);
CRL_API crl_tensor *crl_maximum(crl_tensor *a, crl_tensor *b);
/* a + alpha * b (one kernel). */
CRL_API crl_tensor *crl_add_scaled(crl_tensor *a, crl_tensor *b, double alpha);

/* With a scalar on the right (result keeps a's dtype if it is a float
 * dtype; an integer tensor with a non-integral scalar becomes float32). */
CRL_API crl_tensor *crl_add_scalar(crl_tensor *a, double s);
CRL_API crl_tensor *crl_sub_scalar(crl_tensor *a, double s);
CRL_API crl_tensor *crl_mul_scalar(crl_tensor *a, double s);
CRL_API crl_tensor *crl_div_scalar(crl_tensor *a, double s);
CRL_API crl_tensor *crl_pow_scalar(crl_tensor *a, double exponent);
/* s - a, s / a, s ** a */
CRL_API crl_tensor *crl_rsub_scalar(crl_tensor *a, double s);
CRL_API crl_tensor *crl_rdiv_scalar(crl_tensor *a, double s);
CRL_API crl_tensor *crl_rpow_scalar(crl_tensor *a, double s);

/* ---- elementwise: unary ---------------------------------------------- */
CRL_API crl_tensor *crl_neg(crl_tensor *a);
CRL_API crl_tensor *crl_abs(crl_tensor *a);
CRL_API crl_tensor *crl_exp(crl_tensor *a);
CRL_API crl_tensor *crl_log(crl_tensor *a);
CRL_API crl_tensor *crl_log1p(crl_tensor *a);
CRL_API crl_tensor *crl_expm1(crl_tensor *a);
CRL_API crl_tensor *crl_sqrt(crl_tensor *a);
CRL_API crl_tensor *crl_rsqrt(crl_tensor *a);
CRL_API crl_tensor *crl_square(crl_tensor *a);
CRL_API crl_tensor *crl_reciprocal(crl_tensor *a);
CRL_API crl_tensor *crl_tanh(crl_tensor *a);
CRL_API crl_tensor *crl_sigmoid(crl_tensor *a);
CRL_API crl_tensor *crl_relu(crl_tensor *a);
CRL_API crl_tensor *crl_elu(crl_tensor *a, double alpha);
CRL_API crl_tensor *crl_leaky_relu(crl_tensor *a, double negative_slope);
/* log(1 + exp(beta x)) / beta, linear above `threshold` (torch's). */
CRL_API crl_tensor *crl_softplus(crl_tensor *a, double beta, double threshold);
CRL_API crl_tensor *crl_silu(crl_tensor *a);
CRL_API crl_tensor *crl_sin(crl_tensor *a);
CRL_API crl_tensor *crl_cos(crl_tensor *a);
/* Clamp to [lo, hi]; pass -INFINITY / INFINITY for a one-sided clamp. The
 * gradient is 1 inside, 0 outside (torch's). */
CRL_API crl_tensor *crl_clamp(crl_tensor *a, double lo, double hi);
/* Clamp with tensor bounds (broadcast); either may be NULL. */
CRL_API crl_tensor *crl_clamp_tensor(crl_tensor *a, crl_tensor *lo,
                                     crl_tensor *hi);
CRL_API crl_tensor *crl_sign(crl_tensor *a); /* zero gradient */

/* ---- comparisons and logic (bool results, no gradient) --------------- */
CRL_API crl_tensor *crl_eq(crl_tensor *a, crl_tensor *b);
CRL_API crl_tensor *crl_ne(crl_tensor *a, crl_tensor *b);
CRL_API crl_tensor *crl_lt(crl_tensor *a, crl_tensor *b);
CRL_API crl_tensor *crl_le(crl_tensor *a, crl_tensor *b);
CRL_API crl_tensor *crl_gt(crl_tensor *a, crl_tensor *b);
CRL_API crl_tensor *crl_ge(crl_tensor *a, crl_tensor *b);
CRL_API crl_tensor *crl_eq_scalar(crl_tensor *a, double s);
CRL_API crl_tensor *crl_lt_scalar(crl_tensor *a, double s);
CRL_API crl_tensor *crl_gt_scalar(crl_tensor *a, double s);
CRL_API crl_tensor *crl_logical_and(crl_tensor *a, crl_tensor *b);
CRL_API crl_tensor *crl_logical_or(crl_tensor *a, crl_tensor *b);
CRL_API crl_tensor *crl_logical_not(crl_tensor *a);
CRL_API crl_tensor *crl_isnan(crl_tensor *a);
CRL_API crl_tensor *crl_isfinite(crl_tensor *a);
/* cond ? a : b, broadcasting all three; differentiable in a and b. */
CRL_API crl_tensor *crl_where(crl_tensor *cond, crl_tensor *a, crl_tensor *b);

/* ---- reductions ------------------------------------------------------
 * `dims` lists `ndims` dimensions (negative counts from the end); ndims = 0
 * reduces over all dimensions. keepdim keeps reduced dims with size 1.
 * Results are identical whatever the thread count.
 * dtypes (torch's rules): sum/prod of integer or bool tensors give int64;
 * mean, var, std and norm need a float tensor (CRL_EDTYPE otherwise);
 * logsumexp, softmax and log_softmax compute integer inputs in float32;
 * any/all test elements != 0 and return bool. float32 sums accumulate in
 * float32 lanes of at most 16 terms widened to double. Max/min propagate NaN
 * (the index is the first NaN's). Empty reductions give sum 0, prod 1,
 * mean/var NaN, logsumexp -inf, any false, all true; max/min of an empty
 * dim is CRL_ESHAPE. */
CRL_API crl_tensor *crl_sum(crl_tensor *a, int ndims, const int *dims,
                            bool keepdim);
CRL_API crl_tensor *crl_mean(crl_tensor *a, int ndims, const int *dims,
                             bool keepdim);
CRL_API crl_tensor *crl_prod(crl_tensor *a, int ndims, const int *dims,
                             bool keepdim);
CRL_API crl_tensor *crl_logsumexp(crl_tensor *a, int ndims, const int *dims,
                                  bool keepdim);
/* Variance / standard deviation with `correction` (1 = unbiased). */
CRL_API crl_tensor *crl_var(crl_tensor *a, int ndims, const int *dims,
                            int correction, bool keepdim);
CRL_API crl_tensor *crl_std(crl_tensor *a, int ndims, const int *dims,
                            int correction, bool keepdim);
/* p-norm (p = 2 for Euclidean, INFINITY for max-abs). */
CRL_API crl_tensor *crl_norm(crl_tensor *a, double p, int ndims,
                             const int *dims, bool keepdim);
CRL_API crl_tensor *crl_any(crl_tensor *a, int ndims, const int *dims,
                            bool keepdim);
CRL_API crl_tensor *crl_all(crl_tensor *a, int ndims, const int *dims,
                            bool keepdim);
/* Max/min along one dim; if `indices` is non-NULL it receives a new
 * reference to the int64 argmax/argmin (first occurrence). */
CRL_API crl_tensor *crl_max(crl_tensor *a, int dim, bool keepdim,
                            crl_tensor **indices);
CRL_API crl_tensor *crl_min(crl_tensor *a, int dim, bool keepdim,
                            crl_tensor **indices);
/* Max/min of all elements (0-dim). */
CRL_API crl_tensor *crl_max_all(crl_tensor *a);
CRL_API crl_tensor *crl_min_all(crl_tensor *a);
CRL_API crl_tensor *crl_argmax(crl_tensor *a, int dim, bool keepdim);
CRL_API crl_tensor *crl_argmin(crl_tensor *a, int dim, bool keepdim);
/* Sum of all elements as a double (no autograd). */
CRL_API double crl_sum_value(crl_tensor *a);

CRL_API crl_tensor *crl_softmax(crl_tensor *a, int dim);
CRL_API crl_tensor *crl_log_softmax(crl_tensor *a, int dim);
/* Cumulative sum / product along dim; `reverse` accumulates from the end.
 * Integer and bool inputs give int64; float32 accumulates in double. The
 * cumprod gradient is exact where inputs are zero (no division). */
CRL_API crl_tensor *crl_cumsum(crl_tensor *a, int dim, bool reverse);
CRL_API crl_tensor *crl_cumprod(crl_tensor *a, int dim, bool reverse);

/* ---- linear algebra and convolution ---------------------------------- */
/* torch.matmul semantics: 1-D·1-D dot, 2-D·2-D, batched with broadcasting of
 * batch dims. Float32/float64. Mismatch names both shapes. */
CRL_API crl_tensor *crl_matmul(crl_tensor *a, crl_tensor *b);
/* x·Wᵀ + b: x [..., in], w [out, in], bias [out] or NULL. */
CRL_API crl_tensor *crl_linear(crl_tensor *x, crl_tensor *w, crl_tensor *bias);
/* 2-D convolution: x [N, C, H, W], w [O, C, kh, kw], bias [O] or NULL.
 * im2col + GEMM. */
CRL_API crl_tensor *crl_conv2d(crl_tensor *x, crl_tensor *w, crl_tensor *bias,
                               int stride_h, int stride_w, int pad_h,
                               int pad_w);
/* Max pooling over [N, C, H, W] with a kernel, stride, padding. */
CRL_API crl_tensor *crl_max_pool2d(crl_tensor *x, int kh, int kw, int stride_h,
                                   int stride_w, int pad_h, int pad_w);

/* ---- shape (views share storage: zero copy) -------------------------- */
/* View with a new shape (one entry may be -1). Needs compatible strides;
 * otherwise CRL_ESHAPE (use crl_reshape). */
CRL_API crl_tensor *crl_view(crl_tensor *a, int ndim, const int64_t *shape);
/* View if possible, else a contiguous copy. */
CRL_API crl_tensor *crl_reshape(crl_tensor *a, int ndim, const int64_t *shape);
CRL_API crl_tensor *crl_permute(crl_tensor *a, int ndim, const int *dims);
CRL_API crl_tensor *crl_transpose(crl_tensor *a, int d0, int d1);
/* Broadcast to `shape` (size-1 dims → stride 0; -1 keeps a size). */
CRL_API crl_tensor *crl_expand(crl_tensor *a, int ndim, const int64_t *shape);
/* Remove dim (if size 1); dim = CRL_ALL_DIMS removes every size-1 dim. */
#define CRL_ALL_DIMS 1000
CRL_API crl_tensor *crl_squeeze(crl_tensor *a, int dim);
CRL_API crl_tensor *crl_unsqueeze(crl_tensor *a, int dim);
/* Merge dims start..end (inclusive, negative allowed). */
CRL_API crl_tensor *crl_flatten(crl_tensor *a, int start, int end);
/* Returns a itself (retained) when already contiguous. */
CRL_API crl_tensor *crl_contiguous(crl_tensor *a);
/* Python-style slice start:stop:step on one dim (negative start/stop count
 * from the end and are clamped; step > 0). */
CRL_API crl_tensor *crl_slice(crl_tensor *a, int dim, int64_t start,
                              int64_t stop, int64_t step);
/* Index one position of dim, removing it (negative index from the end). */
CRL_API crl_tensor *crl_select(crl_tensor *a, int dim, int64_t index);
CRL_API crl_tensor *crl_narrow(crl_tensor *a, int dim, int64_t start,
                               int64_t length);
/* Concatenate along an existing dim / stack along a new dim. Shapes must
 * match except on `dim` (cat); mismatch names both shapes. */
CRL_API crl_tensor *crl_cat(int n, crl_tensor *const *ts, int dim);
CRL_API crl_tensor *crl_stack(int n, crl_tensor *const *ts, int dim);
/* Split into pieces of `split_size` (last may be smaller) / into `chunks`
 * pieces / into all slices of dim. Pieces are views written to out[] (new
 * references); returns their count, or a negative code if `cap` is too small
 * (the message says how many are needed). */
CRL_API int crl_split(crl_tensor *a, int64_t split_size, int dim,
                      crl_tensor **out, int cap);
CRL_API int crl_chunk(crl_tensor *a, int chunks, int dim, crl_tensor **out,
                      int cap);
CRL_API int crl_unbind(crl_tensor *a, int dim, crl_tensor **out, int cap);

/* ---- indexing ---------------------------------------------------------
 * Index tensors are int64 (CRL_EDTYPE otherwise). crl_index,
 * crl_index_select and crl_index_put_ accept negative indices (counted from
 * the end, as Python); crl_gather / crl_scatter / crl_scatter_add need
 * 0 <= index < size (as torch). An out-of-range index is CRL_EINDEX naming
 * the index and the size; every index is checked before anything is
 * written. */
/* Entries of `dim` at int64 `index` (1-D or 0-dim). Differentiable in a. */
CRL_API crl_tensor *crl_index_select(crl_tensor *a, int dim, crl_tensor *index);
/* out[i][j] = a[index[i][j]][j] (dim 0) etc., torch.gather: index has a's
 * number of dims and is no larger than a outside `dim`. */
CRL_API crl_tensor *crl_gather(crl_tensor *a, int dim, crl_tensor *index);
/* Out-of-place torch.scatter / scatter_add: a copy of a with src scattered
 * at index along dim (src has a's dtype; index is no larger than src, nor
 * than a outside `dim`). Differentiable in a and src. */
CRL_API crl_tensor *crl_scatter(crl_tensor *a, int dim, crl_tensor *index,
                                crl_tensor *src);
CRL_API crl_tensor *crl_scatter_add(crl_tensor *a, int dim, crl_tensor *index,
                                    crl_tensor *src);
/* a with `value` where mask (bool) is true; a and mask broadcast together
 * (the result has the broadcast shape). */
CRL_API crl_tensor *crl_masked_fill(crl_tensor *a, crl_tensor *mask,
                                    double value);
/* 1-D tensor of the elements where mask (bool, broadcast with a) is true,
 * in row-major order. */
CRL_API crl_tensor *crl_masked_select(crl_tensor *a, crl_tensor *mask);
/* a[index] with an int64 tensor of any shape along dim 0: result shape is
 * index.shape + a.shape[1:] (negative indices count from the end). */
CRL_API crl_tensor *crl_index(crl_tensor *a, crl_tensor *index);
/* In place: a[index] = values (or += with accumulate: duplicates add up;
 * without it the last duplicate wins), dim 0, values broadcast to
 * index.shape + a.shape[1:] and converted to a's dtype. Checks every index
 * before writing: a failing call leaves a unchanged. Not recorded by
 * autograd (a tensor requiring grad is refused, as every in-place op). */
CRL_API int crl_index_put_(crl_tensor *a, crl_tensor *index, crl_tensor *values,
                           bool accumulate);

/* ---- copies and casts -------------------------------------------------- */
/* New tensor of dtype dt (a copy; differentiable between float dtypes). */
CRL_API crl_tensor *crl_cast(crl_tensor *a, crl_dtype dt);
/* Contiguous deep copy (differentiable). */
CRL_API crl_tensor *crl_clone(crl_tensor *a);
/* Copy src into dst in place, broadcasting src and converting dtype. */
CRL_API int crl_copy_(crl_tensor *dst, crl_tensor *src);
/* Set every element of t to value. */
CRL_API int crl_fill_(crl_tensor *t, double value);
CRL_API int crl_zero_(crl_tensor *t);
/* In-place dst += alpha * src (src broadcast to dst); no autograd. */
CRL_API int crl_add_(crl_tensor *dst, crl_tensor *src, double alpha);
/* In-place dst *= s; no autograd. */
CRL_API int crl_mul_scalar_(crl_tensor *dst, double s);

/* True if every element is equal (same shape required). */
CRL_API bool crl_equal(crl_tensor *a, crl_tensor *b);
/* |a - b| <= atol + rtol * |b| everywhere (NaN never close); shapes must
 * broadcast. */
CRL_API bool crl_allclose(crl_tensor *a, crl_tensor *b, double rtol,
                          double atol);

#ifdef __cplusplus
}
#endif
#endif
