/* bitvla plot - a run's training curves as one PNG: RUN_DIR/metrics.jsonl (src/metrics.h) read
 * back, its series grouped into panels, drawn by src/plot.h. The grouping is the policy here; the
 * reading and the drawing know nothing of it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "src/atomic_file.h"
#include "src/common.h"
#include "src/metrics.h"
#include "src/plot.h"

#define MAX_PANELS 24

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitvla plot RUN_DIR [--out DIR]\n"
            "\n"
            "Draws the curves of RUN_DIR/metrics.jsonl into one figure, DIR/training.png (default DIR:\n"
            "RUN_DIR/plots), written atomically. Every numeric member of the records is a series named\n"
            "KIND/NAME (e.g. train/loss, val/val_l1) over the step, grouped into panels (docs/metrics.md):\n"
            "  loss       loss, *_loss, loss_* of every kind and every other val_* metric\n"
            "  accuracy   *_acc (e.g. val/val_gripper_acc), in [0, 1]\n"
            "  lr         lr and lr_*\n"
            "  grad_norm  grad_norm\n"
            "  NAME       one panel for each other metric (samples_per_s, ...)\n"
            "The loss and grad_norm panels use a logarithmic y axis when their values are all positive\n"
            "and span a factor of 100 or more. null values are gaps in the lines.\n"
            "\n"
            "options:\n"
            "  --out DIR   where to write training.png (created if missing)\n");
}

typedef struct {
    char *label; /* "kind/name" */
    const char *panel;
    double *x, *y;
    int64_t n, cap;
} series;

typedef struct {
    series *s;
    int n, cap;
    int64_t records;
} collected;

static bool starts(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }
static bool ends(const char *s, const char *p) {
    size_t n = strlen(s), m = strlen(p);
    return n >= m && !strcmp(s + n - m, p);
}

/* The panel a metric belongs to: a fixed group, or its own name. */
static const char *panel_of(const char *name) {
    if (ends(name, "_acc")) return "accuracy"; /* fractions in [0, 1], not beside the losses */
    if (!strcmp(name, "loss") || ends(name, "_loss") || starts(name, "loss_") || starts(name, "val_")) return "loss";
    if (!strcmp(name, "lr") || starts(name, "lr_")) return "lr";
    if (!strcmp(name, "grad_norm")) return "grad_norm";
    return name;
}

static bv_status collect(void *ctx, const bv_metrics_record *r) {
    collected *c = ctx;
    c->records++;
    for (int i = 0; i < r->n; i++) {
        size_t kl = strlen(r->kind), nl = strlen(r->values[i].name);
        series *s = NULL;
        for (int k = 0; k < c->n && !s; k++)
            if (!strncmp(c->s[k].label, r->kind, kl) && c->s[k].label[kl] == '/' &&
                !strcmp(c->s[k].label + kl + 1, r->values[i].name))
                s = &c->s[k];
        if (!s) {
            if (c->n == c->cap) {
                c->cap = c->cap ? 2 * c->cap : 16;
                c->s = bv_xrealloc(c->s, (size_t)c->cap * sizeof *c->s);
            }
            s = &c->s[c->n++];
            memset(s, 0, sizeof *s);
            s->label = bv_xmalloc(kl + nl + 2);
            snprintf(s->label, kl + nl + 2, "%s/%s", r->kind, r->values[i].name);
            s->panel = panel_of(s->label + kl + 1);
        }
        if (s->n == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 256;
            s->x = bv_xrealloc(s->x, (size_t)s->cap * sizeof *s->x);
            s->y = bv_xrealloc(s->y, (size_t)s->cap * sizeof *s->y);
        }
        s->x[s->n] = (double)r->step;
        s->y[s->n] = r->values[i].value;
        s->n++;
    }
    return BV_OK;
}

static void collected_free(collected *c) {
    for (int i = 0; i < c->n; i++) {
        free(c->s[i].label);
        free(c->s[i].x);
        free(c->s[i].y);
    }
    free(c->s);
}

/* Log scale for the loss and grad_norm panels when every value is positive and they span >= 100x. */
static bool wants_log(const char *panel, const bv_plot_series *s, int n) {
    if (strcmp(panel, "loss") && strcmp(panel, "grad_norm")) return false;
    double lo = INFINITY, hi = 0;
    for (int k = 0; k < n; k++)
        for (int64_t i = 0; i < s[k].n; i++) {
            double v = s[k].y[i];
            if (!isfinite(v)) continue;
            if (v <= 0) return false;
            lo = fmin(lo, v), hi = fmax(hi, v);
        }
    return hi > 0 && hi >= 100 * lo;
}

int bv_cmd_plot(int argc, char **argv) {
    if (bv_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *run = NULL, *out_dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--out")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "bitvla plot: --out needs a value\n");
                return 2;
            }
            out_dir = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "bitvla plot: unknown option '%s' (see 'bitvla plot --help')\n", a);
            return 2;
        } else if (run) {
            fprintf(stderr, "bitvla plot: expected one RUN_DIR, got '%s' and '%s'\n", run, a);
            return 2;
        } else {
            run = a;
        }
    }
    if (!run) {
        usage(stderr);
        return 2;
    }
    size_t n = strlen(run) + 32;
    char *metrics = bv_xmalloc(n), *plots = NULL, *png = NULL;
    snprintf(metrics, n, "%s/metrics.jsonl", run);
    if (!out_dir) {
        plots = bv_xmalloc(n);
        snprintf(plots, n, "%s/plots", run);
        out_dir = plots;
    }
    collected c = {0};
    bv_plot_panel panels[MAX_PANELS];
    bv_plot_series *ser = NULL;
    int rc = 1, n_panels = 0;
    bv_status st = bv_metrics_read(metrics, collect, &c);
    if (st) {
        fprintf(stderr, "bitvla plot: %s\n", bv_error_msg());
        goto done;
    }
    if (!c.n) {
        fprintf(stderr, "bitvla plot: %s: no metrics to plot (%lld records)\n", metrics, (long long)c.records);
        goto done;
    }
    /* panels in a fixed order for the known groups, then in order of first appearance */
    const char *order[MAX_PANELS + 3] = {"loss", "lr", "grad_norm"};
    int n_order = 3;
    for (int i = 0; i < c.n; i++) {
        bool known = false;
        for (int k = 0; k < n_order; k++) known = known || !strcmp(order[k], c.s[i].panel);
        if (known) continue;
        if (n_order == MAX_PANELS) {
            fprintf(stderr, "bitvla plot: more than %d panels; %s is not drawn\n", MAX_PANELS, c.s[i].label);
            continue;
        }
        order[n_order++] = c.s[i].panel;
    }
    ser = bv_xmalloc((size_t)c.n * sizeof *ser);
    int used = 0;
    for (int k = 0; k < n_order; k++) {
        int first = used;
        for (int i = 0; i < c.n; i++)
            if (!strcmp(c.s[i].panel, order[k])) ser[used++] = (bv_plot_series){c.s[i].label, c.s[i].x, c.s[i].y, c.s[i].n};
        if (used == first) continue;
        panels[n_panels++] = (bv_plot_panel){.title = order[k], .xlabel = "step", .ylabel = order[k],
                                             .log_y = wants_log(order[k], ser + first, used - first),
                                             .n_series = used - first, .series = ser + first};
    }
    if ((st = bv_atomic_dir_make(out_dir))) {
        fprintf(stderr, "bitvla plot: --out: %s\n", bv_error_msg());
        goto done;
    }
    n = strlen(out_dir) + 32;
    png = bv_xmalloc(n);
    snprintf(png, n, "%s/training.png", out_dir);
    bv_plot_figure fig = {.title = run, .n_panels = n_panels, .panels = panels, .cols = n_panels > 1 ? 2 : 1};
    if ((st = bv_plot_write_png(png, &fig))) {
        fprintf(stderr, "bitvla plot: %s\n", bv_error_msg());
        goto done;
    }
    printf("bitvla plot: wrote %s (%lld records, %d series in %d panels:", png, (long long)c.records, c.n, n_panels);
    for (int k = 0; k < n_panels; k++) printf(" %s", panels[k].title);
    printf(")\n");
    rc = 0;
done:
    collected_free(&c);
    free(ser);
    free(metrics);
    free(plots);
    free(png);
    return rc;
}
