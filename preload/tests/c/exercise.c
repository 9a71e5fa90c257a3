/* Exercises every C allocation function a malloc replacement exports,
 * for the preload tests: run it under LD_PRELOAD of an allocator library.
 *
 * Four threads call malloc, calloc, realloc, reallocarray, posix_memalign,
 * aligned_alloc, memalign, valloc, pvalloc, malloc_usable_size and free on
 * sizes across the small classes and beyond, check alignment, zeroing,
 * contents across realloc and usable sizes, and hand blocks to the next
 * thread, which checks and frees them. Meanwhile the main thread forks:
 * each child allocates, checks and exits, and must not hang. Then the
 * error cases (overflow, bad alignments) in one thread.
 *
 * Prints "ok" and exits 0 when everything held; otherwise names the first
 * failed check and exits 1. Arguments: the minimum alignment every malloc
 * block must have (8, or 16 for allocators that promise C's 16), and
 * optionally how many times to fork (default 8; 0 for an allocator that
 * does not promise a usable malloc in the child of a threaded fork).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define THREADS 4
#define ROUNDS 3000
#define FORKS 8 /* the default */
#define SLOTS 64

static size_t min_align = 8;

static void fail(const char *what, size_t a, size_t b) {
    fprintf(stderr, "FAILED: %s (%zu, %zu)\n", what, a, b);
    fflush(stderr);
    _exit(1);
}

#define CHECK(cond, a, b) do { if (!(cond)) fail(#cond, (size_t)(a), (size_t)(b)); } while (0)

static uint64_t next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A size: mostly small (the pools), some beyond 512 bytes, a few large. */
static size_t some_size(uint64_t *s) {
    uint64_t r = next(s) % 100;
    if (r < 75) return next(s) % 513;
    if (r < 95) return 513 + next(s) % 4000;
    return 100000 + next(s) % 200000;
}

static void fill(unsigned char *p, size_t n, unsigned char tag) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(tag + i * 7);
}

static int holds(const unsigned char *p, size_t n, unsigned char tag) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(tag + i * 7)) return 0;
    return 1;
}

struct block { unsigned char *p; size_t n; unsigned char tag; };

/* Blocks handed from thread t to thread t + 1. */
static struct block mailbox[THREADS][SLOTS];
static int mail_count[THREADS];
static pthread_mutex_t mail_lock[THREADS];

static void check_block(void *p, size_t n, size_t align) {
    CHECK(p != NULL, n, align);
    CHECK((uintptr_t)p % align == 0, (uintptr_t)p, align);
    CHECK(malloc_usable_size(p) >= n, malloc_usable_size(p), n);
}

/* One allocation through a function chosen by `r`, checked and filled. */
static struct block allocate(uint64_t *s, unsigned char tag) {
    size_t n = some_size(s);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *p = NULL;
    size_t align = n >= min_align ? min_align : 1;
    switch (next(s) % 9) {
    case 0: case 1: case 2:
        p = malloc(n);
        break;
    case 3: {
        size_t k = 1 + next(s) % 8;
        /* Dirty memory first, so that zeroing is really tested. */
        void *d = malloc(k * n);
        if (d) { memset(d, 0xA5, k * n); free(d); }
        p = calloc(k, n);
        CHECK(p != NULL, k, n);
        for (size_t i = 0; i < k * n; i++) CHECK(((unsigned char *)p)[i] == 0, i, k * n);
        n = k * n;
        break;
    }
    case 4: {
        align = (size_t)1 << (3 + next(s) % 10); /* 8 .. 4096 */
        CHECK(posix_memalign(&p, align, n) == 0, align, n);
        break;
    }
    case 5:
        align = (size_t)1 << (next(s) % 13); /* 1 .. 4096 */
        p = aligned_alloc(align, n);
        break;
    case 6:
        align = (size_t)1 << (next(s) % 13);
        p = memalign(align, n);
        break;
    case 7:
        align = page;
        p = (next(s) & 1) ? valloc(n) : pvalloc(n);
        break;
    default: {
        /* Grow or shrink through realloc and reallocarray, across classes
           and to and from glibc's sizes. */
        size_t m = some_size(s);
        unsigned char *q = malloc(m);
        CHECK(q != NULL, m, 0);
        fill(q, m, tag);
        p = (next(s) & 1) ? realloc(q, n) : reallocarray(q, 1, n);
        if (n == 0) {
            /* glibc frees and returns NULL; others may return a block. */
            if (p == NULL) p = malloc(0);
        } else {
            CHECK(p != NULL, m, n);
            CHECK(holds(p, m < n ? m : n, tag), m, n);
        }
        break;
    }
    }
    check_block(p, n, align);
    fill(p, n, tag);
    return (struct block){ p, n, tag };
}

static void release(struct block b) {
    if (!holds(b.p, b.n, b.tag)) fail("block contents changed", (size_t)b.p, b.n);
    free(b.p);
}

static void *worker(void *arg) {
    int t = (int)(intptr_t)arg;
    uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(t + 1);
    struct block live[SLOTS] = {0};
    for (int r = 0; r < ROUNDS; r++) {
        int k = (int)(next(&s) % SLOTS);
        if (live[k].p) release(live[k]);
        live[k] = allocate(&s, (unsigned char)(t * 16 + r));
        /* Every few rounds, hand a block to the next thread. */
        if (r % 8 == 0 && live[k].p) {
            int to = (t + 1) % THREADS;
            pthread_mutex_lock(&mail_lock[to]);
            if (mail_count[to] < SLOTS) {
                mailbox[to][mail_count[to]++] = live[k];
                live[k].p = NULL;
            }
            pthread_mutex_unlock(&mail_lock[to]);
        }
        /* And free what the previous thread handed us. */
        pthread_mutex_lock(&mail_lock[t]);
        while (mail_count[t] > 0) release(mailbox[t][--mail_count[t]]);
        pthread_mutex_unlock(&mail_lock[t]);
    }
    for (int k = 0; k < SLOTS; k++)
        if (live[k].p) release(live[k]);
    return NULL;
}

/* What a forked child does: allocate through every path, check, exit. */
static void child(int i) {
    alarm(20); /* A hung child dies of SIGALRM, which the parent reports. */
    uint64_t s = 12345 + (uint64_t)i;
    struct block b[32];
    for (int k = 0; k < 32; k++) b[k] = allocate(&s, (unsigned char)k);
    for (int k = 0; k < 32; k++) release(b[k]);
    char *str = strdup("forked child");
    CHECK(str && strcmp(str, "forked child") == 0, 0, 0);
    free(str);
    _exit(0);
}

static void error_cases(void) {
    /* Volatile, so the compiler cannot see (and warn about) the huge sizes. */
    volatile size_t huge = SIZE_MAX / 2;
    void *p = (void *)1;
    errno = 0;
    CHECK(posix_memalign(&p, 3, 16) == EINVAL && p == (void *)1, 3, 16);
    CHECK(posix_memalign(&p, 4, 16) == EINVAL, 4, 16); /* not a multiple of sizeof(void *) */
    CHECK(posix_memalign(&p, 0, 16) == EINVAL, 0, 16);
    /* An alignment that is not a power of two: EINVAL (C17, glibc 2.38),
       or served (older glibc rounds it up). */
    errno = 0;
    p = aligned_alloc(3, 16);
    CHECK(p != NULL || errno == EINVAL, 3, errno);
    free(p);
    errno = 0;
    CHECK(calloc(huge, 3) == NULL && errno == ENOMEM, 0, errno);
    errno = 0;
    CHECK(malloc(huge * 2 - 4096) == NULL && errno == ENOMEM, 0, errno);
    errno = 0;
    CHECK(pvalloc(huge * 2 - 10) == NULL && errno == ENOMEM, 0, errno);
    /* A failed reallocarray leaves the block alone. */
    unsigned char *q = malloc(40);
    fill(q, 40, 9);
    errno = 0;
    CHECK(reallocarray(q, huge, 3) == NULL && errno == ENOMEM, 0, errno);
    CHECK(holds(q, 40, 9), 0, 0);
    free(q);
    /* memalign rounds a non-power-of-two alignment up (glibc's rule). */
    p = memalign(24, 100);
    CHECK(p != NULL && (uintptr_t)p % 32 == 0, (uintptr_t)p, 32);
    free(p);
    /* pvalloc rounds up to whole pages, page-aligned. */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    p = pvalloc(0);
    CHECK(p != NULL && (uintptr_t)p % page == 0, 0, page);
    free(p);
    p = pvalloc(page + 1);
    CHECK(p != NULL && (uintptr_t)p % page == 0 && malloc_usable_size(p) >= 2 * page, 0, page);
    free(p);
    CHECK(malloc_usable_size(NULL) == 0, 0, 0);
    free(NULL);
    /* malloc(0) is a unique, freeable block. */
    void *z1 = malloc(0), *z2 = malloc(0);
    CHECK(z1 && z2 && z1 != z2, (size_t)z1, (size_t)z2);
    free(z1);
    free(z2);
    /* realloc(NULL, n) is malloc; every small size round-trips. */
    for (size_t n = 1; n <= 600; n++) {
        unsigned char *r = realloc(NULL, n);
        check_block(r, n, n >= min_align ? min_align : 1);
        fill(r, n, (unsigned char)n);
        r = realloc(r, n + 3);
        CHECK(r && holds(r, n, (unsigned char)n), n, 0);
        free(r);
    }
}

int main(int argc, char **argv) {
    if (argc > 1) min_align = (size_t)atoi(argv[1]);
    int forks = argc > 2 ? atoi(argv[2]) : FORKS;
    error_cases();
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) pthread_mutex_init(&mail_lock[t], NULL);
    for (int t = 0; t < THREADS; t++)
        CHECK(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t) == 0, t, 0);
    /* Fork while the workers allocate. */
    for (int i = 0; i < forks; i++) {
        usleep(2000);
        pid_t pid = fork();
        CHECK(pid >= 0, i, 0);
        if (pid == 0) child(i);
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid, i, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail(WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM
                     ? "forked child hung" : "forked child failed",
                 (size_t)i, (size_t)status);
    }
    for (int t = 0; t < THREADS; t++) CHECK(pthread_join(th[t], NULL) == 0, t, 0);
    for (int t = 0; t < THREADS; t++)
        while (mail_count[t] > 0) release(mailbox[t][--mail_count[t]]);
    puts("ok");
    return 0;
}
