/* crl/autograd.h — reverse-mode automatic differentiation.
 *
 * A tensor with requires_grad set is a leaf whose gradient accumulates in
 * t->grad. Ops on such tensors (while grad mode is on) record nodes; calling
 * crl_backward on a result walks them in reverse and frees the graph's saved
 * tensors afterwards. Gradients are computed with grad mode off (first order
 * only). Only float tensors can require grad. */
#ifndef CRL_AUTOGRAD_H
#define CRL_AUTOGRAD_H

#include "crl/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Mark a float leaf tensor as requiring grad. Errors: CRL_EDTYPE for an
 * integer tensor, CRL_EAUTOGRAD for a non-leaf. */
CRL_API int crl_set_requires_grad(crl_tensor *t, bool requires_grad);
/* Backpropagate from `root`. `grad` (borrowed) is the upstream gradient with
 * root's shape, or NULL for a one-element root (gradient 1). Accumulates
 * into the .grad of every leaf reached, then frees the graph (a second
 * backward through it fails with CRL_EAUTOGRAD). */
CRL_API int crl_backward(crl_tensor *root, crl_tensor *grad);
/* Same, keeping the graph for another backward. */
CRL_API int crl_backward_retain(crl_tensor *root, crl_tensor *grad);
/* A view of t that shares storage but is cut from the graph. New ref. */
CRL_API crl_tensor *crl_detach(crl_tensor *t);
/* Drop t->grad (sets it to NULL). */
CRL_API void crl_zero_grad(crl_tensor *t);

/* Grad mode (thread-local, on by default). */
CRL_API bool crl_is_grad_enabled(void);
/* Set grad mode; returns the previous setting. */
CRL_API bool crl_set_grad_enabled(bool enabled);
/* No-grad scope: push grad-mode off / pop back to what it was. Nest. */
CRL_API void crl_no_grad_begin(void);
CRL_API void crl_no_grad_end(void);

/* Gradient check: compares the analytic gradient of
 *   L = sum(fn(inputs) * w)   (w fixed random weights)
 * with central finite differences (step eps) for each input that requires
 * grad. fn returns a new reference (scopes may be used inside). Passes if
 * |analytic - numeric| <= atol + rtol * |numeric| for every element. Use
 * float64 inputs. Returns 0 when it passes, CRL_EINVAL with a message naming
 * the input, element and both values otherwise. */
typedef crl_tensor *(*crl_gradcheck_fn)(crl_tensor **inputs, void *ctx);
CRL_API int crl_gradcheck(crl_gradcheck_fn fn, crl_tensor **inputs, int n,
                          void *ctx, double eps, double atol, double rtol);

#ifdef __cplusplus
}
#endif
#endif
