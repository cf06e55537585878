/* progress.h - a progress indicator on stderr for long jobs (conversion, training).
 *
 * On a terminal: one line redrawn in place at most 10 times a second,
 *     convert  [#########...........]  112/432 episodes  3.2 episodes/s  ETA 1:40
 * Otherwise (logs, CI): a plain line every `interval` seconds (default 10) and at the end,
 *     convert: 112/432 episodes (25.9%), 3.2 episodes/s, ETA 1:40
 * With an unknown total (total <= 0) there is no bar, percentage or ETA. BV_PROGRESS=0 in the
 * environment silences it; BV_PROGRESS=plain forces plain lines on a terminal.
 *
 * Owns: nothing beyond the struct (label and unit are borrowed and must outlive it).
 * Must not: print to stdout (reserved for a command's results).
 */
#ifndef BV_PROGRESS_H
#define BV_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    const char *label, *unit;
    int64_t total, done;
    double t0, last;
    double interval; /* seconds between plain lines */
    int tty, quiet, drawn;
    FILE *f;
    int64_t start;   /* units done before this run (a resumed job): the rate counts from here */
    char extra[128]; /* appended to the line, e.g. "loss 0.213  lr 3.0e-04" */
} bv_progress;

void bv_progress_init(bv_progress *p, const char *label, int64_t total, const char *unit);
/* Set the number of units done; prints when the time has come. */
void bv_progress_update(bv_progress *p, int64_t done);
/* A resumed job: `done` units were done before; the rate and ETA count from there. */
void bv_progress_start_at(bv_progress *p, int64_t done);
/* Text appended to the line (printf format), e.g. the current loss; "" clears it. */
void bv_progress_set_extra(bv_progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Final line (always printed unless quiet), ends the redrawn line on a terminal. */
void bv_progress_finish(bv_progress *p);
/* Format seconds as "M:SS" or "H:MM:SS" into buf. */
const char *bv_progress_hms(double s, char *buf, size_t n);

#endif
