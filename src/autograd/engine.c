/* Autograd: grad mode, graph nodes and the backward engine. */
#include <math.h>
#include <stdlib.h>

#include "../core/internal.h"

/* ---- grad mode ---------------------------------------------------------- */

#define NOGRAD_MAX 64
static _Thread_local bool tl_grad_disabled; /* default: grad enabled */
static _Thread_local bool tl_nograd_stack[NOGRAD_MAX];
static _Thread_local int tl_nograd_depth;

bool crl_is_grad_enabled(void) { return !tl_grad_disabled; }

bool crl_set_grad_enabled(bool enabled) {
  bool prev = !tl_grad_disabled;
  tl_grad_disabled = !enabled;
  return prev;
}

void crl_no_grad_begin(void) {
  if (tl_nograd_depth < NOGRAD_MAX)
    tl_nograd_stack[tl_nograd_depth] = !tl_grad_disabled;
  tl_nograd_depth++;
  tl_grad_disabled = true;
}

void crl_no_grad_end(void) {
  if (tl_nograd_depth == 0) return;
  tl_nograd_depth--;
  if (tl_nograd_depth < NOGRAD_MAX)
    tl_grad_disabled = !tl_nograd_stack[tl_nograd_depth];
}

/* ---- nodes ----------------------------------------------------------------
 */

bool crl__any_requires_grad(int n, crl_tensor *const *inputs) {
  if (tl_grad_disabled) return false;
  for (int i = 0; i < n; i++)
    if (inputs[i] && inputs[i]->requires_grad) return true;
  return false;
}

static void node_free_graph(crl_node *n) {
  for (int i = 0; i < CRL_NODE_SAVED; i++) {
    crl_tensor_release(n->saved[i]);
    n->saved[i] = NULL;
  }
  for (int i = 0; i < n->ninputs; i++) {
    crl_edge *e = &n->edges[i];
    if (e->fn) crl__node_release(e->fn);
    crl_tensor_release(e->leaf);
    e->fn = NULL;
    e->leaf = NULL;
  }
  if (n->free_ctx) n->free_ctx(n);
  n->free_ctx = NULL;
  n->ctx = NULL;
  n->freed = true;
}

/* Nodes reaching refcount zero while another release is running on this
 * thread are queued and freed by the outermost call: releasing a graph is a
 * loop, not a recursion as deep as the graph. */
static _Thread_local crl_node **tl_dead;
static _Thread_local int64_t tl_ndead, tl_capdead;
static _Thread_local bool tl_releasing;

static void free_node(crl_node *n) {
  crl_tensor_release(n->grad_accum);
  node_free_graph(n);
  if (n->edges != n->edges_inline) free(n->edges);
  free(n);
}

void crl__node_release(crl_node *n) {
  if (!n) return;
  if (atomic_fetch_sub_explicit((_Atomic int *)&n->refcount, 1,
                                memory_order_acq_rel) != 1)
    return;
  if (tl_releasing) {
    if (tl_ndead == tl_capdead) {
      int64_t nc = tl_capdead ? tl_capdead * 2 : 256;
      crl_node **nd = realloc(tl_dead, sizeof *nd * (size_t)nc);
      if (!nd) { /* out of memory: fall back to recursion */
        free_node(n);
        return;
      }
      tl_dead = nd;
      tl_capdead = nc;
    }
    tl_dead[tl_ndead++] = n;
    return;
  }
  tl_releasing = true;
  free_node(n);
  while (tl_ndead)
    free_node(tl_dead[--tl_ndead]);
  tl_releasing = false;
  free(tl_dead);
  tl_dead = NULL;
  tl_capdead = 0;
}

crl_node *crl__record(crl_tensor *out, const char *name,
                      crl_backward_fn backward, int n,
                      crl_tensor *const *inputs) {
  crl_node *node = calloc(1, sizeof *node);
  if (!node) return CRL_ERR_NULL(CRL_ENOMEM, "out of memory (autograd)");
  node->refcount = 1;
  node->name = name;
  node->backward = backward;
  node->ninputs = n;
  if (n <= CRL_NODE_INLINE_EDGES) {
    node->edges = node->edges_inline;
  } else {
    node->edges = calloc((size_t)n, sizeof(crl_edge));
    if (!node->edges) {
      free(node);
      return CRL_ERR_NULL(CRL_ENOMEM, "out of memory (autograd)");
    }
  }
  for (int i = 0; i < n; i++) {
    crl_edge *e = &node->edges[i];
    crl_tensor *t = inputs[i];
    if (!t) continue;
    e->ndim = t->ndim;
    memcpy(e->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    e->dtype = t->dtype;
    if (!t->requires_grad) continue;
    e->needs_grad = true;
    if (t->grad_fn) {
      e->fn = t->grad_fn;
      atomic_fetch_add_explicit((_Atomic int *)&e->fn->refcount, 1,
                                memory_order_relaxed);
    } else {
      e->leaf = crl_tensor_retain(t);
    }
  }
  node->out_ndim = out->ndim;
  memcpy(node->out_shape, out->shape, sizeof(int64_t) * (size_t)out->ndim);
  node->out_dtype = out->dtype;
  if (out->grad_fn) crl__node_release(out->grad_fn);
  out->grad_fn = node;
  out->requires_grad = true;
  return node;
}

void crl__save(crl_node *n, int slot, crl_tensor *t) {
  if (!t || slot < 0 || slot >= CRL_NODE_SAVED) return;
  /* a detached alias: keeps the data alive without a reference cycle */
  crl_tensor *a = malloc(sizeof *a);
  if (!a) return;
  *a = *t;
  a->refcount = 1;
  a->requires_grad = false;
  a->grad = NULL;
  a->grad_fn = NULL;
  crl_storage_retain(a->storage);
  crl_tensor_release(n->saved[slot]);
  n->saved[slot] = a;
}

crl_tensor *crl_detach(crl_tensor *t) {
  if (!t) return CRL_ERR_NULL(CRL_EINVAL, "detach: tensor is NULL");
  return crl__alias(t, t->ndim, t->shape, t->stride, t->offset);
}

int crl_set_requires_grad(crl_tensor *t, bool requires_grad) {
  if (!t) return crl__err(CRL_EINVAL, "set_requires_grad: tensor is NULL");
  if (requires_grad && !crl_dtype_is_float(t->dtype))
    return crl__err(CRL_EDTYPE,
                    "set_requires_grad: only float tensors can require grad "
                    "(got %s)",
                    crl_dtype_name(t->dtype));
  if (t->grad_fn)
    return crl__err(CRL_EAUTOGRAD,
                    "set_requires_grad: tensor is not a leaf (made by %s); "
                    "detach it first",
                    t->grad_fn->name);
  t->requires_grad = requires_grad;
  return 0;
}

void crl_zero_grad(crl_tensor *t) {
  if (!t) return;
  crl_tensor_release(t->grad);
  t->grad = NULL;
}

/* ---- broadcasting reduction ---------------------------------------------- */

crl_tensor *crl__sum_to(crl_tensor *g, int ndim, const int64_t *shape) {
  if (g->ndim == ndim) {
    bool same = true;
    for (int i = 0; i < ndim; i++)
      if (g->shape[i] != shape[i]) same = false;
    if (same) return g;
  }
  int dims[CRL_MAX_DIMS], nd = 0;
  int lead = g->ndim - ndim;
  for (int i = 0; i < g->ndim; i++) {
    int j = i - lead;
    if (j < 0 || (shape[j] == 1 && g->shape[i] != 1)) dims[nd++] = i;
  }
  crl_tensor *s = nd ? crl_sum(g, nd, dims, true) : g;
  if (!s) return NULL;
  return crl_reshape(s, ndim, shape);
}

/* ---- backward ------------------------------------------------------------ */

typedef struct {
  crl_node **items;
  int64_t n, cap;
} node_vec;

static int vec_push(node_vec *v, crl_node *n) {
  if (v->n == v->cap) {
    int64_t nc = v->cap ? v->cap * 2 : 64;
    crl_node **ni = realloc(v->items, (size_t)nc * sizeof *ni);
    if (!ni) return crl__err(CRL_ENOMEM, "out of memory (backward)");
    v->items = ni;
    v->cap = nc;
  }
  v->items[v->n++] = n;
  return 0;
}

/* accumulate gradient g (scoped temporary) into *slot, which we own */
static int accumulate(crl_tensor **slot, bool *owned, crl_tensor *g) {
  if (!*slot) {
    *slot = crl_tensor_retain(g);
    *owned = false;
    return 0;
  }
  if (*owned) return crl_add_(*slot, g, 1.0);
  crl_tensor *sum = crl_add(*slot, g);
  if (!sum) return crl_last_error_code();
  crl_tensor_release(*slot);
  *slot = crl_tensor_retain(sum);
  *owned = true;
  return 0;
}

/* leaf gradient: leaf->grad is always a tensor the leaf owns exclusively */
static int accumulate_leaf(crl_tensor *leaf, crl_tensor *g) {
  if (g->dtype != leaf->dtype) {
    g = crl_cast(g, leaf->dtype);
    if (!g) return crl_last_error_code();
  }
  if (!leaf->grad) {
    bool exclusive = g->refcount == 1 && g->storage->refcount == 1 &&
                     !g->grad_fn && crl_tensor_is_contiguous(g) &&
                     crl_same_shape(g, leaf) && g->offset == 0;
    crl_tensor *c = exclusive ? g : crl_clone(g);
    if (!c) return crl_last_error_code();
    if (!crl_same_shape(c, leaf)) {
      c = crl_reshape(c, leaf->ndim, leaf->shape);
      if (!c) return crl_last_error_code();
      c = crl_contiguous(c);
      if (!c) return crl_last_error_code();
    }
    leaf->grad = crl_tensor_retain(c);
    return 0;
  }
  return crl_add_(leaf->grad, g, 1.0);
}

static int backward_impl(crl_tensor *root, crl_tensor *grad, bool retain) {
  if (!root) return crl__err(CRL_EINVAL, "backward: tensor is NULL");
  if (!root->requires_grad)
    return crl__err(CRL_EAUTOGRAD,
                    "backward: tensor does not require grad (no input of "
                    "the graph has requires_grad set)");
  if (grad && !crl_same_shape(grad, root)) {
    char b1[160], b2[160];
    return crl__err(CRL_ESHAPE, "backward: gradient shape %s != tensor %s",
                    CRL_SHAPE_STR(grad, b1), CRL_SHAPE_STR(root, b2));
  }
  if (!grad && root->numel != 1) {
    char b[160];
    return crl__err(CRL_ESHAPE,
                    "backward: tensor of shape %s is not a scalar; pass a "
                    "gradient",
                    CRL_SHAPE_STR(root, b));
  }
  bool prev = crl_set_grad_enabled(false);
  int rc = 0;
  crl_scope_begin();
  crl_tensor *g0 = grad ? grad : crl_ones_like(root);
  if (!g0) {
    rc = crl_last_error_code();
    goto out;
  }
  if (!root->grad_fn) { /* a leaf */
    /* held here so accumulate_leaf copies it: leaf->grad must never alias
     * the caller's gradient tensor */
    crl_tensor_retain(g0);
    rc = accumulate_leaf(root, g0);
    crl_tensor_release(g0);
    goto out;
  }
  crl_node *rn = root->grad_fn;
  if (rn->freed) {
    rc = crl__err(CRL_EAUTOGRAD,
                  "backward: the graph through '%s' was already freed by an "
                  "earlier backward (use crl_backward_retain)",
                  rn->name);
    goto out;
  }
  /* 1. collect nodes (DFS) and count dependencies */
  node_vec all = {0}, stack = {0}, ready = {0};
  static _Thread_local int mark_gen;
  int mark = ++mark_gen;
  if ((rc = vec_push(&stack, rn))) goto out_vec;
  rn->mark = mark;
  rn->deps = 0;
  while (stack.n) {
    crl_node *n = stack.items[--stack.n];
    if ((rc = vec_push(&all, n))) goto out_vec;
    for (int i = 0; i < n->ninputs; i++) {
      crl_node *c = n->edges[i].fn;
      if (!c) continue;
      if (c->freed) {
        rc = crl__err(CRL_EAUTOGRAD,
                      "backward: the graph through '%s' was already freed",
                      c->name);
        goto out_vec;
      }
      if (c->mark != mark) {
        c->mark = mark;
        c->deps = 0;
        crl_tensor_release(c->grad_accum);
        c->grad_accum = NULL;
        if ((rc = vec_push(&stack, c))) goto out_vec;
      }
      c->deps++;
    }
  }
  /* 2. Kahn order from the root */
  crl_tensor_release(rn->grad_accum);
  rn->grad_accum = crl_tensor_retain(g0);
  rn->grad_owned = false;
  if ((rc = vec_push(&ready, rn))) goto out_vec;
  while (ready.n && !rc) {
    crl_node *n = ready.items[--ready.n];
    crl_tensor *gout = n->grad_accum;
    crl_scope_begin();
    crl_tensor *gin_inline[8];
    crl_tensor **gin =
        n->ninputs <= 8 ? gin_inline : calloc((size_t)n->ninputs, sizeof *gin);
    if (!gin) {
      rc = crl__err(CRL_ENOMEM, "out of memory (backward)");
      crl_scope_end();
      break;
    }
    for (int i = 0; i < n->ninputs; i++)
      gin[i] = NULL;
    if (gout) {
      rc = n->backward(n, gout, gin);
      if (rc && !crl_last_error()[0])
        crl__err(rc, "backward of '%s' failed", n->name);
    }
    /* node edges first, leaves second: a leaf may take a gradient tensor
     * over (and later add into it in place) only if no pending node
     * gradient holds the same tensor — the retains done here make
     * accumulate_leaf see it as shared and copy it */
    for (int i = 0; i < n->ninputs && !rc; i++) {
      crl_edge *e = &n->edges[i];
      if (!e->needs_grad || !e->fn) continue;
      if (gin[i])
        rc = accumulate(&e->fn->grad_accum, &e->fn->grad_owned, gin[i]);
      if (--e->fn->deps == 0) rc = rc ? rc : vec_push(&ready, e->fn);
    }
    for (int i = 0; i < n->ninputs && !rc; i++) {
      crl_edge *e = &n->edges[i];
      if (e->needs_grad && e->leaf && gin[i])
        rc = accumulate_leaf(e->leaf, gin[i]);
    }
    if (gin != gin_inline) free(gin);
    crl_tensor_release(n->grad_accum);
    n->grad_accum = NULL;
    crl_scope_end();
  }
  /* 3. free the graph (saved tensors and edges) unless retained */
  for (int64_t i = 0; i < all.n; i++) {
    crl_node *n = all.items[i];
    crl_tensor_release(n->grad_accum);
    n->grad_accum = NULL;
  }
  if (!retain && !rc) {
    /* release edges after all nodes are done (edges own other nodes) */
    for (int64_t i = 0; i < all.n; i++) {
      crl_node *n = all.items[i];
      atomic_fetch_add_explicit((_Atomic int *)&n->refcount, 1,
                                memory_order_relaxed);
    }
    for (int64_t i = 0; i < all.n; i++)
      node_free_graph(all.items[i]);
    for (int64_t i = 0; i < all.n; i++)
      crl__node_release(all.items[i]);
  }
out_vec:
  free(all.items);
  free(stack.items);
  free(ready.items);
out:
  crl_scope_end();
  crl_set_grad_enabled(prev);
  return rc;
}

int crl_backward(crl_tensor *root, crl_tensor *grad) {
  return backward_impl(root, grad, false);
}

int crl_backward_retain(crl_tensor *root, crl_tensor *grad) {
  return backward_impl(root, grad, true);
}
