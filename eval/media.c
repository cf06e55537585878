/* media.c - film strips, rollout animations and the success chart of an evaluation (see media.h). */
#include "eval/media.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/synth_env.h"
#include "src/apng.h"
#include "src/atomic_file.h"

#define MAX_CELL 160      /* film strips: camera images at most this size */
#define ANIM_MAX_CELL 128 /* animations: smaller, as they hold many frames */
#define ANIM_DELAY_MS 100  /* per frame */
#define ANIM_HOLD_MS 1500  /* the last frame */

void bv_cl_media_opts_default(bv_cl_media_opts *m) {
    memset(m, 0, sizeof *m);
    m->strip_frames = 6;
    m->anim_frames = 40;
}

int bv_cl_media_frame_steps(int steps, int n, int *out) {
    steps = BV_MAX(0, steps);
    n = BV_MAX(1, BV_MIN(n, steps + 1));
    if (n == 1) {
        out[0] = steps;
        return 1;
    }
    for (int i = 0; i < n; i++) out[i] = (int)lround((double)i * steps / (n - 1));
    return n;
}

/* "episode 3: success after 112 steps" */
static void outcome_text(char *buf, size_t cap, const bv_cl_episode *ep) {
    if (ep->success) snprintf(buf, cap, "episode %d: success after %d steps", ep->episode, ep->steps);
    else snprintf(buf, cap, "episode %d: failure (%d steps, the limit)", ep->episode, ep->steps);
}

void bv_cl_strip_make(bv_cl_strip *s, const char *title, const bv_cl_clip *success, const bv_cl_clip *failure,
                      int cell) {
    memset(s, 0, sizeof *s);
    const bv_cl_clip *clips[2] = {success, failure};
    int rows = 0, cols = 0;
    for (int k = 0; k < 2; k++)
        if (clips[k]) cols = BV_MAX(cols, clips[k]->n_frames);
    snprintf(s->title, sizeof s->title, "%s", title ? title : "");
    for (int k = 0; k < 2; k++) {
        const bv_cl_clip *c = clips[k];
        if (!c) continue;
        const size_t frame = (size_t)c->size * c->size * 3;
        outcome_text(s->heading_text[k], sizeof s->heading_text[k], &c->ep);
        s->headings[rows] = s->heading_text[k];
        s->labels[rows] = "third-person";
        s->labels[rows + 1] = "wrist";
        for (int f = 0; f < c->n_frames; f++) {
            snprintf(s->caption_text[k][f], sizeof s->caption_text[k][f], "step %d", c->steps[f]);
            s->cells[rows * cols + f] = (bv_plot_image){c->image + f * frame, c->size, c->size, NULL};
            s->cells[(rows + 1) * cols + f] = (bv_plot_image){c->wrist + f * frame, c->size, c->size, s->caption_text[k][f]};
        }
        rows += 2;
    }
    s->grid = (bv_plot_grid){.title = s->title, .rows = rows, .cols = cols, .cells = s->cells,
                             .row_headings = s->headings, .row_labels = s->labels, .cell_w = cell, .cell_h = cell};
}

/* "0: red cube on plate" */
static void task_label(char *buf, size_t cap, int task) {
    bv_synth_task t = bv_synth_task_get(task);
    snprintf(buf, cap, "%d: %s %s %s %s", task, bv_synth_colour_name(t.colour), bv_synth_shape_name(t.shape),
             t.dest == BV_SYNTH_PLATE ? "on" : "in", bv_synth_dest_name(t.dest));
}

bv_status bv_cl_media_chart(const char *path, const bv_cl_result *const *results, int n) {
    if (n < 1 || !results[0]) return bv_error_set(BV_ERR_ARG, "%s: a chart of no results", path);
    const int G = results[0]->n_tasks + 1;
    for (int i = 1; i < n; i++)
        if (results[i]->n_tasks != results[0]->n_tasks)
            return bv_error_set(BV_ERR_ARG, "%s: the %s result has %d tasks, the %s result %d", path,
                                bv_cl_agent_name(results[i]->agent), results[i]->n_tasks,
                                bv_cl_agent_name(results[0]->agent), results[0]->n_tasks);
    double *v = bv_xcalloc((size_t)3 * n * G, sizeof *v);
    char(*labels)[48] = bv_xcalloc((size_t)G, sizeof *labels);
    const char **label_ptr = bv_xcalloc((size_t)G, sizeof *label_ptr);
    bv_plot_bar_series *ser = bv_xcalloc((size_t)n, sizeof *ser);
    for (int i = 0; i < n; i++) {
        double *val = v + (size_t)3 * i * G, *lo = val + G, *hi = lo + G;
        for (int g = 0; g < G; g++) {
            const bv_cl_summary *s = g < G - 1 ? &results[i]->tasks[g] : &results[i]->all;
            val[g] = 100 * s->rate, lo[g] = 100 * s->lo, hi[g] = 100 * s->hi;
        }
        ser[i] = (bv_plot_bar_series){bv_cl_agent_name(results[i]->agent), val, lo, hi};
    }
    for (int g = 0; g < G - 1; g++) task_label(labels[g], sizeof labels[g], results[0]->tasks[g].task);
    snprintf(labels[G - 1], sizeof labels[G - 1], "all tasks");
    for (int g = 0; g < G; g++) label_ptr[g] = labels[g];
    char title[160];
    snprintf(title, sizeof title, "success per task, %d episodes each (Wilson 95%% intervals)",
             results[0]->n_tasks ? results[0]->tasks[0].episodes : 0);
    bv_plot_bars b = {.title = title, .xlabel = "task", .ylabel = "success rate (%)", .n_groups = G,
                      .group_labels = label_ptr, .n_series = n, .series = ser, .y_min = 0, .y_max = 100};
    bv_status st = bv_plot_bars_write_png(path, &b);
    free(v), free(labels), free(label_ptr), free(ser);
    return st;
}

/* ---- strips and animations from recorded clips ---- */

typedef enum { CLIP_SUCCESS, CLIP_FAILURE, CLIP_ROLLOUT } clip_kind;

typedef struct {
    const bv_cl_media_opts *m;
    const bv_cl_result *r;
    int cell;
    bv_cl_clip *clips;
    clip_kind *kind;
    int n_clips;
} media_ctx;

static void task_title(char *buf, size_t cap, const media_ctx *c, int task) {
    char instr[128];
    bv_synth_task_instruction(bv_synth_task_get(task), instr, sizeof instr);
    snprintf(buf, cap, "task %d: %s (%s)", task, instr, bv_cl_agent_name(c->r->agent));
}

static bv_status write_strip(media_ctx *c, const bv_cl_clip *success, const bv_cl_clip *failure) {
    const int task = (success ? success : failure)->ep.task;
    char path[4096], title[256];
    snprintf(path, sizeof path, "%s/task-%02d-strip.png", c->m->dir, task);
    task_title(title, sizeof title, c, task);
    bv_cl_strip *s = bv_xmalloc(sizeof *s);
    bv_cl_strip_make(s, title, success, failure, c->cell);
    bv_status st = bv_plot_grid_write_png(path, &s->grid);
    free(s);
    return st;
}

static bv_status write_rollout(media_ctx *c, const bv_cl_clip *clip) {
    char path[4096], title[256], heading[160], outcome[96];
    snprintf(path, sizeof path, "%s/task-%02d-rollout.png", c->m->dir, clip->ep.task);
    task_title(title, sizeof title, c, clip->ep.task);
    outcome_text(outcome, sizeof outcome, &clip->ep);
    const size_t frame = (size_t)clip->size * clip->size * 3;
    bv_plot_image cells[2] = {{clip->image, clip->size, clip->size, "third-person"},
                              {clip->wrist, clip->size, clip->size, "wrist"}};
    const char *headings[1] = {heading};
    const int cell = BV_MIN(c->cell, ANIM_MAX_CELL);
    bv_plot_grid g = {.title = title, .rows = 1, .cols = 2, .cells = cells, .row_headings = headings,
                      .cell_w = cell, .cell_h = cell};
    /* every frame as wide as the last, whose heading has the most digits */
    int w, h;
    snprintf(heading, sizeof heading, "%s - step %d", outcome, clip->steps[clip->n_frames - 1]);
    BV_TRY(bv_plot_grid_size(path, &g, &w, &h));
    g.min_width = w;
    const size_t fb = (size_t)w * h * 3;
    uint8_t *frames = bv_xmalloc(fb * clip->n_frames);
    bv_status st = BV_OK;
    for (int f = 0; f < clip->n_frames && !st; f++) {
        cells[0].rgb = clip->image + f * frame, cells[1].rgb = clip->wrist + f * frame;
        snprintf(heading, sizeof heading, "%s - step %d", outcome, clip->steps[f]);
        st = bv_plot_grid_render(path, &g, frames + f * fb);
    }
    bv_apng_opts ao = {.w = w, .h = h, .delay_ms = ANIM_DELAY_MS, .last_delay_ms = ANIM_HOLD_MS};
    if (!st) st = bv_apng_write(path, frames, clip->n_frames, &ao);
    free(frames);
    return st;
}

/* bv_cl_record's callback: a strip once both of its task's clips are in, an animation at once;
 * each clip's frames freed when written. */
static bv_status on_clip(void *ctx, bv_cl_clip *clip) {
    media_ctx *c = ctx;
    const int i = (int)(clip - c->clips);
    bv_status st = BV_OK;
    if (c->kind[i] == CLIP_ROLLOUT) {
        st = write_rollout(c, clip);
        bv_cl_clip_free(clip);
        return st;
    }
    bool pair_next = c->kind[i] == CLIP_SUCCESS && i + 1 < c->n_clips && c->kind[i + 1] == CLIP_FAILURE &&
                     c->clips[i + 1].ep.task == clip->ep.task;
    if (pair_next) return BV_OK; /* wait for the failure */
    bool paired = c->kind[i] == CLIP_FAILURE && i > 0 && c->kind[i - 1] == CLIP_SUCCESS &&
                  c->clips[i - 1].ep.task == clip->ep.task;
    bv_cl_clip *success = c->kind[i] == CLIP_SUCCESS ? clip : paired ? &c->clips[i - 1] : NULL;
    bv_cl_clip *failure = c->kind[i] == CLIP_FAILURE ? clip : NULL;
    st = write_strip(c, success, failure);
    bv_cl_clip_free(success);
    bv_cl_clip_free(failure);
    return st;
}

static bv_status check_media_opts(const bv_cl_media_opts *m) {
    if (!m->dir || !m->dir[0]) return bv_error_set(BV_ERR_ARG, "no media directory");
    if (m->strip_frames < 1 || m->strip_frames > 16)
        return bv_error_set(BV_ERR_ARG, "%d frames per film strip episode (expected 1..16)", m->strip_frames);
    if (m->anim_frames != 0 && (m->anim_frames < 2 || m->anim_frames > BV_CL_CLIP_MAX_FRAMES))
        return bv_error_set(BV_ERR_ARG, "%d animation frames (expected 0 or 2..%d)", m->anim_frames,
                            BV_CL_CLIP_MAX_FRAMES);
    if (m->cell && (m->cell < 16 || m->cell > 1024))
        return bv_error_set(BV_ERR_ARG, "media images of %d pixels (expected 16..1024)", m->cell);
    return BV_OK;
}

bv_status bv_cl_media_write(const bv_cl_media_opts *m, const bv_cl_opts *o, const bv_cl_result *const *results,
                            int n) {
    BV_TRY(check_media_opts(m));
    BV_TRY(bv_atomic_dir_make(m->dir));
    char path[4096];
    snprintf(path, sizeof path, "%s/success.png", m->dir);
    BV_TRY(bv_cl_media_chart(path, results, n));

    /* per task: its first success and first failure (film strip), its episode 0 (animation) */
    const bv_cl_result *r = results[0];
    const int per_task = 3;
    media_ctx c = {.m = m, .r = r, .cell = m->cell ? m->cell : BV_MIN(o->image_size, MAX_CELL)};
    c.clips = bv_xcalloc((size_t)r->n_tasks * per_task, sizeof *c.clips);
    c.kind = bv_xcalloc((size_t)r->n_tasks * per_task, sizeof *c.kind);
    for (int t = 0; t < r->n_tasks; t++) {
        const bv_cl_episode *first[2] = {NULL, NULL}, *ep0 = NULL;
        for (int i = 0; i < r->n_episodes; i++) {
            const bv_cl_episode *e = &r->eps[i];
            if (e->task != r->tasks[t].task) continue;
            if (!first[!e->success] || e->episode < first[!e->success]->episode) first[!e->success] = e;
            if (e->episode == 0) ep0 = e;
        }
        for (int k = 0; k < 2; k++) {
            if (!first[k]) continue;
            bv_cl_clip *cl = &c.clips[c.n_clips];
            cl->ep = *first[k];
            cl->n_frames = bv_cl_media_frame_steps(cl->ep.steps, m->strip_frames, cl->steps);
            c.kind[c.n_clips++] = k ? CLIP_FAILURE : CLIP_SUCCESS;
        }
        if (m->anim_frames && ep0) {
            bv_cl_clip *cl = &c.clips[c.n_clips];
            cl->ep = *ep0;
            cl->n_frames = bv_cl_media_frame_steps(cl->ep.steps, m->anim_frames, cl->steps);
            c.kind[c.n_clips++] = CLIP_ROLLOUT;
        }
    }
    bv_status st = bv_cl_record(o, c.clips, c.n_clips, on_clip, &c);
    for (int i = 0; i < c.n_clips; i++) bv_cl_clip_free(&c.clips[i]);
    free(c.clips), free(c.kind);
    return st ? bv_error_prefix(st, "media in %s", m->dir) : BV_OK;
}
