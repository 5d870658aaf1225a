/*
 * Power-loss simulation for the crash-consistency test (LD_PRELOAD into the broker).
 *
 * For every regular file under $POWERLOSS_ROOT that the process changes, a shadow copy in
 * $POWERLOSS_SHADOW holds what an fsync made durable: "<dev>-<ino>.dat" is the file's content as of
 * its last fsync/fdatasync (absent: never synced, i.e. empty), "<dev>-<ino>.touched" marks a file whose
 * page-cache content may differ from it. After SIGKILL the test replaces every touched file's content with
 * its shadow (CrashConsistencyTests.SimulatePowerLoss): exactly the data not covered by an fsync is lost.
 *
 * Writes are tracked per inode as the lowest offset changed since the last sync; a sync copies the file
 * from there to its end into the shadow and cuts the shadow to the file's size (appends cost only the tail).
 * Simplification, stated in the test: names (create, rename, unlink) are treated as durable at once, as
 * if every directory were fsynced; only file contents are lost. Memory-mapped writes are not seen.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static char shadow[PATH_MAX - 64]; /* room for "/<dev>-<ino>.touched" */

static void shadow_path(char *out, dev_t dev, ino_t ino, const char *suffix)
{
    snprintf(out, PATH_MAX, "%s/%llu-%llu.%s", shadow, (unsigned long long)dev, (unsigned long long)ino, suffix);
}

#ifndef POWERLOSS_RESTORE

#define SLOTS 65536

struct entry {
    dev_t dev;
    ino_t ino;
    int used;
    int tracked;      /* under the root */
    off_t min_dirty;  /* lowest offset changed since the last sync; -1: clean */
};

static struct entry table[SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char root[PATH_MAX];
static int enabled = -1;

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off_t);
static int (*real_ftruncate64)(int, off_t);
static int (*real_fallocate64)(int, int, off_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_open64)(const char *, int, ...);
static int (*real_open)(const char *, int, ...);
static int (*real_unlink)(const char *);
static int (*real_rename)(const char *, const char *);

static void init(void)
{
    if (enabled >= 0) return;
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    real_pwritev64 = dlsym(RTLD_NEXT, "pwritev64");
    real_ftruncate64 = dlsym(RTLD_NEXT, "ftruncate64");
    real_fallocate64 = dlsym(RTLD_NEXT, "fallocate64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_open64 = dlsym(RTLD_NEXT, "open64");
    real_open = dlsym(RTLD_NEXT, "open");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
    real_rename = dlsym(RTLD_NEXT, "rename");
    const char *r = getenv("POWERLOSS_ROOT");
    const char *s = getenv("POWERLOSS_SHADOW");
    if (r == NULL || s == NULL || !realpath(r, root)) { enabled = 0; return; }
    snprintf(shadow, sizeof shadow, "%s", s);
    enabled = 1;
}

static int under_root(const char *path)
{
    size_t n = strlen(root);
    return strncmp(path, root, n) == 0 && path[n] == '/';
}

/* The entry of fd's inode (lock held); NULL for anything but a regular file under the root. */
static struct entry *lookup(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return NULL;
    size_t h = ((size_t)st.st_ino * 2654435761u + (size_t)st.st_dev) % SLOTS;
    for (size_t i = 0; i < SLOTS; i++) {
        struct entry *e = &table[(h + i) % SLOTS];
        if (e->used && e->ino == st.st_ino && e->dev == st.st_dev) return e->tracked ? e : NULL;
        if (!e->used) {
            char link[64], path[PATH_MAX];
            snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
            ssize_t n = readlink(link, path, sizeof path - 1);
            if (n < 0) return NULL;
            path[n] = 0;
            e->used = 1;
            e->dev = st.st_dev;
            e->ino = st.st_ino;
            e->tracked = under_root(path);
            e->min_dirty = -1;
            if (!e->tracked) return NULL;
            char marker[PATH_MAX];
            shadow_path(marker, st.st_dev, st.st_ino, "touched");
            int m = real_open(marker, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
            if (m >= 0) close(m);
            return e;
        }
    }
    return NULL; /* table full: untracked (the test checks that the shadow saw the segments) */
}

static void dirty(int fd, off_t from)
{
    if (!enabled) return;
    pthread_mutex_lock(&lock);
    struct entry *e = lookup(fd);
    if (e != NULL && (e->min_dirty < 0 || from < e->min_dirty)) e->min_dirty = from < 0 ? 0 : from;
    pthread_mutex_unlock(&lock);
}

/* Copies [min_dirty, size) of fd's file into its shadow and cuts the shadow to size: that much is durable now. */
static void synced(int fd)
{
    if (!enabled) return;
    pthread_mutex_lock(&lock);
    struct entry *e = lookup(fd);
    struct stat st;
    if (e != NULL && e->min_dirty >= 0 && fstat(fd, &st) == 0) {
        char link[64], path[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        shadow_path(path, e->dev, e->ino, "dat");
        int in = real_open(link, O_RDONLY | O_CLOEXEC); /* fd may be write-only */
        int out = real_open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        if (in >= 0 && out >= 0) {
            char buf[65536];
            off_t pos = e->min_dirty;
            while (pos < st.st_size) {
                ssize_t n = pread(in, buf, sizeof buf, pos);
                if (n <= 0) break;
                if (real_pwrite64(out, buf, (size_t)n, pos) != n) break;
                pos += n;
            }
            real_ftruncate64(out, st.st_size);
            e->min_dirty = -1;
        }
        if (in >= 0) close(in);
        if (out >= 0) close(out);
    }
    pthread_mutex_unlock(&lock);
}

/* A path that is unlinked or renamed over: its inode may be reused, so forget its shadow. */
static void forget(const char *path)
{
    if (!enabled) return;
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return;
    pthread_mutex_lock(&lock);
    char p[PATH_MAX];
    shadow_path(p, st.st_dev, st.st_ino, "touched");
    real_unlink(p);
    shadow_path(p, st.st_dev, st.st_ino, "dat");
    real_unlink(p);
    size_t h = ((size_t)st.st_ino * 2654435761u + (size_t)st.st_dev) % SLOTS;
    for (size_t i = 0; i < SLOTS; i++) {
        struct entry *e = &table[(h + i) % SLOTS];
        if (!e->used) break;
        /* a tombstone (still used, so probing goes on): a new file on this inode gets a fresh slot */
        if (e->ino == st.st_ino && e->dev == st.st_dev) { e->ino = (ino_t)-1; e->dev = (dev_t)-1; e->min_dirty = -1; break; }
    }
    pthread_mutex_unlock(&lock);
}

ssize_t write(int fd, const void *buf, size_t count)
{
    init();
    if (enabled) dirty(fd, lseek(fd, 0, SEEK_CUR));
    return real_write(fd, buf, count);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset)
{
    init();
    dirty(fd, offset);
    return real_pwrite64(fd, buf, count, offset);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) __attribute__((alias("pwrite64")));

ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t offset)
{
    init();
    dirty(fd, offset);
    return real_pwritev64(fd, iov, iovcnt, offset);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) __attribute__((alias("pwritev64")));

int ftruncate64(int fd, off_t length)
{
    init();
    dirty(fd, length);
    return real_ftruncate64(fd, length);
}

int ftruncate(int fd, off_t length) __attribute__((alias("ftruncate64")));

int fallocate64(int fd, int mode, off_t offset, off_t len)
{
    init();
    dirty(fd, offset);
    return real_fallocate64(fd, mode, offset, len);
}

int fallocate(int fd, int mode, off_t offset, off_t len) __attribute__((alias("fallocate64")));

int fsync(int fd)
{
    init();
    synced(fd);
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    init();
    synced(fd);
    return real_fdatasync(fd);
}

static int open_common(int (*real)(const char *, int, ...), const char *path, int flags, mode_t mode)
{
    int fd = real(path, flags, mode);
    /* O_TRUNC drops the content: a change like any write, durable only after the next sync. */
    if (fd >= 0 && (flags & O_TRUNC)) dirty(fd, 0);
    return fd;
}

int open64(const char *path, int flags, ...)
{
    init();
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }
    return open_common(real_open64, path, flags, mode);
}

int open(const char *path, int flags, ...)
{
    init();
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) { va_list ap; va_start(ap, flags); mode = va_arg(ap, mode_t); va_end(ap); }
    return open_common(real_open, path, flags, mode);
}

int unlink(const char *path)
{
    init();
    forget(path);
    return real_unlink(path);
}

int rename(const char *from, const char *to)
{
    init();
    forget(to);
    return real_rename(from, to);
}
#else /* POWERLOSS_RESTORE: the tool the test runs after SIGKILL */

#include <ftw.h>

static long long files, bytes_lost;

static int restore(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type != FTW_F || !S_ISREG(st->st_mode)) return 0;
    char marker[PATH_MAX], dat[PATH_MAX];
    shadow_path(marker, st->st_dev, st->st_ino, "touched");
    if (access(marker, F_OK) != 0) return 0;
    shadow_path(dat, st->st_dev, st->st_ino, "dat");
    int f = open(path, O_RDWR);
    if (f < 0) { perror(path); exit(2); }
    int d = open(dat, O_RDONLY); /* absent: never synced, nothing of it is durable */
    off_t durable = 0;
    char a[65536], b[65536];
    for (;;) {
        ssize_t n = d >= 0 ? read(d, b, sizeof b) : 0;
        if (n <= 0) break;
        ssize_t m = pread(f, a, (size_t)n, durable);
        for (ssize_t i = 0; i < n; i++) if (i >= m || a[i] != b[i]) bytes_lost++;
        if (pwrite(f, b, (size_t)n, durable) != n) { perror(path); exit(2); }
        durable += n;
    }
    if (st->st_size > durable) bytes_lost += st->st_size - durable;
    if (ftruncate(f, durable) != 0) { perror(path); exit(2); }
    if (d >= 0) close(d);
    close(f);
    files++;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: %s DATA_DIR SHADOW_DIR\n", argv[0]); return 2; }
    snprintf(shadow, sizeof shadow, "%s", argv[2]);
    if (nftw(argv[1], restore, 32, FTW_PHYS) != 0) { perror("nftw"); return 2; }
    printf("{\"files\":%lld,\"bytesLost\":%lld}\n", files, bytes_lost);
    return 0;
}
#endif
