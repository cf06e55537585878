/* bench_loader.c - `bitvla bench loader`: how fast the data loader (data/loader.h) produces
 * training samples, beside how long the model needs per sample, and JPEG against raw-pixel shards.
 *
 * Data: `bitvla synth` episodes at 256x256 (LIBERO's RLDS resolution), converted with the libero
 * schema twice, JPEG shards and raw shards, in a temporary directory (removed at the end). A tiny
 * byte-level BPE tokenizer with BitVLA's tokens builds the prompts.
 * Prints:
 *  - the shard sizes of both storages;
 *  - per image, on one thread: JPEG read + decode, raw read, the training transform (random crop,
 *    bicubic resize, colour jitter, normalisation) and the evaluation transform, at 224 and 56;
 *  - loader samples/s (two cameras, training augmentation) at 224x224 and at 56x56 (the tiny
 *    preset), both storages, with 1 and --threads prefetch threads (the consumer only takes the
 *    batches);
 *  - the model's forward + backward time per sample on --threads OpenMP threads: the tiny preset
 *    measured, and the full size estimated from models of full width with 1 and 2 layers in the
 *    vision tower and the LLM: t(1,1) + 25 * (t(2,1) - t(1,1)) + 29 * (t(1,2) - t(1,1))
 *    (the vocabulary cut to the tiny tokenizer's: embedding rows are not compute);
 *  - the loader's CPU time per sample as a fraction of the model's.
 * Timings are medians or totals over --seconds of steady state; the machine's other load shows.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autograd/autograd.h"
#include "bench/bench.h"
#include "bench/bench_util.h"
#include "data/convert.h"
#include "data/loader.h"
#include "data/shards.h"
#include "data/synth.h"
#include "models/build.h"

typedef struct {
    int threads, batch, episodes, reps;
    double seconds;
    bool full, keep;
    const char *json;
} lb_opts;

static int usage(void) {
    fprintf(stderr, "usage: bitvla bench loader [--threads N] [--batch B] [--episodes E] [--seconds S] [--reps N]\n"
                    "                           [--no-full] [--keep] [--json FILE]\n"
                    "  --threads N   prefetch threads and model threads (default 2)\n"
                    "  --batch B     loader batch size (default 8)\n"
                    "  --episodes E  synth episodes at 256x256 (default 8)\n"
                    "  --seconds S   measuring time per loader configuration (default 3)\n"
                    "  --reps N      model forward+backward repetitions (default 3)\n"
                    "  --no-full     skip the full-size model estimate (about a minute on 2 cores, 2 GB)\n"
                    "  --keep        keep the temporary dataset (its path is printed)\n"
                    "  --json FILE   also append the figures as one JSON object\n");
    return 2;
}

static int parse(int argc, char **argv, lb_opts *o) {
    *o = (lb_opts){.threads = 2, .batch = 8, .episodes = 8, .reps = 3, .seconds = 3.0, .full = true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int *ip = !strcmp(a, "--threads")    ? &o->threads
                  : !strcmp(a, "--batch")    ? &o->batch
                  : !strcmp(a, "--episodes") ? &o->episodes
                  : !strcmp(a, "--reps")     ? &o->reps
                                             : NULL;
        if (ip) {
            long long x;
            if (bv_parse_int(a, v, 1, 100000, &x)) {
                fprintf(stderr, "bitvla bench loader: %s\n", bv_error_msg());
                return 2;
            }
            *ip = (int)x;
            if (ip == &o->threads && bv_bench_check_threads("loader", o->threads)) return 2;
            i++;
        } else if (!strcmp(a, "--seconds")) {
            if (bv_parse_double(a, v, 0.01, 3600, &o->seconds)) {
                fprintf(stderr, "bitvla bench loader: %s\n", bv_error_msg());
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--json")) {
            if (!v) return usage();
            o->json = v;
            i++;
        } else if (!strcmp(a, "--no-full")) {
            o->full = false;
        } else if (!strcmp(a, "--keep")) {
            o->keep = true;
        } else {
            fprintf(stderr, "bitvla bench loader: unknown option '%s'\n", a);
            return usage();
        }
    }
    if (o->json && bv_bench_json_check("loader", o->json)) return 2; /* before the minutes of work */
    return 0;
}

static double shard_bytes(const char *dir) {
    DIR *d = opendir(dir);
    double n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "shard-", 6)) continue;
        char p[1200];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (!stat(p, &st)) n += (double)st.st_size;
    }
    if (d) closedir(d);
    return n;
}

static bv_loader_opts loader_opts(const char *dir, const bv_tok *tok, int size, int tokens, int batch, int threads) {
    bv_loader_opts o;
    bv_loader_opts_default(&o);
    o.dir = dir;
    o.tok = tok;
    o.image_size = size;
    o.image_tokens = tokens;
    o.batch_size = batch;
    o.threads = threads;
    o.seed = 1;
    return o;
}

/* samples per second of a loader whose consumer only takes the batches */
static bv_status loader_rate(const bv_loader_opts *lo, double seconds, double *rate) {
    bv_loader *l;
    bv_status st = bv_loader_open(&l, lo);
    if (st) return st;
    const bv_loader_batch *b;
    for (int i = 0; i < 2 && !st; i++) st = bv_loader_next(l, &b); /* warm-up: queues filled */
    double t0 = bv_time_now(), t = 0;
    int64_t n = 0;
    while (!st && (t = bv_time_now() - t0) < seconds) {
        st = bv_loader_next(l, &b);
        n += lo->batch_size;
    }
    *rate = (double)n / t;
    bv_loader_free(l);
    return st;
}

/* per-image costs on this thread: read + decode, raw read, train / eval transforms at size S */
typedef struct {
    double jpeg_ms, raw_ms, train_ms[2], eval_ms[2];
} stage_times;

static bv_status stages(const char *jpeg_dir, const char *raw_dir, stage_times *t) {
    char pj[1200], pr[1200];
    snprintf(pj, sizeof pj, "%s/shard-00000.h5", jpeg_dir);
    snprintf(pr, sizeof pr, "%s/shard-00000.h5", raw_dir);
    bv_shard sj, sr;
    bv_status st = bv_shard_open(&sj, pj);
    if (st) return st;
    if ((st = bv_shard_open(&sr, pr))) {
        bv_shard_close(&sj);
        return st;
    }
    int n = (int)BV_MIN(sj.n_steps, 200), cam = bv_shard_find_camera(&sj, "primary");
    bv_image img = {0};
    uint8_t *scratch = NULL;
    size_t cap = 0;
    double t0 = bv_time_now();
    for (int i = 0; i < n && !st; i++) st = bv_shard_read_rgb(&sj, cam, i, &img, &scratch, &cap);
    t->jpeg_ms = (bv_time_now() - t0) / n * 1e3;
    t0 = bv_time_now();
    for (int i = 0; i < n && !st; i++) st = bv_shard_read_rgb(&sr, cam, i, &img, &scratch, &cap);
    t->raw_ms = (bv_time_now() - t0) / n * 1e3;
    bv_aug_cfg cfg;
    bv_aug_cfg_default(&cfg);
    bv_aug_scratch as = {0};
    const int sizes[2] = {224, 56};
    float *out = bv_aligned_alloc((size_t)3 * 224 * 224 * sizeof(float));
    for (int k = 0; k < 2 && !st; k++) {
        bv_aug_params p;
        t0 = bv_time_now();
        for (int i = 0; i < n; i++) {
            bv_aug_draw(&cfg, bv_aug_key(1, 0, (uint64_t)i, 0), &p);
            bv_aug_apply(img.rgb, img.w, img.h, &p, sizes[k], out, &as);
        }
        t->train_ms[k] = (bv_time_now() - t0) / n * 1e3;
        bv_aug_center(&cfg, &p);
        t0 = bv_time_now();
        for (int i = 0; i < n; i++) bv_aug_apply(img.rgb, img.w, img.h, &p, sizes[k], out, &as);
        t->eval_ms[k] = (bv_time_now() - t0) / n * 1e3;
    }
    bv_aligned_free(out);
    bv_aug_scratch_free(&as);
    bv_image_free(&img);
    free(scratch);
    bv_shard_close(&sj);
    bv_shard_close(&sr);
    return st;
}

/* median seconds of one forward + backward of model config c on a loader batch of B rows */
static bv_status model_time(const bv_vla_config *c0, const bv_tok *tok, const char *dir, int B, int reps, double *sec) {
    bv_vla_config c = *c0;
    c.text.vocab_size = bv_tok_vocab_size(tok);
    c.image_token_index = bv_tok_token_id(tok, "<|image_pad|>");
    c.proprio_token_index = bv_tok_token_id(tok, "<proprio_pad>");
    bv_status st = bv_config_validate(&c, "bench config");
    if (st) return st;
    int S = c.vision.image_size, P = bv_config_vision_patches(&c);
    bv_loader_opts lo = loader_opts(dir, tok, S, P, B, 0);
    bv_loader *l;
    if ((st = bv_loader_open(&l, &lo))) return st;
    const bv_loader_batch *b;
    if ((st = bv_loader_next(l, &b))) {
        bv_loader_free(l);
        return st;
    }
    bv_model model;
    bv_model_spec spec = {.config = "bench config", .cfg = &c, .purpose = BV_MODEL_TRAIN, .seed = 1};
    if ((st = bv_model_build(&model, &spec))) {
        bv_loader_free(l);
        return st;
    }
    bv_vla_batch vb = bv_loader_batch_vla(b);
    if ((st = bv_vla_batch_check(&model.vla, &vb, BV_VLA_MODE_ACTION, "bench batch"))) goto done;
    bv_graph g;
    bv_graph_init(&g, (size_t)256 << 20);
    double times[64];
    reps = BV_MIN(reps, 64);
    for (int r = -1; r < reps; r++) {
        bv_graph_reset(&g);
        bv_params_zero_grad(&model.params);
        double t0 = bv_time_now();
        bv_vla_out y = bv_vla_forward(&g, &model.params, &model.vla, &vb, BV_VLA_MODE_ACTION);
        bv_graph_backward(&g, y.loss);
        if (r >= 0) times[r] = bv_time_now() - t0;
    }
    *sec = bv_bench_median(times, reps);
    bv_graph_free(&g);
done:
    bv_model_free(&model);
    bv_loader_free(l);
    return st;
}

int bv_bench_loader(int argc, char **argv) {
    lb_opts o;
    if (parse(argc, argv, &o)) return 2;
    o.threads = bv_set_num_threads(o.threads);
    char root[256], rlds[300], jdir[300], rdir[300];
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/bitvla_bench_loader_%d", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    snprintf(rlds, sizeof rlds, "%s/rlds", root);
    snprintf(jdir, sizeof jdir, "%s/jpeg", root);
    snprintf(rdir, sizeof rdir, "%s/raw", root);
    if (mkdir(root, 0777)) {
        fprintf(stderr, "bitvla bench loader: cannot create %s\n", root);
        return 1;
    }
    setenv("BV_PROGRESS", "0", 1);
    bv_tok *tok = NULL;
    bv_status st = BV_OK;
    int json_rc = 0;
    double t0 = bv_time_now();
    bv_synth_opts so;
    bv_synth_opts_default(&so);
    so.episodes = o.episodes;
    so.quiet = true;
    bv_synth_report rep;
    if ((st = bv_synth_write_rlds(rlds, &so, &rep))) goto done;
    double t_synth = bv_time_now() - t0;
    bv_schema schema;
    if ((st = bv_schema_load(&schema, "libero"))) goto done;
    bv_convert_opts cj = {.out_dir = jdir, .images = BV_IMAGES_JPEG}, cr = {.out_dir = rdir, .images = BV_IMAGES_RAW};
    t0 = bv_time_now();
    st = bv_convert_rlds(rlds, &schema, &cj);
    double t_cj = bv_time_now() - t0;
    t0 = bv_time_now();
    if (!st) st = bv_convert_rlds(rlds, &schema, &cr);
    double t_cr = bv_time_now() - t0;
    bv_schema_free(&schema);
    if (st || (st = bv_bench_tokenizer(&tok))) goto done;
    double bj = shard_bytes(jdir), br = shard_bytes(rdir);
    printf("data: %d synth episodes at 256x256, %lld steps, 2 cameras (%.1f s); shards: jpeg %.1f MB (converted in "
           "%.1f s), raw %.1f MB (%.1f s), raw/jpeg %.1fx\n",
           o.episodes, (long long)rep.steps, t_synth, bj / 1e6, t_cj, br / 1e6, t_cr, br / bj);

    stage_times stt;
    if ((st = stages(jdir, rdir, &stt))) goto done;
    printf("per image, 1 thread: jpeg read+decode %.2f ms, raw read %.2f ms; transform at 224: train %.2f ms, eval "
           "%.2f ms; at 56: train %.2f ms, eval %.2f ms\n",
           stt.jpeg_ms, stt.raw_ms, stt.train_ms[0], stt.eval_ms[0], stt.train_ms[1], stt.eval_ms[1]);

    /* loader throughput */
    const int sizes[2] = {224, 56}, toks[2] = {256, 16};
    const char *dirs[2] = {jdir, rdir}, *names[2] = {"jpeg", "raw"};
    int tcounts[2] = {1, o.threads};
    double rate[2][2][2]; /* size, storage, threads */
    for (int s = 0; s < 2; s++) {
        printf("loader samples/s at %dx%d (2 cameras, train augmentation, batch %d):", sizes[s], sizes[s], o.batch);
        for (int d = 0; d < 2; d++)
            for (int k = 0; k < 2; k++) {
                bv_loader_opts lo = loader_opts(dirs[d], tok, sizes[s], toks[s], o.batch, tcounts[k]);
                if ((st = loader_rate(&lo, o.seconds, &rate[s][d][k]))) goto done;
                printf(" %s %d thread%s %.0f%s", names[d], tcounts[k], tcounts[k] > 1 ? "s" : "", rate[s][d][k],
                       d == 1 && k == 1 ? "\n" : ",");
            }
    }

    /* model time per sample */
    bv_vla_config tiny;
    if ((st = bv_config_preset("tiny", &tiny))) goto done;
    double t_tiny = 0;
    if ((st = model_time(&tiny, tok, jdir, 8, o.reps, &t_tiny))) goto done;
    t_tiny /= 8;
    printf("model fwd+bwd per sample, %d threads: tiny (56x56) %.2f ms (%.0f samples/s)\n", o.threads, t_tiny * 1e3,
           1.0 / t_tiny);
    double t_full = 0, t11 = 0, t21 = 0, t12 = 0;
    if (o.full) {
        bv_vla_config c;
        if ((st = bv_config_preset("bitvla-2b", &c))) goto done;
        c.vision.num_hidden_layers = 1, c.text.num_hidden_layers = 1;
        if ((st = model_time(&c, tok, jdir, 1, 1, &t11))) goto done;
        c.vision.num_hidden_layers = 2;
        if ((st = model_time(&c, tok, jdir, 1, 1, &t21))) goto done;
        c.vision.num_hidden_layers = 1, c.text.num_hidden_layers = 2;
        if ((st = model_time(&c, tok, jdir, 1, 1, &t12))) goto done;
        t_full = t11 + 25 * (t21 - t11) + 29 * (t12 - t11);
        printf("  full size (224x224, estimated): %.1f s per sample = 1-layer model %.2f s + 25 x vision layer %.2f s "
               "+ 29 x LLM layer %.2f s\n",
               t_full, t11, t21 - t11, t12 - t11);
    }
    /* the loader's CPU time per sample (1 thread, JPEG) against the model's step time */
    double l224 = 1.0 / rate[0][0][0], l56 = 1.0 / rate[1][0][0];
    printf("loader CPU time per sample (jpeg, 1 thread) / model time per sample: tiny at 56: %.2f ms / %.2f ms = "
           "%.0f%%",
           l56 * 1e3, t_tiny * 1e3, 100.0 * l56 / t_tiny);
    if (o.full) printf("; full size at 224: %.2f ms / %.1f s = %.3f%%", l224 * 1e3, t_full, 100.0 * l224 / t_full);
    printf("\n");
    if (o.json) {
        bv_bench_text js = {0};
        bv_bench_text_printf(&js,
                             "{\"bench\": \"loader\", \"threads\": %d, \"batch\": %d, \"jpeg_mb\": %.2f, \"raw_mb\": %.2f, "
                             "\"jpeg_decode_ms\": %.3f, \"raw_read_ms\": %.3f, \"train_224_ms\": %.3f, \"train_56_ms\": %.3f, "
                             "\"rate_224_jpeg\": [%.1f, %.1f], \"rate_224_raw\": [%.1f, %.1f], \"rate_56_jpeg\": [%.1f, %.1f], "
                             "\"rate_56_raw\": [%.1f, %.1f], \"tiny_ms\": %.3f, \"full_s\": %.2f}\n",
                             o.threads, o.batch, bj / 1e6, br / 1e6, stt.jpeg_ms, stt.raw_ms, stt.train_ms[0],
                             stt.train_ms[1], rate[0][0][0], rate[0][0][1], rate[0][1][0], rate[0][1][1], rate[1][0][0],
                             rate[1][0][1], rate[1][1][0], rate[1][1][1], t_tiny * 1e3, t_full);
        json_rc = bv_bench_json_append("loader", o.json, &js);
        bv_bench_text_free(&js);
    }
done:
    if (st) fprintf(stderr, "bitvla bench loader: %s\n", bv_error_msg());
    bv_tok_free(tok);
    if (o.keep) {
        printf("dataset kept in %s\n", root);
    } else {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        if (system(cmd) != 0) fprintf(stderr, "bitvla bench loader: could not remove %s\n", root);
    }
    return st || json_rc ? 1 : 0;
}
