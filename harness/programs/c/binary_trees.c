/* binary-trees, after the Computer Language Benchmarks Game's: builds and
 * walks perfect binary trees of 16-byte nodes with malloc and free, most of
 * them short-lived, one long-lived; an allocator benchmark in C for
 * `poolbench exec` (see docs/programs.md).
 *
 *   cc -O2 -pthread -o binary_trees binary_trees.c
 *   poolbench exec -s all --threads 1,2 --threads-env THREADS \
 *       --metric 'trees/s: ([0-9.]+)' --metric-name trees/s -- ./binary_trees 16
 *
 * Argument: the maximum depth (default 16). THREADS (default 1) threads
 * share each depth's trees. Prints "trees/s: R" (trees built and walked per
 * second, the long-lived tree's setup excluded) and checks the node count;
 * exits 1 if it is wrong.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct node {
    struct node *left, *right;
};

static struct node *make(int depth) {
    struct node *n = malloc(sizeof *n);
    if (!n) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    if (depth > 0) {
        n->left = make(depth - 1);
        n->right = make(depth - 1);
    } else {
        n->left = n->right = NULL;
    }
    return n;
}

static long check(const struct node *n) {
    return 1 + (n->left ? check(n->left) + check(n->right) : 0);
}

static void drop(struct node *n) {
    if (n->left) {
        drop(n->left);
        drop(n->right);
    }
    free(n);
}

struct job {
    int depth;
    long trees;
    long nodes;
};

static void *work(void *arg) {
    struct job *j = arg;
    j->nodes = 0;
    for (long i = 0; i < j->trees; i++) {
        struct node *t = make(j->depth);
        j->nodes += check(t);
        drop(t);
    }
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int max_depth = argc > 1 ? atoi(argv[1]) : 16;
    const char *t = getenv("THREADS");
    int threads = t ? atoi(t) : 1;
    if (max_depth < 6 || threads < 1 || threads > 256) {
        fprintf(stderr, "usage: binary_trees DEPTH (>= 6), THREADS=1..256\n");
        return 2;
    }
    struct node *long_lived = make(max_depth);
    long trees = 0, nodes = 0, expected = 0;
    double t0 = now();
    for (int d = 4; d <= max_depth; d += 2) {
        long n = 1L << (max_depth - d + 4);
        pthread_t tid[256];
        struct job jobs[256];
        for (int k = 0; k < threads; k++) {
            jobs[k].depth = d;
            jobs[k].trees = n / threads + (k < n % threads);
            pthread_create(&tid[k], NULL, work, &jobs[k]);
        }
        for (int k = 0; k < threads; k++) {
            pthread_join(tid[k], NULL);
            nodes += jobs[k].nodes;
        }
        trees += n;
        expected += n * ((1L << (d + 1)) - 1);
    }
    double elapsed = now() - t0;
    long lived = check(long_lived);
    drop(long_lived);
    if (nodes != expected || lived != (1L << (max_depth + 1)) - 1) {
        fprintf(stderr, "check failed: %ld nodes, expected %ld\n", nodes, expected);
        return 1;
    }
    printf("%ld trees of depth 4..%d, %ld nodes\n", trees, max_depth, nodes);
    printf("trees/s: %.1f\n", trees / elapsed);
    return 0;
}
