/* Refcounted storage: heap (64-byte aligned), mmap'ed file, POSIX shm,
 * or caller memory. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

void *crl__aligned_alloc(size_t nbytes) {
  void *p = NULL;
  if (posix_memalign(&p, 64, nbytes ? nbytes : 64) != 0) return NULL;
  return p;
}

void crl__aligned_free(void *p) { free(p); }

/* Heap storage: the struct and the data share one 64-byte aligned block
 * (one allocation per tensor of fresh data). */
#define HEAP_HDR ((sizeof(crl_storage) + 63) & ~(size_t)63)

/* ---- cache of large blocks -------------------------------------------------
 * glibc serves blocks above its mmap threshold with fresh mmaps, so every
 * large temporary (activations, gradients, im2col buffers) costs page faults
 * each training step. Freed large blocks are kept here by size class (4
 * classes per doubling, so at most 19% over-allocation) and reused. Written
 * by hand: a general-purpose allocator would not know crl's reuse pattern. */
#define CACHE_MIN ((size_t)1 << 16)       /* blocks from 64 KiB */
#define CACHE_MAX_BYTES ((size_t)1 << 29) /* keep at most 512 MiB */
#define CACHE_CLASSES 128
#define CACHE_PER_CLASS 8

typedef struct {
  pthread_mutex_t mu;
  void *blocks[CACHE_CLASSES][CACHE_PER_CLASS];
  int count[CACHE_CLASSES];
  size_t bytes;
} block_cache;

static block_cache cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* size class of a block of n bytes (n >= CACHE_MIN), and its byte size */
static int size_class(size_t n, size_t *class_bytes) {
  int e = 63 - __builtin_clzll((unsigned long long)(n - 1)); /* 2^e < n */
  size_t base = (size_t)1 << e, step = base / 4;
  size_t q = (n - base + step - 1) / step; /* 1..4 */
  *class_bytes = base + q * step;
  int c = (e - 16) * 4 + (int)q - 1;
  return c >= 0 && c < CACHE_CLASSES ? c : -1;
}

static void *heap_block(size_t total, size_t *got) {
  size_t cb = total;
  int c = total >= CACHE_MIN ? size_class(total, &cb) : -1;
  if (c >= 0) {
    pthread_mutex_lock(&cache.mu);
    if (cache.count[c] > 0) {
      void *b = cache.blocks[c][--cache.count[c]];
      cache.bytes -= cb;
      pthread_mutex_unlock(&cache.mu);
      *got = cb;
      return b;
    }
    pthread_mutex_unlock(&cache.mu);
  }
  *got = c >= 0 ? cb : total;
  return crl__aligned_alloc(*got);
}

static void heap_free(void *block, size_t size) {
  size_t cb;
  int c = size >= CACHE_MIN ? size_class(size, &cb) : -1;
  if (c >= 0 && cb == size) {
    pthread_mutex_lock(&cache.mu);
    if (cache.count[c] < CACHE_PER_CLASS &&
        cache.bytes + size <= CACHE_MAX_BYTES) {
      cache.blocks[c][cache.count[c]++] = block;
      cache.bytes += size;
      pthread_mutex_unlock(&cache.mu);
      return;
    }
    pthread_mutex_unlock(&cache.mu);
  }
  crl__aligned_free(block);
}

__attribute__((destructor)) static void cache_drain(void) {
  pthread_mutex_lock(&cache.mu);
  for (int c = 0; c < CACHE_CLASSES; c++)
    while (cache.count[c] > 0)
      free(cache.blocks[c][--cache.count[c]]);
  cache.bytes = 0;
  pthread_mutex_unlock(&cache.mu);
}

crl_storage *crl_storage_new(size_t nbytes, bool zero) {
  if (nbytes > (SIZE_MAX >> 2))
    return CRL_ERR_NULL(CRL_ENOMEM, "storage of %zu bytes is too large",
                        nbytes);
  size_t got;
  char *block = heap_block(HEAP_HDR + nbytes, &got);
  if (!block)
    return CRL_ERR_NULL(CRL_ENOMEM, "out of memory allocating %zu bytes",
                        nbytes);
  crl_storage *s = (crl_storage *)block;
  memset(s, 0, sizeof *s);
  s->refcount = 1;
  s->kind = CRL_STORAGE_HEAP;
  s->device = CRL_DEVICE_CPU;
  s->data = block + HEAP_HDR;
  s->nbytes = nbytes;
  s->map_len = got; /* the block's size, for the cache */
  s->writable = true;
  if (zero && nbytes) memset(s->data, 0, nbytes);
  return s;
}

static crl_storage *new_struct(void) {
  crl_storage *s = calloc(1, sizeof *s);
  if (!s) {
    crl__err(CRL_ENOMEM, "out of memory");
    return NULL;
  }
  s->refcount = 1;
  s->device = CRL_DEVICE_CPU;
  return s;
}

crl_storage *crl_storage_new_mmap(const char *path, size_t offset,
                                  size_t nbytes, bool create, bool writable) {
  if (!path) return CRL_ERR_NULL(CRL_EINVAL, "mmap storage: path is NULL");
  if (create && !writable)
    return CRL_ERR_NULL(CRL_EINVAL, "mmap storage '%s': create needs writable",
                        path);
  int fd =
      open(path, (writable ? O_RDWR : O_RDONLY) | (create ? O_CREAT : 0), 0644);
  if (fd < 0)
    return CRL_ERR_NULL(CRL_EIO, "cannot open '%s': %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return CRL_ERR_NULL(CRL_EIO, "cannot stat '%s': %s", path, strerror(e));
  }
  size_t need = offset + nbytes;
  if ((size_t)st.st_size < need) {
    if (!create) {
      close(fd);
      return CRL_ERR_NULL(CRL_EFORMAT,
                          "'%s' is truncated: %zu bytes, %zu needed", path,
                          (size_t)st.st_size, need);
    }
    if (ftruncate(fd, (off_t)need) != 0) {
      int e = errno;
      close(fd);
      return CRL_ERR_NULL(CRL_EIO, "cannot extend '%s' to %zu bytes: %s", path,
                          need, strerror(e));
    }
  }
  /* map from the page containing `offset` */
  long page = sysconf(_SC_PAGESIZE);
  size_t base = offset - offset % (size_t)page;
  size_t maplen = need - base;
  void *m = NULL;
  if (maplen > 0) {
    m = mmap(NULL, maplen, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED,
             fd, (off_t)base);
    if (m == MAP_FAILED) {
      int e = errno;
      close(fd);
      return CRL_ERR_NULL(CRL_EIO, "cannot mmap '%s': %s", path, strerror(e));
    }
  }
  close(fd);
  crl_storage *s = new_struct();
  if (!s) {
    if (m) munmap(m, maplen);
    return NULL;
  }
  s->kind = CRL_STORAGE_MMAP;
  s->data = m ? (char *)m + (offset - base) : NULL;
  s->nbytes = nbytes;
  s->path = strdup(path);
  s->writable = writable;
  s->map_base = m;
  s->map_len = maplen;
  return s;
}

static _Atomic unsigned shm_counter;

static crl_storage *map_shm(const char *name, size_t nbytes, bool create) {
  int fd = shm_open(name, O_RDWR | (create ? O_CREAT | O_EXCL : 0), 0600);
  if (fd < 0)
    return CRL_ERR_NULL(CRL_EIO, "cannot open shared memory '%s': %s", name,
                        strerror(errno));
  if (create && ftruncate(fd, (off_t)(nbytes ? nbytes : 1)) != 0) {
    int e = errno;
    close(fd);
    shm_unlink(name);
    return CRL_ERR_NULL(CRL_EIO, "cannot size shared memory '%s': %s", name,
                        strerror(e));
  }
  if (!create) {
    struct stat st;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size < nbytes) {
      close(fd);
      return CRL_ERR_NULL(CRL_EFORMAT,
                          "shared memory '%s' is smaller than %zu bytes", name,
                          nbytes);
    }
  }
  size_t len = nbytes ? nbytes : 1;
  void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (m == MAP_FAILED) {
    if (create) shm_unlink(name);
    return CRL_ERR_NULL(CRL_EIO, "cannot map shared memory '%s': %s", name,
                        strerror(errno));
  }
  crl_storage *s = new_struct();
  if (!s) {
    munmap(m, len);
    if (create) shm_unlink(name);
    return NULL;
  }
  s->kind = CRL_STORAGE_SHM;
  s->data = m;
  s->nbytes = nbytes;
  s->path = strdup(name);
  s->writable = true;
  s->map_base = m;
  s->map_len = len;
  s->unlink_on_free = create;
  return s;
}

crl_storage *crl_storage_new_shm(size_t nbytes) {
  char name[64];
  snprintf(name, sizeof name, "/crl-%d-%u", (int)getpid(),
           atomic_fetch_add(&shm_counter, 1));
  return map_shm(name, nbytes, true);
}

crl_storage *crl_storage_open_shm(const char *name, size_t nbytes) {
  if (!name) return CRL_ERR_NULL(CRL_EINVAL, "shared memory name is NULL");
  return map_shm(name, nbytes, false);
}

crl_storage *crl_storage_wrap(void *data, size_t nbytes,
                              void (*deleter)(void *, void *), void *ctx) {
  crl_storage *s = new_struct();
  if (!s) return NULL;
  s->kind = CRL_STORAGE_EXTERNAL;
  s->data = data;
  s->nbytes = nbytes;
  s->writable = true;
  s->deleter = deleter;
  s->deleter_ctx = ctx;
  return s;
}

crl_storage *crl_storage_retain(crl_storage *s) {
  if (s)
    atomic_fetch_add_explicit((_Atomic int *)&s->refcount, 1,
                              memory_order_relaxed);
  return s;
}

void crl_storage_release(crl_storage *s) {
  if (!s) return;
  if (atomic_fetch_sub_explicit((_Atomic int *)&s->refcount, 1,
                                memory_order_acq_rel) != 1)
    return;
  switch (s->kind) {
  case CRL_STORAGE_HEAP: heap_free(s, s->map_len); return;
  case CRL_STORAGE_MMAP:
    if (s->map_base) munmap(s->map_base, s->map_len);
    break;
  case CRL_STORAGE_SHM:
    munmap(s->map_base, s->map_len);
    if (s->unlink_on_free) shm_unlink(s->path);
    break;
  case CRL_STORAGE_EXTERNAL:
    if (s->deleter) s->deleter(s->data, s->deleter_ctx);
    break;
  }
  free(s->path);
  free(s);
}
