#include "src/progress.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/common.h"

const char *bv_progress_hms(double s, char *buf, size_t n) {
    if (!(s >= 0) || s > 1e8) {
        snprintf(buf, n, "?");
        return buf;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
    return buf;
}

void bv_progress_init(bv_progress *p, const char *label, int64_t total, const char *unit) {
    memset(p, 0, sizeof *p);
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->f = stderr;
    p->interval = 10.0;
    p->t0 = p->last = bv_time_now();
    const char *env = getenv("BV_PROGRESS");
    p->quiet = env && !strcmp(env, "0");
    p->tty = isatty(fileno(stderr)) && !(env && !strcmp(env, "plain"));
}

static void render(bv_progress *p, int final) {
    double el = bv_time_now() - p->t0;
    double rate = el > 0 ? (double)(p->done - p->start) / el : 0;
    char eta[32] = "", rbuf[48];
    if (p->total > 0 && !final && rate > 0) {
        char h[24];
        snprintf(eta, sizeof eta, "  ETA %s", bv_progress_hms((double)(p->total - p->done) / rate, h, sizeof h));
    } else if (final) {
        char h[24];
        snprintf(eta, sizeof eta, "  in %s", bv_progress_hms(el, h, sizeof h));
    }
    snprintf(rbuf, sizeof rbuf, "%.*f %s/s", rate < 10 ? 2 : 1, rate, p->unit);
    const char *sep = "", *psep = "";
    if (p->extra[0]) sep = "  ", psep = ", ";
    if (p->tty) {
        char bar[32] = "";
        if (p->total > 0) {
            int w = 24, k = (int)((double)w * (double)BV_MIN(p->done, p->total) / (double)p->total);
            bar[0] = '[';
            for (int i = 0; i < w; i++) bar[1 + i] = i < k ? '#' : '.';
            bar[w + 1] = ']';
            bar[w + 2] = 0;
        }
        if (p->total > 0)
            fprintf(p->f, "\r%s  %s  %lld/%lld %s  %s%s%s%s\033[K", p->label, bar, (long long)p->done,
                    (long long)p->total, p->unit, p->extra, sep, rbuf, eta);
        else
            fprintf(p->f, "\r%s  %lld %s  %s%s%s%s\033[K", p->label, (long long)p->done, p->unit, p->extra, sep, rbuf,
                    eta);
        if (final) fputc('\n', p->f);
        p->drawn = !final;
    } else {
        if (p->total > 0)
            fprintf(p->f, "%s: %lld/%lld %s (%.1f%%), %s%s%s%s\n", p->label, (long long)p->done,
                    (long long)p->total, p->unit, 100.0 * (double)p->done / (double)p->total, p->extra, psep, rbuf, eta);
        else
            fprintf(p->f, "%s: %lld %s, %s%s%s%s\n", p->label, (long long)p->done, p->unit, p->extra, psep, rbuf, eta);
    }
    fflush(p->f);
}

void bv_progress_update(bv_progress *p, int64_t done) {
    p->done = done;
    if (p->quiet) return;
    double now = bv_time_now();
    if (now - p->last < (p->tty ? 0.1 : p->interval)) return;
    p->last = now;
    render(p, 0);
}

void bv_progress_start_at(bv_progress *p, int64_t done) {
    p->start = p->done = done;
}

void bv_progress_set_extra(bv_progress *p, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->extra, sizeof p->extra, fmt, ap);
    va_end(ap);
}

void bv_progress_finish(bv_progress *p) {
    if (p->quiet) return;
    render(p, 1);
}
