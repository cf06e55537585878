/* bench_util.h - shared helpers of the built-in benchmarks: flag parsing, fills, medians, and the
 * --json output.
 *
 * --json FILE: a benchmark's figures as JSON Lines (one object per line, each with "bench"),
 * appended to what FILE already holds. FILE is rewritten atomically (old lines + new ones under a
 * temporary name, fsync, rename: src/atomic_file.h), so a run that fails or is killed leaves it as
 * it was. Whether it can be written is checked before the run (bv_bench_parse does it), so a bad
 * path fails in a second, not after minutes of work. */
#ifndef BV_BENCH_UTIL_H
#define BV_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "models/config.h"
#include "src/tokenizer.h"
#include "src/vla_batch.h"

typedef struct {
    int reps;
    int threads;      /* the count in effect (bv_set_num_threads' answer) */
    const char *json; /* --json FILE, or NULL */
} bv_bench_opts;

/* Parses --reps N (default 5), --threads N (default: current; at most bv_max_threads()),
 * --json FILE (checked with bv_bench_json_check); sets the threads. Prints a message naming the
 * flag and returns 2 on a bad flag. */
int bv_bench_parse(int argc, char **argv, const char *name, bv_bench_opts *o);
/* n from --threads N: 0, or 2 after printing "bitvla bench NAME: --threads N is more than ..."
 * when n is above bv_max_threads() (the limit named). */
int bv_bench_check_threads(const char *name, int n);
void bv_bench_fill(float *x, int64_t n, uint64_t seed); /* uniform [-1, 1) */
double bv_bench_median(double *t, int n);              /* sorts t */

/* Growable text for the JSON lines of a run. Zero-initialise; free with bv_bench_text_free. */
typedef struct {
    char *p;
    size_t len, cap;
    int oom; /* an append failed: bv_bench_json_append reports it */
} bv_bench_text;
void bv_bench_text_printf(bv_bench_text *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bv_bench_text_free(bv_bench_text *b);

/* Before the run: can --json FILE be written? Its directory must exist and take a new file, and
 * FILE, if it exists, must be a readable regular file. 0, or 2 after printing
 * "bitvla bench NAME: --json FILE: <why>". */
int bv_bench_json_check(const char *name, const char *path);
/* After the run: append the lines of `text` to path, atomically. path NULL: nothing to do. 0, or 1
 * after printing "bitvla bench NAME: --json FILE: <why>" (FILE then unchanged). */
int bv_bench_json_append(const char *name, const char *path, const bv_bench_text *text);

/* A tiny byte-level BPE tokenizer (500 tokens) with BitVLA's tokens, trained on the built-in
 * task's action prompts: what the benchmarks' loaders build their prompts with. */
bv_status bv_bench_tokenizer(bv_tok **tok);

/* Peak resident set size of this process so far (getrusage ru_maxrss), in bytes; -1 if unknown. */
double bv_bench_peak_rss(void);

/* Resident set size now (/proc/self/status VmRSS), in bytes; -1 if unknown. */
double bv_bench_rss(void);
/* Peak resident set size since the last bv_bench_rss_peak_reset (VmHWM; without /proc, the
 * process's whole peak), in bytes. */
double bv_bench_rss_peak_since_reset(void);
/* Reset the peak to the current RSS (writes "5" to /proc/self/clear_refs); false if the kernel
 * does not allow it (the peak then stays the process's). */
bool bv_bench_rss_peak_reset(void);

/* Memory read bandwidth, GB/s: buf (bytes, a multiple of 4 MiB, >> the caches; 64-byte aligned)
 * swept `passes` times in 4 MiB pieces, each piece summed by all threads as BV_BENCH_BW_STREAMS
 * interleaved streams per thread (one OpenMP loop over 256 KiB parts, like one GEMV call) and timed
 * on its own; GB/s = piece / median time. *sink gets the sums (keep it alive). */
#define BV_BENCH_BW_STREAMS 8
double bv_bench_read_bandwidth(const uint8_t *buf, int64_t bytes, int passes, uint64_t *sink);

/* one batch in memory, models/vla.h's layout */
typedef struct {
    int64_t B, T;
    int64_t *ids;
    uint8_t *attn, *amask;
    float *pix, *prop, *act;
    bv_tensor t_ids, t_attn, t_amask, t_pix, t_prop, t_act;
    bv_vla_batch b;
} bv_bench_batch;

/* A fixed random batch of B rows with n_img images and `text` text tokens for config c (the
 * longest realistic prompt; bench/bench_train.c). */
void bv_bench_batch_make(bv_bench_batch *m, const bv_vla_config *c, int B, int n_img, int text);
void bv_bench_batch_free(bv_bench_batch *m);
/* The benchmark sizes of `bitvla bench train`: "tiny" (the preset) or "mid" (bitvla-2b widths,
 * 6 SigLIP + 4 BitNet layers, vocabulary `vocab`). */
bv_status bv_bench_train_config(const char *size, int vocab, bv_vla_config *c);

#endif
