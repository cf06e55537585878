/* cmd_info.c - `bitvla info`: parameters and memory per module.
 *   BUNDLE_DIR: a bundle checked whole (models/bundle.h) and its memory report;
 *   --config C: for training (fp32 weights, gradients and the two AdamW moments, everything
 *     trainable) and for deployment the memory report of the bundle `bitvla export` would write
 *     (bv_bundle_plan_make, the one count of a bundle's bytes: hf, and tq5's total), against the
 *     paper's 1.4 GB;
 *   --recipe R [--config C] [--set k=v]... [--world-size N] [--zero Z]: the training plan of a
 *     recipe (recipes/plan.h): per module the weights, gradients, AdamW moments and BitLinear caches
 *     of what the recipe trains, the activations of one micro-batch, whether it fits this machine,
 *     the plan of one of N data-parallel ranks with ZeRO stage Z item by item (bv_train_plan_rank),
 *     and the smallest N of ranks of a given memory without sharding and with ZeRO-1 / ZeRO-2.
 * Builds the model shapes-only (BV_MODEL_SHAPES: nothing allocated), so it is instant at any size. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "models/build.h"
#include "models/bundle.h"
#include "recipes/plan.h"
#include "recipes/recipe.h"

#define GIB 1073741824.0
#define MAX_RANKS 65536

static void print_bytes(char *buf, size_t n, double b) {
    if (b >= 1e9) snprintf(buf, n, "%.2f GB", b / 1e9);
    else if (b >= 1e6) snprintf(buf, n, "%.1f MB", b / 1e6);
    else snprintf(buf, n, "%.1f kB", b / 1e3);
}

static void print_gib(char *buf, size_t n, double b) {
    if (b >= 0.1 * GIB) snprintf(buf, n, "%.2f GiB", b / GIB);
    else if (b >= 1048576.0) snprintf(buf, n, "%.1f MiB", b / 1048576.0);
    else snprintf(buf, n, "%.1f KiB", b / 1024.0);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitvla info BUNDLE_DIR [--json]\n"
            "       bitvla info --config PRESET|config.json [--json]\n"
            "       bitvla info --recipe RECIPE.json [--config PRESET|config.json] [--set key.path=value]...\n"
            "                   [--world-size N] [--zero 0|1|2] [--rank-gib G] [--text-tokens N] [--json]\n"
            "\n"
            "BUNDLE_DIR: a bundle written by 'bitvla export': checks it whole (every file's size and CRC-32C\n"
            "against manifest.json, config.json, model.safetensors) and prints its memory report (bytes per\n"
            "module, what is ternary, what was dropped).\n"
            "\n"
            "--config: parameters and bytes per module: for training (fp32 weights + gradients + AdamW moments,\n"
            "16 bytes per parameter, all trainable) and for deployment: the memory report of the bundle\n"
            "'bitvla export' would write (ternary weights packed at 2 bits (hf) plus one fp32 scale each,\n"
            "everything else bf16, the LM head dropped; and the total at 1.6 bits (tq5)), against the 1.4 GB\n"
            "the paper reports for BitVLA. Presets: bitvla-2b, tiny.\n"
            "\n"
            "--recipe: the training plan of a recipe (its model.config, model.train / model.freeze, micro_batch,\n"
            "data.n_images; --config replaces model.config, as --set model.config=C does): per module fp32\n"
            "weights, gradients and AdamW moments of the trainable parameters, BitLinear caches (int8 codes +\n"
            "fp32 dequantized copy per ternary weight); the activations of one micro-batch of the longest\n"
            "realistic prompt (BOS, image tokens, proprio, N text tokens, action tokens, EOS; --text-tokens N,\n"
            "default %d); whether it fits this machine's physical memory.\n"
            "Then the plan of one of N data-parallel ranks (--world-size N, default 1) with ZeRO stage\n"
            "--zero (default the recipe's distributed.zero; 2 is planned only, training implements 0 and 1),\n"
            "one line per item: weights, caches and activations on every rank; gradients (/ N with ZeRO-2);\n"
            "AdamW moments (/ N with ZeRO-1 and 2); communication buffers (N > 1: 2 all-reduce buckets in\n"
            "flight, each of distributed.bucket_mb); the exact accumulation's\n"
            "partial sums (distributed.exact: floor(log2 A) gradients, A the per-rank accumulation, from\n"
            "global_batch / (micro_batch x N) when global_batch is set: it must divide); the total; rank 0's\n"
            "buffer streaming the moments into a checkpoint (ZeRO >= 1) and its peak; whether it fits ranks\n"
            "of G GiB (--rank-gib, default 24). Last, the smallest N of G GiB ranks that fits without\n"
            "sharding, with ZeRO-1 and ZeRO-2, or which items alone exceed G. See docs/training.md.\n",
            BV_PLAN_TEXT_TOKENS);
}

/* ---- --config ---- */

static int info_config(const char *config, bool json) {
    bv_model model;
    bv_model_spec spec = {.config = config, .parts = BV_VLA_ALL, .purpose = BV_MODEL_SHAPES};
    if (bv_model_build(&model, &spec) != BV_OK) {
        fprintf(stderr, "bitvla info: %s\n", bv_error_msg());
        return 1;
    }
    const bv_vla_config cfg = model.vla.cfg;
    bv_train_plan plan;
    bv_plan_modules(&model, &plan);
    const bv_plan_module *mc = plan.mod;
    /* deployment: the bundles `bitvla export` would write (models/bundle.h's plan, the one count of
     * a bundle's bytes), in the 2-bit hf and the 1.6-bit tq5 layouts, bf16 */
    bv_bundle_plan hf, tq5;
    if (bv_bundle_plan_make(&hf, &model.vla, &model.params, BV_TPACK_HF, BV_DTYPE_BF16, false) != BV_OK ||
        bv_bundle_plan_make(&tq5, &model.vla, &model.params, BV_TPACK_TQ5, BV_DTYPE_BF16, false) != BV_OK) {
        fprintf(stderr, "bitvla info: %s\n", bv_error_msg());
        bv_model_free(&model);
        return 1;
    }
    double tot_params = 0, tot_train = 0, tot_tern = 0, train[BV_PLAN_MODULES];
    for (int k = 0; k < BV_PLAN_MODULES; k++) {
        train[k] = 16.0 * (double)mc[k].params;
        tot_params += (double)mc[k].params, tot_train += train[k], tot_tern += (double)mc[k].ternary;
    }
    if (json) {
        json_t *mods = json_array();
        for (int k = 0; k < BV_PLAN_MODULES; k++)
            json_array_append_new(mods, json_pack("{s:s, s:I, s:I, s:f}", "module", mc[k].name, "params",
                                                  (json_int_t)mc[k].params, "ternary_params",
                                                  (json_int_t)mc[k].ternary, "train_bytes", train[k]));
        json_t *root = json_pack("{s:s, s:o, s:f, s:f, s:f, s:f, s:f, s:f, s:o, s:o}", "config", config, "modules",
                                 mods, "params", tot_params, "ternary_params", tot_tern, "train_bytes", tot_train,
                                 "deploy_bytes_2bit", hf.report.bytes, "deploy_bytes_tq5", tq5.report.bytes,
                                 "paper_deploy_bytes", BV_BUNDLE_PAPER_BYTES, "bundle_hf",
                                 bv_bundle_report_json(&hf.report), "bundle_tq5", bv_bundle_report_json(&tq5.report));
        char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s);
        free(s);
        json_decref(root);
    } else {
        char a[32], b[32];
        printf("bitvla info: %s (vision W%s/A%d, LLM W1.58/A8)\n\n", config, cfg.vision.weight_bits == 1 ? "1.58" : "32",
               cfg.vision.act_bits);
        printf("training:\n%-20s %15s %15s %12s\n", "module", "params", "ternary", "train");
        for (int k = 0; k < BV_PLAN_MODULES; k++) {
            print_bytes(a, sizeof a, train[k]);
            printf("%-20s %15lld %15lld %12s\n", mc[k].name, (long long)mc[k].params, (long long)mc[k].ternary, a);
        }
        print_bytes(a, sizeof a, tot_train);
        printf("%-20s %15.0f %15.0f %12s\n", "total", tot_params, tot_tern, a);
        printf("train = fp32 weights + gradients + AdamW m and v (16 bytes/param, all parameters trainable).\n\n");
        printf("deployment: the bundle 'bitvla export' writes (--format hf, --dtype bf16); ");
        bv_bundle_report_print(&hf.report, stdout);
        print_bytes(a, sizeof a, hf.report.bytes);
        print_bytes(b, sizeof b, tq5.report.bytes);
        printf("at 1.6 bits (--format tq5): %s instead of %s. 'bitvla info --recipe RECIPE.json' gives the training "
               "plan of a recipe.\n",
               b, a);
    }
    bv_bundle_plan_free(&hf);
    bv_bundle_plan_free(&tq5);
    bv_model_free(&model);
    return 0;
}

/* ---- BUNDLE_DIR ---- */

static int info_bundle(const char *dir, bool json) {
    if (!bv_bundle_is_bundle(dir)) {
        fprintf(stderr, "bitvla info: %s: not a bundle (expected a directory with a manifest.json whose \"format\" is "
                        "\"%s\", as 'bitvla export' writes)\n", dir, BV_BUNDLE_FORMAT);
        return 1;
    }
    bv_bundle b;
    if (bv_bundle_open(&b, dir) != BV_OK) {
        fprintf(stderr, "bitvla info: %s\n", bv_error_msg());
        return 1;
    }
    const bv_st_file *st = &b.st;
    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:o}", "bundle", dir, "layout", bv_bundle_layout_name(b.layout),
                              "dtype", bv_bundle_dtype_name(b.dtype), "dataset", b.dataset, "model_file_bytes",
                              (json_int_t)st->map_size, "memory_report", bv_bundle_report_json(&b.report));
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        printf("bitvla info: bundle %s: layout %s, dtype %s, dataset %s, %d tensors, model.safetensors %.3f GB "
               "(checksums verified)\n",
               dir, bv_bundle_layout_name(b.layout), bv_bundle_dtype_name(b.dtype), b.dataset, st->n,
               (double)st->map_size / 1e9);
        bv_bundle_report_print(&b.report, stdout);
    }
    bv_bundle_close(&b);
    return 0;
}

/* ---- --recipe ---- */

static const char *k_zero_names[3] = {"without sharding", "ZeRO-1 (AdamW moments sharded)",
                                      "ZeRO-2 (moments and gradients sharded)"};

static json_t *module_json(const bv_plan_module *m) {
    double tot = m->weights + m->grads + m->moments + m->caches;
    return json_pack("{s:s, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f}", "module", m->name, "params",
                     (json_int_t)m->params, "trainable_params", (json_int_t)m->trainable, "ternary_params",
                     (json_int_t)m->ternary, "weights_bytes", m->weights, "grads_bytes", m->grads, "moments_bytes",
                     m->moments, "caches_bytes", m->caches, "total_bytes", tot);
}

static void print_module(const bv_plan_module *m) {
    char w[24], g[24], mo[24], c[24], t[24];
    print_gib(w, sizeof w, m->weights);
    print_gib(g, sizeof g, m->grads);
    print_gib(mo, sizeof mo, m->moments);
    print_gib(c, sizeof c, m->caches);
    print_gib(t, sizeof t, m->weights + m->grads + m->moments + m->caches);
    printf("%-18s %11lld %11lld %11s %11s %11s %11s %11s\n", m->name, (long long)m->params, (long long)m->trainable, w,
           g, mo, c, t);
}

/* "0" for nothing, else print_gib */
static void print_gib0(char *buf, size_t n, double b) {
    if (b == 0) snprintf(buf, n, "0");
    else print_gib(buf, n, b);
}

static void print_item(const char *name, double bytes, const char *note) {
    char a[24];
    print_gib0(a, sizeof a, bytes);
    if (*note) printf("  %-34s %11s  %s\n", name, a, note);
    else printf("  %-34s %11s\n", name, a);
}

/* the per-rank plan at rp's world size and ZeRO stage (text) */
static void print_rank_plan(const bv_train_plan *p, const bv_recipe *r, const bv_rank_plan *rp, bool zero_flag,
                            double rank_gib) {
    const int n = rp->world_size, z = rp->zero;
    const bv_plan_module *t = &p->total;
    char note[160], a[24], b[24];
    printf("per rank of %d data-parallel rank%s, %s (%s %d):\n", n, n == 1 ? "" : "s", k_zero_names[z],
           zero_flag ? "--zero" : "the recipe's distributed.zero", z);
    if (z == 2) printf("  (ZeRO-2 is planned only: training implements distributed.zero 0 and 1)\n");
    if (r->global_batch > 0)
        printf("  global batch %lld = micro-batch %d x accumulation %d x %d rank%s (global_batch %d / (micro_batch "
               "%d x %d))\n",
               (long long)rp->global_batch, r->micro_batch, rp->accumulation, n, n == 1 ? "" : "s", r->global_batch,
               r->micro_batch, n);
    else
        printf("  global batch %lld = micro-batch %d x accumulation %d x %d rank%s (the recipe's accumulation)\n",
               (long long)rp->global_batch, r->micro_batch, rp->accumulation, n, n == 1 ? "" : "s");
    print_item("weights (fp32 masters)", rp->weights, "every rank");
    print_item("BitLinear caches", rp->caches, "every rank");
    snprintf(note, sizeof note, "every rank: one micro-batch, %d x %lld tokens", p->micro_batch, (long long)p->tokens);
    print_item("activations", rp->activations, note);
    print_gib(a, sizeof a, t->grads);
    if (z >= 2 && n > 1) snprintf(note, sizeof note, "1/%d of %s (ZeRO-2)", n, a);
    else snprintf(note, sizeof note, "all of them%s", z >= 2 ? " (one rank)" : "");
    print_item("gradients", rp->grads, note);
    print_gib(a, sizeof a, t->moments);
    if (z >= 1 && n > 1) snprintf(note, sizeof note, "1/%d of %s (ZeRO-%d)", n, a, z);
    else snprintf(note, sizeof note, "all of them%s", z >= 1 ? " (one rank)" : "");
    print_item("AdamW moments", rp->moments, note);
    if (n == 1) snprintf(note, sizeof note, "one rank: no all-reduce");
    else {
        const double bucket = rp->comm / 2;
        print_gib(a, sizeof a, bucket);
        if (bucket >= t->grads)
            snprintf(note, sizeof note, "2 buckets in flight x %s (the whole gradient, less than a bucket)", a);
        else snprintf(note, sizeof note, "2 buckets in flight x %s (distributed.bucket_mb %g)", a, r->distributed.bucket_mb);
    }
    print_item("communication buffers", rp->comm, note);
    if (!r->distributed.exact) snprintf(note, sizeof note, "distributed.exact is false");
    else if (rp->accumulation == 1) snprintf(note, sizeof note, "accumulation 1: nothing to sum");
    else {
        print_gib(a, sizeof a, t->grads);
        snprintf(note, sizeof note, "floor(log2 %d) = %.0f x the full gradient (%s)", rp->accumulation,
                 t->grads > 0 ? rp->exact_partials / t->grads : 0.0, a);
    }
    print_item("exact-accumulation partial sums", rp->exact_partials, note);
    print_item("total per rank", rp->bytes, "");
    if (z == 0) snprintf(note, sizeof note, "without sharding rank 0 has every moment already");
    else if (n == 1) snprintf(note, sizeof note, "one rank has every moment already");
    else snprintf(note, sizeof note, "one bucket of AdamW moments at a time, streamed into the checkpoint");
    print_item("rank 0 while saving", rp->save_gather, note);
    print_item("rank 0 peak", rp->rank0_peak, "");
    const double G = rank_gib * GIB;
    print_gib(a, sizeof a, rp->bytes);
    print_gib(b, sizeof b, rp->rank0_peak);
    if (rp->rank0_peak <= G)
        printf("fits %g GiB ranks: %s per rank (%.1f%%), rank 0 peak %s (%.1f%%)\n\n", rank_gib, a,
               100.0 * rp->bytes / G, b, 100.0 * rp->rank0_peak / G);
    else if (rp->bytes <= G)
        printf("does not fit %g GiB ranks: %s per rank fits, but rank 0 needs %s while saving a checkpoint\n\n",
               rank_gib, a, b);
    else
        printf("does not fit %g GiB ranks: %s per rank (%.2fx), rank 0 peak %s\n\n", rank_gib, a, rp->bytes / G, b);
}

static int info_recipe(const char *path, int n_sets, const char *const *sets, double rank_gib, int text_tokens,
                       int world_size, int zero_arg, bool json) {
    bv_recipe r;
    if (bv_recipe_load(&r, path, n_sets, sets) != BV_OK) {
        fprintf(stderr, "bitvla info: %s\n", bv_error_msg());
        return 1;
    }
    bv_train_plan p;
    bv_rank_plan rp;
    const int zero = zero_arg >= 0 ? zero_arg : r.distributed.zero;
    if (bv_train_plan_make(&p, &r, text_tokens) != BV_OK || bv_train_plan_rank(&p, &r, world_size, zero, &rp) != BV_OK) {
        fprintf(stderr, "bitvla info: %s\n", bv_error_msg());
        bv_recipe_free(&r);
        return 1;
    }
    const double rank_bytes = rank_gib * GIB;
    int ranks[3], no_save[3]; /* no_save: the smallest N ignoring rank 0's checkpoint gather */
    bv_rank_plan at[3], at_no_save[3];
    double floor_b[3];
    char floor_what[3][96];
    for (int z = 0; z < 3; z++) {
        ranks[z] = bv_train_plan_min_ranks(&p, &r, z, true, rank_bytes, MAX_RANKS, &at[z]);
        no_save[z] = ranks[z] ? ranks[z] : bv_train_plan_min_ranks(&p, &r, z, false, rank_bytes, MAX_RANKS, &at_no_save[z]);
        floor_b[z] = bv_train_plan_floor(&p, &r, z, floor_what[z], sizeof floor_what[z]);
    }
    const bool fits = p.physical <= 0 || p.bytes <= p.physical;
    const bool rank_fits = rp.rank0_peak <= rank_bytes;
    const bool all_train = p.total.trainable == p.total.params;
    const double unsharded[3] = {p.bytes, p.bytes - p.total.moments, p.bytes - p.total.moments - p.total.grads};
    if (json) {
        json_t *mods = json_array();
        for (int k = 0; k < BV_PLAN_MODULES; k++) json_array_append_new(mods, module_json(&p.mod[k]));
        json_t *rk = json_object(), *mr = json_object();
        const char *keys[3] = {"none", "zero1", "zero2"}, *mkeys[3] = {"zero0", "zero1", "zero2"};
        for (int z = 0; z < 3; z++) {
            json_t *o = json_object();
            json_object_set_new(o, "ranks", ranks[z] ? json_integer(ranks[z]) : json_null());
            json_object_set_new(o, "unsharded_bytes", json_real(unsharded[z]));
            json_object_set_new(o, "sharded_bytes", json_real(p.bytes - unsharded[z]));
            json_object_set_new(o, "rank_bytes", ranks[z] ? json_real(at[z].bytes) : json_null());
            json_object_set_new(o, "rank0_peak_bytes", ranks[z] ? json_real(at[z].rank0_peak) : json_null());
            json_object_set_new(o, "floor_bytes", json_real(floor_b[z]));
            json_object_set_new(o, "floor_items", json_string(floor_what[z]));
            json_object_set_new(rk, keys[z], o);
            json_object_set_new(mr, mkeys[z], ranks[z] ? json_integer(ranks[z]) : json_null());
        }
        json_t *pr = json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "weights_bytes", rp.weights,
                               "caches_bytes", rp.caches, "activations_bytes", rp.activations, "grads_bytes", rp.grads,
                               "moments_bytes", rp.moments, "comm_bytes", rp.comm, "exact_partials_bytes",
                               rp.exact_partials, "total_bytes", rp.bytes, "rank0_save_gather_bytes", rp.save_gather,
                               "rank0_peak_bytes", rp.rank0_peak);
        json_t *root = json_pack("{s:s, s:s, s:o, s:o, s:i, s:I, s:f, s:f, s:f, s:b, s:f, s:o}", "recipe", path,
                                 "config", r.model.config, "modules", mods, "totals", module_json(&p.total),
                                 "micro_batch", p.micro_batch, "tokens", (json_int_t)p.tokens, "activations_bytes",
                                 p.activations, "total_bytes", p.bytes, "physical_bytes", p.physical, "fits_physical",
                                 fits, "rank_gib", rank_gib, "data_parallel", rk);
        json_object_set_new(root, "max_trainable_tensor_bytes", json_real(p.max_trainable_tensor));
        json_object_set_new(root, "world_size", json_integer(world_size));
        json_object_set_new(root, "zero", json_integer(zero));
        json_object_set_new(root, "zero_trained", json_boolean(zero <= 1));
        json_object_set_new(root, "accumulation", json_integer(rp.accumulation));
        json_object_set_new(root, "global_batch", json_integer(rp.global_batch));
        json_object_set_new(root, "per_rank", pr);
        json_object_set_new(root, "fits", json_boolean(rank_fits));
        json_object_set_new(root, "min_ranks", mr);
        char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s);
        free(s);
        json_decref(root);
        bv_recipe_free(&r);
        return 0;
    }
    char a[24], b[24];
    printf("bitvla info: training plan of %s: model %s, %s\n\n", path, r.model.config,
           all_train ? "every parameter trains" : "some parameters frozen (model.train / model.freeze)");
    printf("%-18s %11s %11s %11s %11s %11s %11s %11s\n", "module", "params", "trainable", "weights", "gradients",
           "AdamW m+v", "caches", "total");
    for (int k = 0; k < BV_PLAN_MODULES; k++) print_module(&p.mod[k]);
    print_module(&p.total);
    print_gib(a, sizeof a, p.activations);
    printf("%-18s %11s %11s %11s %11s %11s %11s %11s\n", "activations", "", "", "", "", "", "", a);
    print_gib(a, sizeof a, p.bytes);
    printf("%-18s %11s %11s %11s %11s %11s %11s %11s\n\n", "total", "", "", "", "", "", "", a);
    const double per = p.total.ternary ? p.total.caches / (double)p.total.ternary : 5.0;
    printf("weights: fp32, 4 B per parameter; gradients and AdamW m, v: 4 + 8 B per trainable parameter;\n"
           "caches: per ternary weight, int8 codes + fp32 dequantized copy%s = %.2f B;\n"
           "activations: forward + backward of one micro-batch, %d row%s x %lld tokens\n"
           "(BOS, %d x %d image, proprio, %d text, %d action tokens, EOS).\n\n",
           per > 5.0 ? " + 2-bit codes of the integer forward" : "", per, p.micro_batch, p.micro_batch == 1 ? "" : "s",
           (long long)p.tokens,
           p.n_images, p.image_tokens, p.text_tokens, p.action_tokens);
    if (p.physical > 0) {
        print_gib(b, sizeof b, p.physical);
        if (fits) printf("this machine: fits in its %s of physical memory (%.1f%% of it)\n\n", b, 100.0 * p.bytes / p.physical);
        else printf("this machine: does not fit: %s needed, %s of physical memory (%.2fx)\n\n", a, b, p.bytes / p.physical);
    }
    print_rank_plan(&p, &r, &rp, zero_arg >= 0, rank_gib);
    printf("the smallest N of %g GiB machines on which this fits (rank 0's peak while saving included", rank_gib);
    if (r.global_batch > 0)
        printf(";\nN such that global_batch %d / (micro_batch %d x N) is whole", r.global_batch, r.micro_batch);
    printf("):\n");
    for (int z = 0; z < 3; z++) {
        const char *planned = z == 2 ? " (planned only: training implements ZeRO 0 and 1)" : "";
        printf("  %-40s ", k_zero_names[z]);
        if (ranks[z]) {
            print_gib(a, sizeof a, at[z].bytes);
            print_gib(b, sizeof b, at[z].rank0_peak);
            printf("N = %d: %s per rank, rank 0 peak %s%s\n", ranks[z], a, b, planned);
        } else if (floor_b[z] > rank_bytes) {
            print_gib(a, sizeof a, floor_b[z]);
            printf("none: %s = %s > %g GiB on every rank whatever N%s\n", floor_what[z], a, rank_gib, planned);
        } else if (at[z].world_size == 0) {
            printf("none: no N makes global_batch / (micro_batch x N) whole%s\n", planned);
        } else {
            const int up_to =
                r.global_batch > 0 ? (int)BV_MIN((int64_t)MAX_RANKS, r.global_batch / r.micro_batch) : MAX_RANKS;
            if (no_save[z]) {
                print_gib(a, sizeof a, at_no_save[z].bytes);
                print_gib(b, sizeof b, at_no_save[z].save_gather);
                printf("none up to N = %d: every rank fits from N = %d (%s), but rank 0 streams the AdamW moments "
                       "through a bucket (%s more) while saving a checkpoint%s\n",
                       up_to, no_save[z], a, b, planned);
            } else {
                print_gib(a, sizeof a, at[z].bytes);
                print_gib(b, sizeof b, at[z].rank0_peak);
                printf("none up to N = %d: the least is at N = %d, %s per rank, rank 0 peak %s > %g GiB%s\n", up_to,
                       at[z].world_size, a, b, rank_gib, planned);
            }
        }
    }
    bv_recipe_free(&r);
    return 0;
}

int bv_cmd_info(int argc, char **argv) {
    const char *config = NULL, *recipe = NULL, *bundle = NULL;
    const char **sets = calloc((size_t)argc + 2, sizeof *sets);
    char *config_set = NULL; /* --config with --recipe: the override "model.config=\"C\"" */
    int n_sets = 0, config_at = -1, text_tokens = 0, world_size = 1, zero = -1, rc = 2;
    bool world_flag = false;
    double rank_gib = 24;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            rc = 0;
            goto done;
        } else if (!strcmp(a, "--config") && v) {
            config = v, config_at = n_sets, i++;
        } else if (!strcmp(a, "--recipe") && v) {
            recipe = v, i++;
        } else if (!strcmp(a, "--set") && v) {
            if (!strchr(v, '=')) {
                fprintf(stderr, "bitvla info: --set expects key.path=value, got '%s'\n", v);
                goto done;
            }
            sets[n_sets++] = v, i++;
        } else if (!strcmp(a, "--rank-gib")) {
            if (!bv_cli_double("info", "--rank-gib", v, 0.001, 1e9, &rank_gib)) goto done;
            i++;
        } else if (!strcmp(a, "--text-tokens")) {
            if (!bv_cli_int("info", "--text-tokens", v, 1, 1000000, &text_tokens)) goto done;
            i++;
        } else if (!strcmp(a, "--world-size")) {
            if (!bv_cli_int("info", "--world-size", v, 1, MAX_RANKS, &world_size)) goto done;
            world_flag = true, i++;
        } else if (!strcmp(a, "--zero")) {
            if (!bv_cli_int("info", "--zero", v, 0, 2, &zero)) goto done;
            i++;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (a[0] != '-' && !bundle) {
            bundle = a;
        } else {
            fprintf(stderr,
                    "bitvla info: unknown or incomplete option '%s' (expected BUNDLE_DIR, --config C, or --recipe R [--config C] "
                    "[--set K=V]... [--world-size N] [--zero 0|1|2] [--rank-gib G] [--text-tokens N], --json)\n",
                    a);
            goto done;
        }
    }
    if (bundle) {
        if (config || recipe || n_sets || text_tokens || world_flag || zero >= 0) {
            fprintf(stderr, "bitvla info: a BUNDLE_DIR takes --json only (not --config, --recipe or their options)\n");
            goto done;
        }
        rc = info_bundle(bundle, json);
        goto done;
    }
    if (!config && !recipe) {
        fprintf(stderr, "bitvla info: give a BUNDLE_DIR, --config PRESET|config.json (presets: bitvla-2b, tiny) or --recipe "
                        "RECIPE.json (with --config: the recipe's model.config replaced)\n");
        goto done;
    }
    if (!recipe && (n_sets || text_tokens || world_flag || zero >= 0)) {
        fprintf(stderr, "bitvla info: --set, --text-tokens, --world-size and --zero apply to --recipe only\n");
        goto done;
    }
    if (recipe && config) {
        /* the same override as --set model.config=C, in its place among the --set's (a JSON string,
           so a config path that reads as a number or true stays a path) */
        json_t *js = json_string(config);
        char *q = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
        json_decref(js);
        if (!q) {
            fprintf(stderr, "bitvla info: --config '%s' is not valid UTF-8\n", config);
            goto done;
        }
        config_set = malloc(strlen(q) + sizeof "model.config=");
        if (!config_set) {
            free(q);
            fprintf(stderr, "bitvla info: out of memory\n");
            rc = 1;
            goto done;
        }
        strcpy(config_set, "model.config=");
        strcat(config_set, q);
        free(q);
        memmove(sets + config_at + 1, sets + config_at, (size_t)(n_sets - config_at) * sizeof *sets);
        sets[config_at] = config_set, n_sets++;
    }
    rc = recipe ? info_recipe(recipe, n_sets, sets, rank_gib, text_tokens, world_size, zero, json)
                : info_config(config, json);
done:
    free(config_set);
    free(sets);
    return rc;
}
