/* Tensor printing: torch's layout and number formats, summaries, suffixes,
 * and crl_tensor_to_string's snprintf contract. */
#include "test_util.h"

#include <stdlib.h>

static void expect_str(const crl_tensor *t, const char *want) {
  char buf[8192];
  int n = crl_tensor_to_string(t, buf, sizeof buf);
  if (n < 0) fail_msg("to_string failed: %s", crl_last_error());
  if (strcmp(buf, want) != 0) fail_msg("got:\n%s\nexpected:\n%s", buf, want);
  assert_int_equal(n, (int)strlen(want));
}

static crl_tensor *f32(int ndim, const int64_t *shape, const float *v) {
  crl_tensor *t = crl_from_array(CRL_FLOAT32, ndim, shape, v);
  CRL_CHECK_PTR(t);
  return t;
}

static void test_float_formats(void **state) {
  (void)state;
  expect_str(f32(CRL_SHAPE(2, 2), (float[]){1, 2.5f, 3, 4}),
             "tensor([[1.0000, 2.5000],\n"
             "        [3.0000, 4.0000]], shape=[2, 2], dtype=float32, "
             "device=cpu)");
  /* integral values: "1." */
  expect_str(crl_zeros(CRL_FLOAT32, CRL_SHAPE(3)),
             "tensor([0., 0., 0.], shape=[3], dtype=float32, device=cpu)");
  expect_str(f32(CRL_SHAPE(3), (float[]){-1, 20, 300}),
             "tensor([ -1.,  20., 300.], shape=[3], dtype=float32, "
             "device=cpu)");
  /* scientific: small values or a wide range */
  expect_str(f32(CRL_SHAPE(2), (float[]){1e-5f, 1}),
             "tensor([1.0000e-05, 1.0000e+00], shape=[2], dtype=float32, "
             "device=cpu)");
  expect_str(crl_from_array(CRL_FLOAT64, CRL_SHAPE(2), (double[]){-1e-5, 1}),
             "tensor([-1.0000e-05,  1.0000e+00], shape=[2], dtype=float64, "
             "device=cpu)");
  expect_str(crl_from_array(CRL_FLOAT64, CRL_SHAPE(2), (double[]){1, 1e9}),
             "tensor([1.0000e+00, 1.0000e+09], shape=[2], dtype=float64, "
             "device=cpu)");
  /* non-finite values keep the common width */
  expect_str(f32(CRL_SHAPE(4), (float[]){NAN, 1.5f, INFINITY, -INFINITY}),
             "tensor([   nan, 1.5000,    inf,   -inf], shape=[4], "
             "dtype=float32, device=cpu)");
  /* (torch leaves non-finite values out of the width; crl aligns them) */
  expect_str(f32(CRL_SHAPE(2), (float[]){NAN, 2}),
             "tensor([nan,  2.], shape=[2], dtype=float32, device=cpu)");
  /* 0-dim */
  expect_str(crl_scalar(CRL_FLOAT64, 3.5),
             "tensor(3.5000, shape=[], dtype=float64, device=cpu)");
  expect_str(crl_scalar(CRL_FLOAT32, -2),
             "tensor(-2., shape=[], dtype=float32, device=cpu)");
}

static void test_other_dtypes(void **state) {
  (void)state;
  expect_str(crl_from_array(CRL_INT64, CRL_SHAPE(3), (int64_t[]){1, -20, 300}),
             "tensor([  1, -20, 300], shape=[3], dtype=int64, device=cpu)");
  /* int64 beyond 2^53 prints exactly */
  expect_str(crl_from_array(CRL_INT64, CRL_SHAPE(2),
                            (int64_t[]){9007199254740993ll, INT64_MIN}),
             "tensor([    9007199254740993, -9223372036854775808], "
             "shape=[2], dtype=int64,\n"
             "       device=cpu)");
  expect_str(crl_from_array(CRL_BOOL, CRL_SHAPE(2), (uint8_t[]){1, 0}),
             "tensor([ True, False], shape=[2], dtype=bool, device=cpu)");
  expect_str(crl_from_array(CRL_UINT8, CRL_SHAPE(2, 1), (uint8_t[]){255, 7}),
             "tensor([[255],\n"
             "        [  7]], shape=[2, 1], dtype=uint8, device=cpu)");
  expect_str(crl_from_array(CRL_INT32, CRL_SCALAR, (int32_t[]){-5}),
             "tensor(-5, shape=[], dtype=int32, device=cpu)");
}

static void test_layout(void **state) {
  (void)state;
  /* 3-d: blank line between 2-d blocks */
  expect_str(f32(CRL_SHAPE(2, 2, 2), (float[]){0, 1, 2, 3, 4, 5, 6, 7}),
             "tensor([[[0., 1.],\n"
             "         [2., 3.]],\n"
             "\n"
             "        [[4., 5.],\n"
             "         [6., 7.]]], shape=[2, 2, 2], dtype=float32, "
             "device=cpu)");
  /* rows wrap at 80 columns (14 elements of width 3 per line) */
  expect_str(crl_arange(CRL_FLOAT32, 0, 30, 1),
             "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., "
             "11., 12., 13.,\n"
             "        14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., "
             "25., 26., 27.,\n"
             "        28., 29.], shape=[30], dtype=float32, device=cpu)");
  /* a non-contiguous view prints in logical order */
  crl_tensor *a =
      crl_from_array(CRL_INT32, CRL_SHAPE(2, 3), (int32_t[]){1, 2, 3, 4, 5, 6});
  crl_tensor *tr = crl_tensor_from_storage(a->storage, CRL_INT32, 0,
                                           CRL_SHAPE(3, 2), (int64_t[]){1, 3});
  expect_str(tr, "tensor([[1, 4],\n"
                 "        [2, 5],\n"
                 "        [3, 6]], shape=[3, 2], dtype=int32, device=cpu)");
  /* empty tensors */
  expect_str(crl_zeros(CRL_FLOAT32, CRL_SHAPE(0, 3)),
             "tensor([], shape=[0, 3], dtype=float32, device=cpu)");
  expect_str(crl_zeros(CRL_INT64, CRL_SHAPE(0)),
             "tensor([], shape=[0], dtype=int64, device=cpu)");
}

static void test_summary(void **state) {
  (void)state;
  expect_str(crl_arange(CRL_FLOAT32, 100, 2100, 1),
             "tensor([ 100.,  101.,  102.,  ..., 2097., 2098., 2099.], "
             "shape=[2000],\n"
             "       dtype=float32, device=cpu)");
  /* as torch.arange(2000.): the shown magnitudes span > 1000x, so
   * scientific; the " ..." counts as an element when wrapping */
  expect_str(crl_arange(CRL_FLOAT32, 0, 2000, 1),
             "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, "
             "1.9980e+03,\n"
             "        1.9990e+03], shape=[2000], dtype=float32, device=cpu)");
  expect_str(crl_arange(CRL_INT64, 0, 1001, 1),
             "tensor([   0,    1,    2,  ...,  998,  999, 1000], shape=[1001], "
             "dtype=int64,\n"
             "       device=cpu)");
  /* exactly 1000 elements: not summarised */
  char *big = malloc(65536);
  int n =
      crl_tensor_to_string(crl_zeros(CRL_UINT8, CRL_SHAPE(1000)), big, 65536);
  assert_true(n > 3000);
  assert_null(strstr(big, "..."));
  free(big);
  expect_str(crl_zeros(CRL_FLOAT32, CRL_SHAPE(100, 100)),
             "tensor([[0., 0., 0.,  ..., 0., 0., 0.],\n"
             "        [0., 0., 0.,  ..., 0., 0., 0.],\n"
             "        [0., 0., 0.,  ..., 0., 0., 0.],\n"
             "        ...,\n"
             "        [0., 0., 0.,  ..., 0., 0., 0.],\n"
             "        [0., 0., 0.,  ..., 0., 0., 0.],\n"
             "        [0., 0., 0.,  ..., 0., 0., 0.]], shape=[100, 100], "
             "dtype=float32,\n"
             "       device=cpu)");
  /* the format is chosen from the printed edges only: the hidden middle
   * holds 0.5 but the shown values are integers */
  crl_tensor *t = crl_zeros(CRL_FLOAT64, CRL_SHAPE(2001));
  ((double *)t->data)[1000] = 0.5;
  expect_str(t, "tensor([0., 0., 0.,  ..., 0., 0., 0.], shape=[2001], "
                "dtype=float64, device=cpu)");
  /* a short dim inside a summarised tensor is shown whole */
  expect_str(crl_ones(CRL_INT32, CRL_SHAPE(2, 600)),
             "tensor([[1, 1, 1,  ..., 1, 1, 1],\n"
             "        [1, 1, 1,  ..., 1, 1, 1]], shape=[2, 600], "
             "dtype=int32, device=cpu)");
}

static void test_grad_suffixes(void **state) {
  (void)state;
  crl_tensor *x = crl_from_array(CRL_FLOAT64, CRL_SHAPE(2), (double[]){1, 2});
  crl_set_requires_grad(x, true);
  expect_str(x, "tensor([1., 2.], shape=[2], dtype=float64, device=cpu, "
                "requires_grad=True)");
  crl_tensor *y = crl_mul(x, x);
  CRL_CHECK_PTR(y);
  char buf[256];
  crl_tensor_to_string(y, buf, sizeof buf);
  if (!strstr(buf, "tensor([1., 4.], shape=[2], dtype=float64, device=cpu, "
                   "grad_fn=<"))
    fail_msg("got %s", buf);
  /* long suffixes wrap onto a new line indented like the values */
  crl_tensor *w = crl_arange(CRL_FLOAT64, 0, 13, 1);
  crl_set_requires_grad(w, true);
  expect_str(w, "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., "
                "10., 11., 12.],\n"
                "       shape=[13], dtype=float64, device=cpu, "
                "requires_grad=True)");
}

static void test_to_string_contract(void **state) {
  (void)state;
  crl_tensor *t = crl_from_array(CRL_INT32, CRL_SHAPE(2), (int32_t[]){1, 2});
  const char *full = "tensor([1, 2], shape=[2], dtype=int32, device=cpu)";
  int len = (int)strlen(full);
  /* length query */
  assert_int_equal(crl_tensor_to_string(t, NULL, 0), len);
  /* truncation: always NUL-terminated, returns the needed length */
  char small[10];
  memset(small, 'x', sizeof small);
  assert_int_equal(crl_tensor_to_string(t, small, sizeof small), len);
  assert_string_equal(small, "tensor([1");
  char one[1] = {'x'};
  assert_int_equal(crl_tensor_to_string(t, one, 1), len);
  assert_int_equal(one[0], 0);
  /* errors */
  assert_int_equal(crl_tensor_to_string(NULL, small, sizeof small), CRL_EINVAL);
  assert_int_equal(crl_tensor_to_string(t, NULL, 5), CRL_EINVAL);
  /* print = to_string + newline */
  char *mem = NULL;
  size_t msz = 0;
  FILE *f = open_memstream(&mem, &msz);
  CRL_CHECK_OK(crl_tensor_print(t, f));
  fclose(f);
  assert_int_equal(msz, (size_t)len + 1);
  assert_memory_equal(mem, full, (size_t)len);
  assert_int_equal(mem[len], '\n');
  free(mem);
  assert_int_equal(crl_tensor_print(NULL, stdout), CRL_EINVAL);
  assert_int_equal(crl_tensor_print(t, NULL), CRL_EINVAL);
  /* a large tensor renders completely through a big buffer */
  crl_tensor *big = crl_rand(&(crl_rng){1, 0}, CRL_FLOAT64, CRL_SHAPE(30, 30));
  int need = crl_tensor_to_string(big, NULL, 0);
  assert_true(need > 900 * 6);
  char *b = malloc((size_t)need + 1);
  assert_int_equal(crl_tensor_to_string(big, b, (size_t)need + 1), need);
  assert_int_equal((int)strlen(b), need);
  free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      CRL_TEST(test_float_formats), CRL_TEST(test_other_dtypes),
      CRL_TEST(test_layout),        CRL_TEST(test_summary),
      CRL_TEST(test_grad_suffixes), CRL_TEST(test_to_string_contract),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
