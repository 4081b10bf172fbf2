/* dtypes, devices and type promotion. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const size_t sizes[CRL_NUM_DTYPES] = {4, 8, 8, 4, 1, 1};
static const char *names[CRL_NUM_DTYPES] = {"float32", "float64", "int64",
                                            "int32",   "uint8",   "bool"};
/* promotion rank: bool < uint8 < int32 < int64 < float32 < float64 */
static const int rank[CRL_NUM_DTYPES] = {4, 5, 3, 2, 1, 0};

size_t crl_dtype_size(crl_dtype dt) {
  return (unsigned)dt < CRL_NUM_DTYPES ? sizes[dt] : 0;
}

const char *crl_dtype_name(crl_dtype dt) {
  return (unsigned)dt < CRL_NUM_DTYPES ? names[dt] : "invalid";
}

int crl_dtype_from_name(const char *name) {
  for (int i = 0; i < CRL_NUM_DTYPES; i++)
    if (name && strcmp(name, names[i]) == 0) return i;
  return -1;
}

bool crl_dtype_is_float(crl_dtype dt) {
  return dt == CRL_FLOAT32 || dt == CRL_FLOAT64;
}

crl_dtype crl_promote_types(crl_dtype a, crl_dtype b) {
  return rank[a] >= rank[b] ? a : b;
}

const char *crl_device_name(crl_device d) {
  static _Thread_local char buf[32];
  if (d.type == CRL_CPU) return "cpu";
  snprintf(buf, sizeof buf, "cuda:%d", d.index);
  return buf;
}
