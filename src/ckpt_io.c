/* SPDX-License-Identifier: BSD-3-Clause
 * Copyright (c) mpidsm developers. */
/*
 * Checkpoint files: CRC32C, the image header checks, and durable writes.
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
    pthread_once(&table_once, make_tables);
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

int dsmi_ckpt_mkdirs(const char *path, char *why)
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

void dsmi_ckpt_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd); // some file systems refuse; the rename is then as durable as it gets
        close(fd);
    }
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

int dsmi_ckpt_write(const char *dir, const char *name, struct dsmi_ckpt_hdr *h, const void *seg,
                    const void *reg, bool crc, char *why)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return io_fail(why, "create", tmp);
    }
    if (write_image_fd(fd, h, seg, reg, crc) != 0) {
        int rc = io_fail(why, "write", tmp);
        close(fd);
        unlink(tmp);
        return rc;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int rc = io_fail(why, "close/rename", tmp);
        unlink(tmp);
        return rc;
    }
    dsmi_ckpt_fsync_dir(dir);
    return DSM_OK;
}

int dsmi_ckpt_write_text(const char *dir, const char *name, const char *text, char *why)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return io_fail(why, "create", tmp);
    }
    if (write_all(fd, text, strlen(text)) != 0 || fsync(fd) != 0) {
        int rc = io_fail(why, "write", tmp);
        close(fd);
        unlink(tmp);
        return rc;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int rc = io_fail(why, "close/rename", tmp);
        unlink(tmp);
        return rc;
    }
    dsmi_ckpt_fsync_dir(dir);
    return DSM_OK;
}

/* A failed check: the reason into why, and the code. */
#define CORRUPT(why, ...) (dsmi_why(why, __VA_ARGS__), DSM_ERR_CORRUPT)
#define MISMATCH(why, ...) (dsmi_why(why, __VA_ARGS__), DSM_ERR_UNSUPPORTED)
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
    // From here on the image is intact but made for another build or job shape: a
    // mismatch (DSM_ERR_UNSUPPORTED), which unlike damage does not condemn the epoch.
    if (h->format != DSMI_CKPT_FORMAT || h->layout != DSMI_LAYOUT_VERSION) {
        return MISMATCH(why,
                        "format %u / layout %u, this library reads format %u / "
                        "layout %u",
                        h->format, h->layout, DSMI_CKPT_FORMAT, DSMI_LAYOUT_VERSION);
    }
    if (h->job != e->job || h->epoch != e->epoch) {
        return MISMATCH(why, "belongs to another job or epoch (epoch %llu, want %llu)",
                        ULL(h->epoch), ULL(e->epoch));
    }
    if (h->nranks != e->nranks || h->rank != e->rank) {
        return MISMATCH(why, "written by rank %d of a job of %d ranks (this is rank %d of %d)",
                        h->rank, h->nranks, e->rank, e->nranks);
    }
    if (h->seg_size != e->seg_size || h->seg_len > seg_cap) {
        return MISMATCH(why, "segment size %llu, this job has %llu (DSM_HEAP_SIZE differs)",
                        ULL(h->seg_size), ULL(e->seg_size));
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

int dsmi_ckpt_read(const char *path, const struct dsmi_ckpt_expect *e, void *seg, size_t seg_cap,
                   void **reg, struct dsmi_ckpt_hdr *h, char *why)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = io_fail(why, "open", path);
        return errno == ENOENT ? DSM_ERR_NOTFOUND : rc;
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
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0) {
            char p[PATH_MAX];
            snprintf(p, sizeof p, "%s/%s", dir, ent->d_name);
            unlink(p);
        }
    }
    closedir(d);
    rmdir(dir);
}
