/* media.h - pictures of a closed-loop evaluation (eval/closed_loop.h; docs/evaluation.md, "Media"):
 *
 *   DIR/success.png             success rate per task and overall, Wilson 95% error bars, the
 *                               evaluated agent next to the baselines that were run (a bar chart)
 *   DIR/task-NN-strip.png       per task a film strip: evenly spaced frames of its first successful
 *                               and its first failed episode (those that exist), both cameras,
 *                               each labelled with the episode, its outcome and the step
 *   DIR/task-NN-rollout.png     per task an animated PNG (src/apng.h) of its episode 0, both
 *                               cameras side by side (a PNG viewer without APNG shows the first frame)
 *
 * The episodes shown are re-run with rendering (bv_cl_record) after the evaluation, which itself
 * renders nothing it does not need. This module decides what the pictures hold; the drawing is
 * src/plot.h's and the animation src/apng.h's.
 *
 * Owns: nothing past a call (a bv_cl_strip borrows its clips' frames). Must not: print.
 */
#ifndef BV_EVAL_MEDIA_H
#define BV_EVAL_MEDIA_H

#include "eval/closed_loop.h"
#include "src/plot.h"

typedef struct {
    const char *dir;  /* created with its parents when missing */
    int strip_frames; /* frames of each episode in a film strip (default 6; 1..16) */
    int anim_frames;  /* frames of a rollout's animation at most (default 40; 0: no animations; 2..64) */
    int cell;         /* pixels of a camera image in the strips (0: the image size, at most 160); in the
                       * animations at most 128 */
} bv_cl_media_opts;

void bv_cl_media_opts_default(bv_cl_media_opts *m);

/* The agent steps of n frames evenly spaced over an episode of `steps` agent steps, its first (0)
 * and its last (steps) included: round(i * steps / (n - 1)); fewer when the episode is shorter than
 * n - 1 steps (no step twice). Returns how many, at most n (>= 1). */
int bv_cl_media_frame_steps(int steps, int n, int *out);

/* A task's film strip as an image grid (src/plot.h): per clip given (success, then failure; either
 * may be NULL, not both) two rows, the third-person camera then the wrist camera, one column per
 * frame; a heading names the episode and its outcome, a caption under the wrist row the step; the
 * title the task and the agent. The grid borrows the clips' frames. */
typedef struct {
    bv_plot_grid grid;
    bv_plot_image cells[4 * BV_CL_CLIP_MAX_FRAMES];
    const char *headings[4], *labels[4];
    char title[256], heading_text[2][128], caption_text[2][BV_CL_CLIP_MAX_FRAMES][24];
} bv_cl_strip;
void bv_cl_strip_make(bv_cl_strip *s, const char *title, const bv_cl_clip *success, const bv_cl_clip *failure,
                      int cell);

/* The bar chart of results[0] (the evaluated agent) and results[1 .. n) (baselines run with the
 * same options) to `path`: one group per task and one for all tasks, one bar per result in
 * percent, the Wilson interval as its error bar. Errors name the path. */
bv_status bv_cl_media_chart(const char *path, const bv_cl_result *const *results, int n);

/* Everything above into m->dir: the chart of results[0 .. n), then the film strips and animations
 * of results[0], whose episodes are re-run with o (the options it was evaluated with). Errors name
 * the file or the episode. */
bv_status bv_cl_media_write(const bv_cl_media_opts *m, const bv_cl_opts *o, const bv_cl_result *const *results,
                            int n);

#endif
