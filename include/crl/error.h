/* crl/error.h — error codes and the thread-local last-error message.
 *
 * Every crl function reports failure the same way: functions returning int
 * give 0 on success and a negative CRL_E* code on failure; functions returning
 * a pointer give NULL. In both cases crl_last_error() returns a message that
 * names the key, shape, index or value at fault. A failing call leaves its
 * inputs unchanged. crl never aborts on user input. */
#ifndef CRL_ERROR_H
#define CRL_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#define CRL_API __attribute__((visibility("default")))

enum crl_error_code {
  CRL_OK = 0,
  CRL_EINVAL = -1,        /* bad argument value */
  CRL_ESHAPE = -2,        /* shapes do not match / cannot broadcast */
  CRL_EDTYPE = -3,        /* dtype not accepted by the operation */
  CRL_EINDEX = -4,        /* index out of range */
  CRL_ENOMEM = -5,        /* allocation failed */
  CRL_EIO = -6,           /* file system / OS error */
  CRL_EFORMAT = -7,       /* malformed or truncated file */
  CRL_EKEY = -8,          /* missing or duplicate key */
  CRL_ESTATE = -9,        /* operation not valid in the object's state */
  CRL_EUNSUPPORTED = -10, /* feature not available in this build */
  CRL_EDEVICE = -11,      /* tensor on the wrong device */
  CRL_EAUTOGRAD = -12,  /* autograd misuse (freed graph, in-place on a leaf) */
  CRL_ENOTFINITE = -13, /* NaN or Inf where a finite value is required */
};

/* The message of the last error raised on the calling thread ("" if none).
 * Borrowed: valid until the next crl call on this thread. */
CRL_API const char *crl_last_error(void);
/* The code of the last error raised on the calling thread (CRL_OK if none). */
CRL_API int crl_last_error_code(void);
/* Forget the last error of the calling thread. */
CRL_API void crl_clear_error(void);
/* A static English name for an error code ("invalid argument", ...). */
CRL_API const char *crl_strerror(int code);
/* Raise an error from user code (custom envs, hooks): sets the thread's
 * message from a printf-style format and returns `code`. */
CRL_API int crl_error(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif
#endif
