/* Thread-local error state: crl_last_error() and friends. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static _Thread_local char tl_msg[1024];
static _Thread_local int tl_code;

const char *crl_last_error(void) { return tl_msg; }
int crl_last_error_code(void) { return tl_code; }
void crl_clear_error(void) {
  tl_msg[0] = 0;
  tl_code = CRL_OK;
}

const char *crl_strerror(int code) {
  switch (code) {
  case CRL_OK: return "ok";
  case CRL_EINVAL: return "invalid argument";
  case CRL_ESHAPE: return "shape mismatch";
  case CRL_EDTYPE: return "unsupported dtype";
  case CRL_EINDEX: return "index out of range";
  case CRL_ENOMEM: return "out of memory";
  case CRL_EIO: return "i/o error";
  case CRL_EFORMAT: return "malformed file";
  case CRL_EKEY: return "key error";
  case CRL_ESTATE: return "invalid state";
  case CRL_EUNSUPPORTED: return "unsupported";
  case CRL_EDEVICE: return "wrong device";
  case CRL_EAUTOGRAD: return "autograd error";
  case CRL_ENOTFINITE: return "non-finite value";
  default: return "unknown error";
  }
}

static int verr(int code, const char *fmt, va_list ap) {
  vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
  tl_code = code;
  return code;
}

int crl__err(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verr(code, fmt, ap);
  va_end(ap);
  return code;
}

int crl_error(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  verr(code, fmt, ap);
  va_end(ap);
  return code;
}
