/* The few Linux syscalls Node's fs lacks and a lossless image reader/writer needs:
 * l*xattr (symlinks carry xattrs too), mknod/mkfifo, utimensat with nanoseconds and AT_SYMLINK_NOFOLLOW,
 * SEEK_DATA/SEEK_HOLE extent listing, binding a unix socket to recreate socket inodes, and scanDir: a directory's
 * names and lstat()s in one call (commit's walk: 20k+ lstat calls through fs cost more in JS objects than in the kernel),
 * decodeVerify: stored objects decoded and checked against their ids on libuv's thread pool, and unmapFilePages:
 * madvise(MADV_DONTNEED) over LMDB's read-only map of a file.
 * Paths are passed as Buffers so that non-UTF-8 names survive. Errors are thrown with `code` (e.g. 'EPERM'),
 * `errno`, `syscall` and `path`, like Node's own fs errors. */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <pthread.h>
#include <sched.h>
#include <openssl/sha.h>
#include <zstd.h>

#define PATH_MAXLEN 8192

static const char *errno_code(int e) {
  switch (e) {
    case EPERM: return "EPERM"; case ENOENT: return "ENOENT"; case EACCES: return "EACCES";
    case EEXIST: return "EEXIST"; case ENOTDIR: return "ENOTDIR"; case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC"; case ERANGE: return "ERANGE"; case ENOTSUP: return "ENOTSUP";
    case ENODATA: return "ENODATA"; case E2BIG: return "E2BIG"; case ENAMETOOLONG: return "ENAMETOOLONG";
    case ELOOP: return "ELOOP"; case EROFS: return "EROFS"; case EIO: return "EIO"; case ENXIO: return "ENXIO";
    case EBADF: return "EBADF"; case EADDRINUSE: return "EADDRINUSE";
    default: return "EUNKNOWN";
  }
}

static napi_value throw_errno(napi_env env, int e, const char *syscall, const char *path) {
  char msg[PATH_MAXLEN + 256];
  snprintf(msg, sizeof msg, "%s: %s, %s '%s'", errno_code(e), strerror(e), syscall, path ? path : "");
  napi_value m, err, v;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &err);
  napi_create_string_utf8(env, errno_code(e), NAPI_AUTO_LENGTH, &v); napi_set_named_property(env, err, "code", v);
  napi_create_int32(env, -e, &v); napi_set_named_property(env, err, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v); napi_set_named_property(env, err, "syscall", v);
  napi_throw(env, err);
  return NULL;
}

static int get_cstr(napi_env env, napi_value v, char *out, size_t cap) {
  bool isbuf = false;
  napi_is_buffer(env, v, &isbuf);
  if (isbuf) {
    void *data; size_t len;
    napi_get_buffer_info(env, v, &data, &len);
    if (len + 1 > cap || memchr(data, 0, len)) { napi_throw_type_error(env, "EINVAL", "bad path or name"); return -1; }
    memcpy(out, data, len); out[len] = 0; return (int)len;
  }
  size_t len;
  if (napi_get_value_string_utf8(env, v, out, cap, &len) != napi_ok) { napi_throw_type_error(env, "EINVAL", "expected a string or Buffer"); return -1; }
  return (int)len;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < want) { napi_throw_type_error(env, "EINVAL", "missing arguments"); return -1; }
  return 0;
}

static double get_num(napi_env env, napi_value v) { double d = 0; napi_get_value_double(env, v, &d); return d; }

/* llistxattr(path) -> Buffer[] of names */
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  napi_value argv[1]; char path[PATH_MAXLEN];
  if (get_args(env, info, 1, argv) || get_cstr(env, argv[0], path, sizeof path) < 0) return NULL;
  /* One call for the common case (no or few xattrs); ask for the size only when the stack buffer is too small. */
  char stackbuf[4096];
  char *buf = stackbuf;
  ssize_t n = llistxattr(path, stackbuf, sizeof stackbuf);
  if (n < 0 && errno != ERANGE) return throw_errno(env, errno, "llistxattr", path);
  if (n < 0) {
    n = llistxattr(path, NULL, 0);
    if (n < 0) return throw_errno(env, errno, "llistxattr", path);
    buf = malloc(n + 1);
    for (;;) {
      ssize_t m = llistxattr(path, buf, n);
      if (m >= 0) { n = m; break; }
      if (errno != ERANGE) { int e = errno; free(buf); return throw_errno(env, e, "llistxattr", path); }
      n = llistxattr(path, NULL, 0); buf = realloc(buf, n + 1);
    }
  }
  napi_value arr; napi_create_array(env, &arr);
  uint32_t i = 0; ssize_t off = 0;
  while (off < n) {
    size_t l = strlen(buf + off);
    napi_value b; void *d;
    napi_create_buffer_copy(env, l, buf + off, &d, &b);
    napi_set_element(env, arr, i++, b);
    off += l + 1;
  }
  if (buf != stackbuf) free(buf);
  return arr;
}

/* lgetxattr(path, name) -> Buffer */
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[2]; char path[PATH_MAXLEN], name[512];
  if (get_args(env, info, 2, argv) || get_cstr(env, argv[0], path, sizeof path) < 0 || get_cstr(env, argv[1], name, sizeof name) < 0) return NULL;
  ssize_t n = lgetxattr(path, name, NULL, 0);
  if (n < 0) return throw_errno(env, errno, "lgetxattr", path);
  char *buf = malloc(n > 0 ? n : 1);
  for (;;) {
    ssize_t m = lgetxattr(path, name, buf, n);
    if (m >= 0) { n = m; break; }
    if (errno != ERANGE) { int e = errno; free(buf); return throw_errno(env, e, "lgetxattr", path); }
    n = lgetxattr(path, name, NULL, 0); buf = realloc(buf, n > 0 ? n : 1);
  }
  napi_value b; void *d;
  napi_create_buffer_copy(env, n, buf, &d, &b);
  free(buf);
  return b;
}

/* lsetxattr(path, name, value: Buffer) */
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[3]; char path[PATH_MAXLEN], name[512];
  if (get_args(env, info, 3, argv) || get_cstr(env, argv[0], path, sizeof path) < 0 || get_cstr(env, argv[1], name, sizeof name) < 0) return NULL;
  void *data; size_t len;
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) { napi_throw_type_error(env, "EINVAL", "value must be a Buffer"); return NULL; }
  if (lsetxattr(path, name, data, len, 0) < 0) return throw_errno(env, errno, "lsetxattr", path);
  return NULL;
}

/* mknod(path, mode (incl. S_IFCHR/S_IFBLK/S_IFIFO), major, minor) */
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[4]; char path[PATH_MAXLEN];
  if (get_args(env, info, 4, argv) || get_cstr(env, argv[0], path, sizeof path) < 0) return NULL;
  mode_t mode = (mode_t)get_num(env, argv[1]);
  dev_t dev = makedev((unsigned)get_num(env, argv[2]), (unsigned)get_num(env, argv[3]));
  if (mknod(path, mode, dev) < 0) return throw_errno(env, errno, "mknod", path);
  return NULL;
}

/* utimens(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec): no symlink following */
static napi_value js_utimens(napi_env env, napi_callback_info info) {
  napi_value argv[5]; char path[PATH_MAXLEN];
  if (get_args(env, info, 5, argv) || get_cstr(env, argv[0], path, sizeof path) < 0) return NULL;
  struct timespec ts[2];
  int64_t v[4];
  for (int k = 0; k < 4; k++) {
    bool lossless;
    if (napi_get_value_bigint_int64(env, argv[k + 1], &v[k], &lossless) != napi_ok) {
      napi_throw_type_error(env, "EINVAL", "utimens: times must be bigints"); return NULL;
    }
  }
  ts[0].tv_sec = v[0]; ts[0].tv_nsec = v[1]; ts[1].tv_sec = v[2]; ts[1].tv_nsec = v[3];
  if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0) return throw_errno(env, errno, "utimensat", path);
  return NULL;
}

/* dataExtents(fd, size) -> number[] flat [offset, length, ...] of data regions; whole file if SEEK_DATA is unsupported */
static napi_value js_data_extents(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv)) return NULL;
  int fd = (int)get_num(env, argv[0]);
  off_t size = (off_t)get_num(env, argv[1]);
  napi_value arr; napi_create_array(env, &arr);
  uint32_t i = 0; off_t pos = 0;
  while (pos < size) {
    off_t d = lseek(fd, pos, SEEK_DATA);
    if (d < 0) {
      if (errno == ENXIO) break; /* only a hole remains */
      if (errno == EINVAL || errno == ENOTSUP) { d = pos; /* no hole support: one extent */ 
        napi_value a, b; napi_create_double(env, (double)pos, &a); napi_create_double(env, (double)(size - pos), &b);
        napi_set_element(env, arr, i++, a); napi_set_element(env, arr, i++, b); break; }
      return throw_errno(env, errno, "lseek", "");
    }
    if (d >= size) break;
    off_t h = lseek(fd, d, SEEK_HOLE);
    if (h < 0) return throw_errno(env, errno, "lseek", "");
    if (h > size) h = size;
    napi_value a, b;
    napi_create_double(env, (double)d, &a); napi_create_double(env, (double)(h - d), &b);
    napi_set_element(env, arr, i++, a); napi_set_element(env, arr, i++, b);
    pos = h;
  }
  lseek(fd, 0, SEEK_SET);
  return arr;
}

/* mksocket(path): create a unix socket inode at path (the socket itself is closed at once) */
static napi_value js_mksocket(napi_env env, napi_callback_info info) {
  napi_value argv[1]; char path[PATH_MAXLEN];
  if (get_args(env, info, 1, argv) || get_cstr(env, argv[0], path, sizeof path) < 0) return NULL;
  struct sockaddr_un sa; memset(&sa, 0, sizeof sa); sa.sun_family = AF_UNIX;
  /* sun_path is short (108 bytes): bind through /proc/self/fd of the parent directory when the path is long */
  const char *slash = strrchr(path, '/');
  int dfd = -1; const char *name = path;
  if (strlen(path) >= sizeof sa.sun_path) {
    if (!slash) return throw_errno(env, ENAMETOOLONG, "bind", path);
    char dir[PATH_MAXLEN]; size_t dl = slash - path; memcpy(dir, path, dl); dir[dl] = 0;
    dfd = open(dl ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return throw_errno(env, errno, "open", dir);
    snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/%s", dfd, slash + 1);
    if (strlen(slash + 1) + 24 >= sizeof sa.sun_path) { close(dfd); return throw_errno(env, ENAMETOOLONG, "bind", path); }
  } else {
    strcpy(sa.sun_path, name);
  }
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) { if (dfd >= 0) close(dfd); return throw_errno(env, errno, "socket", path); }
  int r = bind(s, (struct sockaddr *)&sa, sizeof sa);
  int e = errno;
  close(s); if (dfd >= 0) close(dfd);
  if (r < 0) return throw_errno(env, e, "bind", path);
  return NULL;
}


/* scanDir(path) -> Buffer: the directory (opened O_NOFOLLOW) and its entries sorted by name bytes, each
 * fstatat(AT_SYMLINK_NOFOLLOW)ed. Records, little endian, each a multiple of 8 bytes:
 *   u32 err (errno of fstatat, 0 = ok), u32 mode, u32 uid, u32 gid, u64 nlink, u64 ino, u64 dev, u64 size, u64 rdev,
 *   i64 mtime_sec, i64 mtime_nsec, i64 ctime_sec, i64 ctime_nsec, u32 name_len, name bytes, zero padding to 8.
 * The first record is the directory itself (empty name). Field layout: SCAN_* in src/native/index.ts. */
typedef struct { char *name; size_t len; } scan_name;

static int scan_cmp(const void *a, const void *b) {
  const scan_name *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->name, y->name, n);
  return c ? c : (x->len < y->len ? -1 : x->len > y->len ? 1 : 0);
}

#define SCAN_HEAD 92
#define SCAN_SIZE(len) ((SCAN_HEAD + (len) + 7) & ~(size_t)7)

static size_t scan_put(uint8_t *out, int err, const struct stat *st, const char *name, size_t len) {
  uint32_t u32[4] = { (uint32_t)err, st ? st->st_mode : 0, st ? st->st_uid : 0, st ? st->st_gid : 0 };
  uint64_t u64[9] = {
    st ? (uint64_t)st->st_nlink : 0, st ? (uint64_t)st->st_ino : 0, st ? (uint64_t)st->st_dev : 0,
    st ? (uint64_t)st->st_size : 0, st ? (uint64_t)st->st_rdev : 0,
    st ? (uint64_t)st->st_mtim.tv_sec : 0, st ? (uint64_t)st->st_mtim.tv_nsec : 0,
    st ? (uint64_t)st->st_ctim.tv_sec : 0, st ? (uint64_t)st->st_ctim.tv_nsec : 0,
  };
  uint32_t nl = (uint32_t)len;
  size_t total = SCAN_SIZE(len);
  memset(out, 0, total);
  memcpy(out, u32, 16); memcpy(out + 16, u64, 72); memcpy(out + 88, &nl, 4);
  memcpy(out + SCAN_HEAD, name, len);
  return total;
}

/* The records of the directory at path (see scanDir above) in a malloc'ed buffer: 0, or the errno that stopped it. */
static int scan_dir_core(const char *path, uint8_t **outp, size_t *outlen) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat self;
  if (fstat(fd, &self) < 0) { int e = errno; close(fd); return e; }
  DIR *d = fdopendir(fd);
  if (!d) { int e = errno; close(fd); return e; }
  size_t cap = 64, n = 0;
  scan_name *names = malloc(cap * sizeof *names);
  int err = names ? 0 : ENOMEM;
  struct dirent *de;
  while (!err) {
    errno = 0;
    de = readdir(d);
    if (!de) { err = errno; break; }
    if (de->d_name[0] == '.' && (de->d_name[1] == 0 || (de->d_name[1] == '.' && de->d_name[2] == 0))) continue;
    if (n == cap) {
      scan_name *more = realloc(names, (cap *= 2) * sizeof *names);
      if (!more) { err = ENOMEM; break; }
      names = more;
    }
    size_t len = strlen(de->d_name);
    names[n].name = malloc(len);
    if (!names[n].name) { err = ENOMEM; break; }
    memcpy(names[n].name, de->d_name, len);
    names[n++].len = len;
  }
  uint8_t *out = NULL;
  size_t size = SCAN_SIZE(0);
  if (!err) {
    qsort(names, n, sizeof *names, scan_cmp);
    for (size_t i = 0; i < n; i++) size += SCAN_SIZE(names[i].len);
    out = malloc(size);
    if (!out) err = ENOMEM;
  }
  if (!err) {
    size_t at = scan_put(out, 0, &self, "", 0);
    for (size_t i = 0; i < n; i++) {
      struct stat st;
      char name[NAME_MAX + 1];
      memcpy(name, names[i].name, names[i].len); name[names[i].len] = 0;
      int e = fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) < 0 ? errno : 0;
      at += scan_put(out + at, e, e ? NULL : &st, names[i].name, names[i].len);
    }
  }
  for (size_t i = 0; i < n; i++) free(names[i].name);
  free(names);
  closedir(d);
  if (err) { free(out); return err; }
  *outp = out;
  *outlen = size;
  return 0;
}

/* Frees the records of an external buffer made by scanDir or scanDirs. */
static void free_scan(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  free(data);
}

static napi_value js_scan_dir(napi_env env, napi_callback_info info) {
  napi_value argv[1]; char path[PATH_MAXLEN];
  if (get_args(env, info, 1, argv) || get_cstr(env, argv[0], path, sizeof path) < 0) return NULL;
  uint8_t *out; size_t len;
  int err = scan_dir_core(path, &out, &len);
  if (err) return throw_errno(env, err, "scandir", path);
  napi_value buf;
  if (napi_create_external_buffer(env, len, out, free_scan, NULL, &buf) != napi_ok) {
    free(out);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  return buf;
}

/* scanDirs(paths[], budget?) -> (Buffer | number | null)[]: scanDir of each path, on up to 4 threads (one per
 * processor), each an errno where scanDir would throw; once the records made reach `budget` bytes, the directories
 * not yet started are left unscanned (null). A re-commit scans every directory of the tree (2578 for a Debian base:
 * lstat of each of its entries, ≈ 85 ms on one thread); the kernel answers lstat calls on every core at once. */
typedef struct { char **paths; uint8_t **out; size_t *len; int *err; size_t n; size_t next; size_t budget; size_t used; } scan_batch;

/* A directory left unscanned because the batch's records reached its budget (an answer of null). */
#define SCAN_NOT_DONE (-1)

static void *scan_batch_run(void *arg) {
  scan_batch *b = arg;
  for (;;) {
    size_t i = __atomic_fetch_add(&b->next, 1, __ATOMIC_RELAXED);
    if (i >= b->n) return NULL;
    if (__atomic_load_n(&b->used, __ATOMIC_RELAXED) >= b->budget) { b->err[i] = SCAN_NOT_DONE; continue; }
    b->err[i] = scan_dir_core(b->paths[i], &b->out[i], &b->len[i]);
    if (!b->err[i]) __atomic_fetch_add(&b->used, b->len[i], __ATOMIC_RELAXED);
  }
}

static napi_value js_scan_dirs(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) { napi_throw_type_error(env, "EINVAL", "missing arguments"); return NULL; }
  double budget = 0;
  if (argc < 2 || napi_get_value_double(env, argv[1], &budget) != napi_ok || !(budget > 0)) budget = 1e18;
  bool isarr = false;
  uint32_t n = 0;
  if (napi_is_array(env, argv[0], &isarr) != napi_ok || !isarr || napi_get_array_length(env, argv[0], &n) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "expected an array of paths");
    return NULL;
  }
  scan_batch b = { calloc(n + 1, sizeof(char *)), calloc(n + 1, sizeof(uint8_t *)), calloc(n + 1, sizeof(size_t)), calloc(n + 1, sizeof(int)), n, 0, (size_t)budget, 0 };
  napi_value result = NULL;
  if (!b.paths || !b.out || !b.len || !b.err) { napi_throw_error(env, "ENOMEM", "out of memory"); goto done; }
  char path[PATH_MAXLEN];
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    if (napi_get_element(env, argv[0], i, &v) != napi_ok || get_cstr(env, v, path, sizeof path) < 0) goto done;
    if (!(b.paths[i] = strdup(path))) { napi_throw_error(env, "ENOMEM", "out of memory"); goto done; }
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  size_t threads = cpus < 1 ? 1 : cpus > 4 ? 4 : (size_t)cpus;
  if (threads > n / 16) threads = n / 16 ? n / 16 : 1;
  pthread_t tid[4];
  size_t started = 0;
  for (size_t t = 1; t < threads; t++) if (pthread_create(&tid[started], NULL, scan_batch_run, &b) == 0) started++;
  scan_batch_run(&b);
  for (size_t t = 0; t < started; t++) pthread_join(tid[t], NULL);
  if (napi_create_array_with_length(env, n, &result) != napi_ok) { result = NULL; napi_throw_error(env, "ENOMEM", "out of memory"); goto done; }
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    napi_status st;
    if (b.err[i] == SCAN_NOT_DONE) st = napi_get_null(env, &v);
    else if (b.err[i]) st = napi_create_int32(env, b.err[i], &v);
    else {
      /* The records become the buffer itself (freed with it), not a copy: a batch is not held twice. */
      st = napi_create_external_buffer(env, b.len[i], b.out[i], free_scan, NULL, &v);
      if (st == napi_ok) b.out[i] = NULL;
    }
    if (st != napi_ok || napi_set_element(env, result, i, v) != napi_ok) { result = NULL; napi_throw_error(env, "ENOMEM", "out of memory"); break; }
  }
done:
  for (uint32_t i = 0; i < n; i++) { if (b.paths) free(b.paths[i]); if (b.out) free(b.out[i]); }
  free(b.paths); free(b.out); free(b.len); free(b.err);
  return result;
}

/* decodeVerify(stored[], out[], ids, status, done): decodes stored objects (codec byte + payload: 0 raw, 1 zstd) into
 * the given buffers and checks each against its SHA-256 id, on libuv's thread pool, then calls done(). status[i] is 0
 * when out[i] holds the object, else why not (VERIFY_* below); the caller reads such an object again itself to report
 * the damage. Node has no threaded zstd+sha256 of its own: decoding on worker threads costs a buffer per object that
 * crosses back and is collected; here the decoded bytes land in buffers the caller recycles, and JS is not involved.
 * The arrays and buffers must not be touched until done() is called (they are held, and written, meanwhile). */
enum { VERIFY_OK = 0, VERIFY_CODEC = 1, VERIFY_DECODE = 2, VERIFY_SIZE = 3, VERIFY_HASH = 4 };

typedef struct { const uint8_t *src; size_t srclen; uint8_t *dst; size_t dstlen; } verify_item;

typedef struct {
  napi_async_work work;
  napi_ref hold;     /* [stored, out, ids, status, done]: keeps every buffer alive until complete */
  size_t n;
  verify_item *items;
  const uint8_t *ids;
  int32_t *status;
} verify_job;

static __thread ZSTD_DCtx *thread_dctx;

static __thread int thread_batch;

static void verify_execute(napi_env env, void *data) {
  (void)env;
  verify_job *job = data;
  /* A pool thread woken for a batch would otherwise preempt the main thread (which composes and writes meanwhile)
   * on a machine whose cores are all busy: SCHED_BATCH threads do not preempt on wakeup, they wait for the tick. */
  if (!thread_batch) {
    struct sched_param sp = { 0 };
    pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
    thread_batch = 1;
  }
  for (size_t i = 0; i < job->n; i++) {
    verify_item *it = &job->items[i];
    int32_t st = VERIFY_OK;
    if (it->srclen == 0) st = VERIFY_CODEC;
    else if (it->src[0] == 0) {
      if (it->srclen - 1 != it->dstlen) st = VERIFY_SIZE;
      else memcpy(it->dst, it->src + 1, it->dstlen);
    } else if (it->src[0] == 1) {
      if (!thread_dctx) thread_dctx = ZSTD_createDCtx();
      unsigned long long declared = ZSTD_getFrameContentSize(it->src + 1, it->srclen - 1);
      if (!thread_dctx) st = VERIFY_DECODE;
      else if (declared != it->dstlen) st = VERIFY_SIZE;
      else {
        size_t got = ZSTD_decompressDCtx(thread_dctx, it->dst, it->dstlen, it->src + 1, it->srclen - 1);
        if (ZSTD_isError(got)) st = VERIFY_DECODE;
        else if (got != it->dstlen) st = VERIFY_SIZE;
      }
    } else st = VERIFY_CODEC;
    if (st == VERIFY_OK) {
      uint8_t digest[SHA256_DIGEST_LENGTH];
      SHA256(it->dst, it->dstlen, digest);
      if (memcmp(digest, job->ids + 32 * i, 32) != 0) st = VERIFY_HASH;
    }
    job->status[i] = st;
  }
}

static void verify_complete(napi_env env, napi_status status, void *data) {
  (void)status;
  verify_job *job = data;
  napi_value hold, done, undef;
  if (napi_get_reference_value(env, job->hold, &hold) == napi_ok && napi_get_element(env, hold, 4, &done) == napi_ok) {
    napi_get_undefined(env, &undef);
    napi_call_function(env, undef, done, 0, NULL, NULL);
  }
  napi_delete_reference(env, job->hold);
  napi_delete_async_work(env, job->work);
  free(job->items);
  free(job);
}

static int buffer_data(napi_env env, napi_value v, void **data, size_t *len) {
  bool ok = false;
  if (napi_is_buffer(env, v, &ok) != napi_ok || !ok) return -1;
  return napi_get_buffer_info(env, v, data, len) == napi_ok ? 0 : -1;
}

static napi_value js_decode_verify(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (get_args(env, info, 5, argv)) return NULL;
  uint32_t n = 0, n2 = 0;
  bool isarr = false, istyped = false;
  napi_is_array(env, argv[0], &isarr);
  if (!isarr || napi_get_array_length(env, argv[0], &n) != napi_ok) { napi_throw_type_error(env, "EINVAL", "stored must be an array"); return NULL; }
  napi_is_array(env, argv[1], &isarr);
  if (!isarr || napi_get_array_length(env, argv[1], &n2) != napi_ok || n2 != n) { napi_throw_type_error(env, "EINVAL", "out must be an array as long as stored"); return NULL; }
  void *ids; size_t idslen;
  if (buffer_data(env, argv[2], &ids, &idslen) || idslen != 32 * (size_t)n) { napi_throw_type_error(env, "EINVAL", "ids must be a Buffer of 32 bytes per object"); return NULL; }
  napi_is_typedarray(env, argv[3], &istyped);
  napi_typedarray_type tt; size_t tlen; void *tdata;
  if (!istyped || napi_get_typedarray_info(env, argv[3], &tt, &tlen, &tdata, NULL, NULL) != napi_ok || tt != napi_int32_array || tlen != n) {
    napi_throw_type_error(env, "EINVAL", "status must be an Int32Array as long as stored"); return NULL;
  }
  napi_valuetype ft;
  napi_typeof(env, argv[4], &ft);
  if (ft != napi_function) { napi_throw_type_error(env, "EINVAL", "done must be a function"); return NULL; }
  verify_job *job = calloc(1, sizeof *job);
  if (job) job->items = calloc(n ? n : 1, sizeof *job->items);
  if (!job || !job->items) { free(job); napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  job->n = n; job->ids = ids; job->status = tdata;
  for (uint32_t i = 0; i < n; i++) {
    napi_value s, o; void *sd, *od; size_t sl, ol;
    napi_get_element(env, argv[0], i, &s);
    napi_get_element(env, argv[1], i, &o);
    if (buffer_data(env, s, &sd, &sl) || buffer_data(env, o, &od, &ol)) {
      free(job->items); free(job);
      napi_throw_type_error(env, "EINVAL", "stored and out must hold Buffers"); return NULL;
    }
    job->items[i] = (verify_item){ sd, sl, od, ol };
  }
  napi_value hold, name;
  napi_create_array_with_length(env, 5, &hold);
  for (uint32_t i = 0; i < 5; i++) napi_set_element(env, hold, i, argv[i]);
  napi_create_reference(env, hold, 1, &job->hold);
  napi_create_string_utf8(env, "viva.decodeVerify", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, verify_execute, verify_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return NULL;
}

/* sha256Hex(data) -> the SHA-256 of data as 64 lowercase hex digits (OpenSSL's, which node exports): an object id
 * without loading node:crypto (≈ 20 modules, 2.4 ms of every command's start) nor a Hash object per call. */
static napi_value js_sha256_hex(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  void *data = NULL; size_t len = 0;
  bool ok = false;
  napi_is_typedarray(env, argv[0], &ok);
  if (ok) {
    napi_typedarray_type tt; size_t n; napi_value ab; size_t off;
    napi_get_typedarray_info(env, argv[0], &tt, &n, &data, &ab, &off);
    if (tt != napi_uint8_array) ok = false;
    len = n;
  }
  if (!ok) { napi_throw_type_error(env, "EINVAL", "expected a Uint8Array"); return NULL; }
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(len ? data : (const uint8_t *)"", len, digest);
  static const char hexd[] = "0123456789abcdef";
  char hex[2 * SHA256_DIGEST_LENGTH];
  for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) { hex[2 * i] = hexd[digest[i] >> 4]; hex[2 * i + 1] = hexd[digest[i] & 15]; }
  napi_value out;
  napi_create_string_latin1(env, hex, sizeof hex, &out);
  return out;
}

/* unmapFilePages(path): drops this process's page-table entries for every read-only shared mapping of the file at
 * path (found in /proc/self/maps by device and inode) with MADV_DONTNEED, and returns the bytes of mappings advised.
 * The pages stay in the page cache and come back on the next access, so readers of the mapping see no change. LMDB
 * maps its data file read-only and shared; every B-tree page a writer reads there makes the kernel map the 64 KiB
 * around it (fault-around), and between the pages of packs just written those are many: RssFile grew by tens of MB
 * over a large import. A writable or private mapping is never touched: its pages would not come back the same.
 * Between reading a line of the maps and the madvise, the range must stay that mapping: the caller holds the LMDB
 * environment open, whose map lives (at one address, never remapped: its size is fixed at open) until it is closed. */
static napi_value js_unmap_file_pages(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[PATH_MAXLEN];
  if (get_args(env, info, 1, argv) || get_cstr(env, argv[0], path, sizeof path) < 0) return NULL;
  struct stat st;
  if (stat(path, &st) != 0) return throw_errno(env, errno, "stat", path);
  FILE *maps = fopen("/proc/self/maps", "re");
  if (!maps) return throw_errno(env, errno, "open", "/proc/self/maps");
  char line[PATH_MAXLEN + 256];
  double advised = 0;
  int failed = 0;
  while (fgets(line, sizeof line, maps)) {
    unsigned long start, end, offset, inode;
    unsigned int major, minor;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &start, &end, perms, &offset, &major, &minor, &inode) != 7) continue;
    if (inode != (unsigned long)st.st_ino || makedev(major, minor) != st.st_dev) continue;
    if (perms[1] != '-' || perms[3] != 's') continue;
    if (madvise((void *)start, end - start, MADV_DONTNEED) != 0) { failed = errno; break; }
    advised += (double)(end - start);
  }
  fclose(maps);
  if (failed) return throw_errno(env, failed, "madvise", path);
  napi_value out;
  napi_create_double(env, advised, &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL },
    { "lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL },
    { "lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL },
    { "mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL },
    { "utimens", NULL, js_utimens, NULL, NULL, NULL, napi_enumerable, NULL },
    { "dataExtents", NULL, js_data_extents, NULL, NULL, NULL, napi_enumerable, NULL },
    { "mksocket", NULL, js_mksocket, NULL, NULL, NULL, napi_enumerable, NULL },
    { "scanDir", NULL, js_scan_dir, NULL, NULL, NULL, napi_enumerable, NULL },
    { "scanDirs", NULL, js_scan_dirs, NULL, NULL, NULL, napi_enumerable, NULL },
    { "decodeVerify", NULL, js_decode_verify, NULL, NULL, NULL, napi_enumerable, NULL },
    { "sha256Hex", NULL, js_sha256_hex, NULL, NULL, NULL, napi_enumerable, NULL },
    { "unmapFilePages", NULL, js_unmap_file_pages, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
