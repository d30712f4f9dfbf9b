/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Checkpoint files: job directory names, the tree walked without following links,
 * CRC32C, the image header checks, and durable writes.
 *
 * The tree: below DSM_CKPT_DIR (and below DSM_CKPT_LOCAL_DIR, the node-local tree,
 * treated the same way) every directory is opened with O_NOFOLLOW relative to
 * its parent's descriptor and every file created, read, renamed or removed relative to
 * its directory's (openat, renameat, unlinkat), so a symbolic link planted anywhere in
 * the tree makes that one operation fail; what a link points to is never read,
 * written, chmod'ed or deleted. Only the job and epoch directories are chmod'ed (fchmod
 * on their own descriptors).
 *
 * Durability: an image is written to "<name>.tmp" (mode 0600), fsync'd, renamed to its
 * final name and the directory fsync'd, so after a crash a final name either holds a
 * complete image or does not exist; a half-written ".tmp" is never read. Whether an
 * epoch counts is decided elsewhere (its COMMIT record, written the same way).
 *
 * CRC32C (Castagnoli, reflected 0x82F63B78): the SSE4.2 crc32 instruction when the CPU
 * has it, else slicing-by-8 tables. Both give the standard check value 0xE3069283 for
 * "123456789", and crc(crc(0, a), b) == crc(0, a || b), so images are summed in pieces.
 * No MPI here: everything is local file-system work.
 */
#include "ckpt.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "win.h"

#define CHUNK ((size_t)1 << 20) // sum and write in pieces that stay in cache

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;
static bool have_hw;
static int tables_ready; // set (release) once make_tables ran: the per-call check is a load

static void make_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        }
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) {
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
        }
    }
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    have_hw = __builtin_cpu_supports("sse4.2");
#endif
    __atomic_store_n(&tables_ready, 1, __ATOMIC_RELEASE);
}

static uint32_t crc_sw(uint32_t c, const unsigned char *p, size_t len)
{
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= c;
        c = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
            table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
            table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--) {
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
    }
    return c;
}

#if defined(__x86_64__) && defined(__GNUC__)
/* One 8-byte crc32 per step; a single dependency chain runs at several GB/s, well above
 * what a disk with fsync takes, so no three-way interleaving. */
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t c, const unsigned char *p,
                                                         size_t len)
{
    uint64_t c64 = c;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
        p += 8;
        len -= 8;
    }
    c = (uint32_t)c64;
    while (len--) {
        c = __builtin_ia32_crc32qi(c, *p++);
    }
    return c;
}
#endif

uint32_t dsmi_crc32c(uint32_t crc, const void *buf, size_t len)
{
    if (__builtin_expect(!__atomic_load_n(&tables_ready, __ATOMIC_ACQUIRE), 0)) {
        pthread_once(&table_once, make_tables); // a replicated write sums on every call
    }
    uint32_t c = ~crc;
#if defined(__x86_64__) && defined(__GNUC__)
    if (have_hw) {
        return ~crc_hw(c, buf, len);
    }
#endif
    return ~crc_sw(c, buf, len);
}

uint32_t dsmi_ckpt_hdr_crc(const struct dsmi_ckpt_hdr *h)
{
    struct dsmi_ckpt_hdr copy = *h;
    copy.hdr_crc = 0;
    return dsmi_crc32c(0, &copy, sizeof copy);
}

void dsmi_why(char *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, DSMI_WHY, fmt, ap);
    va_end(ap);
}

static int io_fail(char *why, const char *what, const char *path)
{
    dsmi_why(why, "%s %s: %s", what, path, strerror(errno));
    return DSM_ERR_IO;
}

/* ---- the tree: names, and directories opened without following links ---- */

bool dsmi_ckpt_encode(const char *s, char *out, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
                    (*p == '.' && p != (const unsigned char *)s); // never "." or ".."
        if (k + (keep ? 1 : 3) >= len) {
            return false;
        }
        if (keep) {
            out[k++] = (char)*p;
        } else { // '%' itself is encoded, so the mapping is one to one
            out[k++] = '%';
            out[k++] = hex[*p >> 4];
            out[k++] = hex[*p & 15];
        }
    }
    out[k] = '\0';
    return len > 0;
}

int dsmi_ckpt_job_dir(const char *root, const char *job, const char *program, char *name, char *dir,
                      char *why)
{
    const char *src = job;
    if (src == NULL || src[0] == '\0') { // the program's basename, as dsmrun sees it
        const char *slash = program ? strrchr(program, '/') : NULL;
        src = slash ? slash + 1 : program;
        src = src && src[0] ? src : "mpidsm";
    }
    char enc[NAME_MAX + 1];
    if (strlen(src) >= DSMI_CKPT_JOB_MAX || !dsmi_ckpt_encode(src, enc, sizeof enc)) {
        dsmi_why(why,
                 "job name '%.64s...' is too long: its directory name (bytes outside "
                 "[A-Za-z0-9._-] count 3) would exceed %d bytes; set a shorter DSM_CKPT_JOB",
                 src, NAME_MAX);
        return DSM_ERR_ENV;
    }
    if (snprintf(dir, DSMI_CKPT_DIR_MAX, "%s/%s", root, enc) >= DSMI_CKPT_DIR_MAX) {
        dsmi_why(why, "checkpoint directory too long: %s/%s", root, enc);
        return DSM_ERR_ENV;
    }
    snprintf(name, DSMI_CKPT_JOB_MAX, "%s", src);
    return DSM_OK;
}

/* mkdir -p, following links: the root is the user's path, links in it are theirs. */
static int mkdirs(const char *path, char *why)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) {
        dsmi_why(why, "path too long: %s", path);
        return DSM_ERR_IO;
    }
    for (char *s = p + 1;; s++) {
        bool end = *s == '\0';
        if (*s == '/' || end) {
            *s = '\0';
            struct stat st;
            if (mkdir(p, 0700) != 0 &&
                (errno != EEXIST || stat(p, &st) != 0 || !S_ISDIR(st.st_mode))) {
                errno = errno == EEXIST ? ENOTDIR : errno; // a file is in the way
                return io_fail(why, "mkdir", p);
            }
            if (end) {
                break;
            }
            *s = '/';
        }
    }
    return DSM_OK;
}

/* One step down the tree: open component c of the directory at fd (path: its path, for
 * messages) without following a link; with create, make it first. -1 and errno. */
static int step(int fd, const char *c, const char *path, bool create, char *why)
{
    if (create && mkdirat(fd, c, 0700) != 0 && errno != EEXIST) {
        io_fail(why, "mkdir", path);
        return -1;
    }
    int sub = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
        int err = errno;
        struct stat st;
        if (fstatat(fd, c, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
            dsmi_why(why,
                     "%s is a symbolic link: refused (mpidsm never follows links "
                     "inside DSM_CKPT_DIR)",
                     path);
            err = ELOOP;
        } else {
            errno = err;
            io_fail(why, "open", path);
        }
        errno = err;
        return -1;
    }
    if (create) {
        fchmod(sub, 0700); // only the user may enter the job's files (fails if not ours)
    }
    return sub;
}

/* The length of the root dir lies under: the node-local root for a path in the
 * node-local tree (DSM_CKPT_LOCAL_DIR), else DSM_CKPT_DIR's. */
static size_t root_of(const char *dir)
{
    size_t ll = strlen(dsmi_ck.localdir);
    if (dsmi_ck.local && strncmp(dir, dsmi_ck.localdir, ll) == 0 &&
        (dir[ll] == '/' || dir[ll] == '\0')) {
        return dsmi_ck.local_root_len;
    }
    size_t rl = dsmi_ck.root_len;
    DSM_ASSERT(rl > 0 && strncmp(dir, dsmi_ck.jobdir, rl) == 0 && dir[rl] == '/');
    return rl;
}

int dsmi_ckpt_open_dir(const char *dir, bool create, char *why)
{
    size_t rl = root_of(dir);
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) {
        dsmi_why(why, "path too long: %s", dir);
        errno = ENAMETOOLONG;
        return -1;
    }
    p[rl] = '\0';
    if (create && mkdirs(p, why) != DSM_OK) {
        return -1;
    }
    int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        io_fail(why, "open", p);
        return -1;
    }
    p[rl] = '/';
    char *c = p + rl + 1;
    while (fd >= 0 && *c != '\0') {
        size_t len = strcspn(c, "/");
        bool last = c[len] == '\0';
        c[len] = '\0';
        int sub = len == 0 ? dup(fd) : step(fd, c, p, create, why); // "a//b"
        int err = errno;
        close(fd);
        errno = err;
        fd = sub;
        if (!last) {
            c[len] = '/';
        }
        c += last ? len : len + 1;
    }
    return fd;
}

int dsmi_ckpt_open_file(const char *dir, const char *name, char *why)
{
    int dfd = dsmi_ckpt_open_dir(dir, false, why);
    if (dfd < 0) {
        return -1;
    }
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    close(dfd);
    if (fd < 0) {
        dsmi_why(why, "open %s/%s: %s", dir, name,
                 err == ELOOP ? "a symbolic link, refused" : strerror(err));
        errno = err;
    }
    return fd;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len > ((size_t)1 << 30) ? (size_t)1 << 30 : len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = ENOSPC;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Write len bytes in cache-sized pieces, summing each piece just before writing it. */
static int write_summed(int fd, const void *buf, size_t len, uint32_t *crc)
{
    const char *p = buf;
    for (size_t off = 0; off < len; off += CHUNK) {
        size_t n = len - off < CHUNK ? len - off : CHUNK;
        if (crc) {
            *crc = dsmi_crc32c(*crc, p + off, n);
        }
        if (write_all(fd, p + off, n) != 0) {
            return -1;
        }
    }
    return 0;
}

static int write_image_fd(int fd, struct dsmi_ckpt_hdr *h, const void *seg, const void *reg,
                          bool crc)
{
    uint32_t c = 0;
    size_t half = h->seg_len / 2; // the crash hook's cut (CRCs are summed in pieces)
    if (write_all(fd, h, sizeof *h) != 0 || write_summed(fd, seg, half, crc ? &c : NULL) != 0) {
        return -1;
    }
    if (h->rank == dsmi_rt.rank && dsmi_ckpt_crash_due(DSMI_CKPT_CRASH_WRITE, h->epoch)) {
        fsync(fd); // a half-written file on disk, as a crash mid-write leaves it
        raise(SIGKILL);
    }
    if (write_summed(fd, (const char *)seg + half, h->seg_len - half, crc ? &c : NULL) != 0 ||
        write_summed(fd, reg, h->reg_len, crc ? &c : NULL) != 0) {
        return -1;
    }
    if (crc) { // the header goes last: its sums cover everything written above
        h->data_crc = c;
        h->hdr_crc = dsmi_ckpt_hdr_crc(h);
        if (pwrite(fd, h, sizeof *h, 0) != (ssize_t)sizeof *h) {
            return -1;
        }
    }
    return fsync(fd);
}

/* Create dir/name.tmp (0600, never through a link) for writing; its directory's fd in
 * *dfd. -1 with why set. */
static int create_tmp(const char *dir, const char *name, int *dfd, char *why)
{
    char tmp[NAME_MAX + 1];
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    *dfd = dsmi_ckpt_open_dir(dir, false, why);
    if (*dfd < 0) {
        return -1;
    }
    int fd = openat(*dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        dsmi_why(why, "create %s/%s: %s", dir, tmp, strerror(errno));
        close(*dfd);
    }
    return fd;
}

/* Finish what create_tmp began: close fd, rename the temp file over name (ok) or remove
 * it (a failed write, errno still its cause), fsync the directory. */
static int finish_tmp(const char *dir, const char *name, int dfd, int fd, bool ok, char *why)
{
    char tmp[NAME_MAX + 1];
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    int rc = ok ? DSM_OK : io_fail(why, "write into", dir);
    if (close(fd) != 0 && rc == DSM_OK) {
        rc = io_fail(why, "close in", dir);
    }
    if (rc == DSM_OK && renameat(dfd, tmp, dfd, name) != 0) {
        rc = io_fail(why, "rename in", dir);
    }
    if (rc != DSM_OK) {
        unlinkat(dfd, tmp, 0);
    } else {
        fsync(dfd); // some file systems refuse; the rename is then as durable as it gets
    }
    close(dfd);
    return rc;
}

int dsmi_ckpt_write(const char *dir, const char *name, struct dsmi_ckpt_hdr *h, const void *seg,
                    const void *reg, bool crc, char *why)
{
    int dfd, fd = create_tmp(dir, name, &dfd, why);
    if (fd < 0) {
        return DSM_ERR_IO;
    }
    bool ok = write_image_fd(fd, h, seg, reg, crc) == 0;
    return finish_tmp(dir, name, dfd, fd, ok, why);
}

int dsmi_ckpt_write_text(const char *dir, const char *name, const char *text, char *why)
{
    int dfd, fd = create_tmp(dir, name, &dfd, why);
    if (fd < 0) {
        return DSM_ERR_IO;
    }
    bool ok = write_all(fd, text, strlen(text)) == 0 && fsync(fd) == 0;
    return finish_tmp(dir, name, dfd, fd, ok, why);
}

int dsmi_ckpt_rename(const char *dir, const char *from, const char *to, char *why)
{
    int dfd = dsmi_ckpt_open_dir(dir, false, why);
    if (dfd < 0) {
        return DSM_ERR_IO;
    }
    int rc = DSM_OK;
    if (renameat(dfd, from, dfd, to) != 0) {
        rc = io_fail(why, "rename in", dir);
    } else {
        fsync(dfd);
    }
    close(dfd);
    return rc;
}

/* A failed check: the reason into why, and the code. */
#define CORRUPT(why, ...) (dsmi_why(why, __VA_ARGS__), DSM_ERR_CORRUPT)
#define ULL(x) ((unsigned long long)(x))

int dsmi_ckpt_check_hdr(const struct dsmi_ckpt_hdr *h, const struct dsmi_ckpt_expect *e,
                        size_t seg_cap, char *why)
{
    if (h->magic != DSMI_CKPT_MAGIC || h->hdr_size != sizeof *h) {
        return CORRUPT(why, "not an mpidsm checkpoint (magic 0x%llx, header size %llu)",
                       ULL(h->magic), ULL(h->hdr_size));
    }
    uint32_t c = dsmi_ckpt_hdr_crc(h);
    if (c != h->hdr_crc) {
        return CORRUPT(why, "header checksum mismatch (stored 0x%llx, computed 0x%llx)",
                       ULL(h->hdr_crc), ULL(c));
    }
    // Intact, but not what the epoch's COMMIT record promises: a wrong file (see ckpt.h).
    if (h->format != DSMI_CKPT_FORMAT || h->layout != DSMI_LAYOUT_VERSION) {
        return CORRUPT(why, "format %u / layout %u, the epoch's and this library's are %u / %u",
                       h->format, h->layout, DSMI_CKPT_FORMAT, DSMI_LAYOUT_VERSION);
    }
    if (h->job != e->job || h->program != e->program) {
        return CORRUPT(why, "belongs to another job or program");
    }
    if (h->epoch != e->epoch) {
        return CORRUPT(why, "belongs to epoch %llu, not %llu", ULL(h->epoch), ULL(e->epoch));
    }
    if (h->nranks != e->nranks || h->rank != e->rank) {
        return CORRUPT(why, "written by rank %d of a job of %d ranks (this is rank %d of %d)",
                       h->rank, h->nranks, e->rank, e->nranks);
    }
    if (h->seg_size != e->seg_size || h->seg_len > seg_cap) {
        return CORRUPT(why, "segment size %llu, this job has %llu", ULL(h->seg_size),
                       ULL(e->seg_size));
    }
    if (h->reg_len > ((uint64_t)1 << 40)) {
        return CORRUPT(why, "region length %llu is implausible", ULL(h->reg_len));
    }
    return DSM_OK;
}

static int read_all(int fd, void *buf, size_t len, uint32_t *crc)
{
    char *p = buf;
    for (size_t off = 0; off < len;) {
        size_t want = len - off < CHUNK ? len - off : CHUNK;
        ssize_t n = read(fd, p + off, want);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            errno = n == 0 ? EIO : errno; // the size was checked: a short file changed
            return -1;
        }
        if (crc) {
            *crc = dsmi_crc32c(*crc, p + off, (size_t)n);
        }
        off += (size_t)n;
    }
    return 0;
}

/* Header and size checks of an open image file. */
static int read_head(int fd, const char *path, const struct dsmi_ckpt_expect *e, size_t seg_cap,
                     struct dsmi_ckpt_hdr *h, char *why)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return io_fail(why, "stat", path);
    }
    if ((size_t)st.st_size < sizeof *h) {
        return CORRUPT(why, "truncated: %llu bytes, smaller than the %zu-byte header",
                       ULL(st.st_size), sizeof *h);
    }
    if (read_all(fd, h, sizeof *h, NULL) != 0) {
        return io_fail(why, "read", path);
    }
    int rc = dsmi_ckpt_check_hdr(h, e, seg_cap, why);
    if (rc != DSM_OK) {
        return rc;
    }
    unsigned long long want = sizeof *h + h->seg_len + h->reg_len;
    if ((unsigned long long)st.st_size != want) {
        return CORRUPT(why, "truncated or extended: %llu bytes, the header says %llu",
                       ULL(st.st_size), want);
    }
    return DSM_OK;
}

int dsmi_ckpt_read(const char *dir, const char *name, const struct dsmi_ckpt_expect *e, void *seg,
                   size_t seg_cap, void **reg, struct dsmi_ckpt_hdr *h, char *why)
{
    char path[PATH_MAX + NAME_MAX + 2];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = dsmi_ckpt_open_file(dir, name, why);
    if (fd < 0) {
        return errno == ENOENT ? DSM_ERR_NOTFOUND : DSM_ERR_IO;
    }
    int rc = read_head(fd, path, e, seg_cap, h, why);
    void *blob = NULL;
    if (rc == DSM_OK) {
        uint32_t c = 0;
        blob = malloc(h->reg_len ? h->reg_len : 1);
        if (blob == NULL) {
            dsmi_why(why, "no memory for %llu bytes of regions", ULL(h->reg_len));
            rc = DSM_ERR_NOMEM;
        } else if (read_all(fd, seg, h->seg_len, &c) != 0 ||
                   read_all(fd, blob, h->reg_len, &c) != 0) {
            rc = io_fail(why, "read", path);
        } else if (c != h->data_crc) {
            rc = CORRUPT(why, "data checksum mismatch (stored 0x%llx, computed 0x%llx)",
                         ULL(h->data_crc), ULL(c));
        }
    }
    close(fd);
    if (rc != DSM_OK) {
        free(blob);
        return rc;
    }
    *reg = blob;
    return DSM_OK;
}

void dsmi_ckpt_rmtree(const char *dir)
{
    char why[DSMI_WHY], parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", dir);
    char *base = strrchr(parent, '/');
    DSM_ASSERT(base != NULL && base > parent);
    *base++ = '\0';
    int pfd = dsmi_ckpt_open_dir(parent, false, why);
    int fd = pfd < 0 ? -1 : openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) { // a link (ELOOP) or gone: nothing of it is touched
        if (fd >= 0) {
            close(fd);
        }
        if (pfd >= 0) {
            close(pfd);
        }
        return;
    }
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0) {
            unlinkat(dirfd(d), ent->d_name, 0); // removes a link, never its target
        }
    }
    closedir(d);
    unlinkat(pfd, base, AT_REMOVEDIR);
    close(pfd);
}
