/* bench_train.c - `bitvla bench train`: one full training step of the VLA (zero the gradients,
 * forward, backward, the trainer's gradient checks, clipping at norm 1 and an AdamW step), with
 * the batch already in memory, and where its time goes.
 *
 * Sizes:
 *   tiny  the tiny preset at its real batch shape (recipes/tiny_synth.json): micro-batch 8 rows,
 *         2 images of 56x56 (16 patches each);
 *   mid   bitvla-2b widths with fewer layers: 6 SigLIP-so400m layers (hidden 1152, MLP 4304,
 *         16 heads, patch 14, image 224: 256 patches per image, W1.58A8) and 4 BitNet-2B layers
 *         (hidden 2560, FFN 6912, 20 heads, 5 KV heads, relu2), the vocabulary cut to --vocab
 *         (default 1024: embedding rows are not compute), the full connector, proprio projector and
 *         action head; 1 row by default (--batch), 2 images of 224x224.
 * Rows follow models/vla.h's layout with the longest realistic prompt of `bitvla info --recipe`:
 * BOS, 2 x patches image tokens, proprio, --text (default 40) text tokens, 56 action tokens, EOS
 * (tiny: T = 131; mid: T = 611). Token ids, pixels, proprio and targets are random but fixed.
 *
 * Prints per size the step time (median and best of --reps steps after one warm-up step that
 * grows the arena and quantizes the weights), its forward / backward / optimizer parts, the
 * shares of GEMM, BitLinear quantization and attention (src/profile.h counters, on while the
 * timed steps run), the optimizer and the rest, the peak RSS of the process (getrusage; measured
 * before the data part), and the data loader's time per batch on the calling thread (threads = 0:
 * read + JPEG decode + augmentation + prompt of the batch, from a few `bitvla synth` episodes in a
 * temporary directory) as its share of a step that loaded its own data synchronously. The PyTorch
 * peer (bench/peer/torch_train_peer.py) runs the same model and batch; scripts/bench train runs
 * each size in its own process beside it and prints the ratios. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/bench_util.h"
#include "data/convert.h"
#include "data/loader.h"
#include "data/synth.h"
#include "models/build.h"
#include "optim/adamw.h"
#include "src/profile.h"

#define MAX_REPS 256

typedef struct {
    const char *size; /* "tiny" | "mid" | "all" */
    int batch;        /* 0: the size's default */
    int text, vocab;
    int reps; /* 0: the size's default */
    bool data;
    bv_bench_opts b;
} tb_opts;

void bv_bench_batch_free(bv_bench_batch *m) {
    bv_aligned_free(m->ids);
    bv_aligned_free(m->attn);
    bv_aligned_free(m->amask);
    bv_aligned_free(m->pix);
    bv_aligned_free(m->prop);
    bv_aligned_free(m->act);
}

/* The special ids sit where the tiny preset has them: below the last 258 ids of the vocabulary,
 * image, proprio, then the 256 action tokens. */
void bv_bench_batch_make(bv_bench_batch *m, const bv_vla_config *c, int B, int n_img, int text) {
    const int64_t P = bv_config_vision_patches(c), A = bv_config_action_tokens(c), V = c->text.vocab_size;
    const int64_t T = 1 + n_img * P + 1 + text + A + 1, S = c->vision.image_size;
    memset(m, 0, sizeof *m);
    m->B = B, m->T = T;
    m->ids = bv_aligned_alloc((size_t)(B * T) * sizeof(int64_t));
    m->attn = bv_aligned_alloc((size_t)(B * T));
    m->amask = bv_aligned_alloc((size_t)(B * T));
    const int64_t npix = (int64_t)B * n_img * 3 * S * S;
    m->pix = bv_aligned_alloc((size_t)npix * sizeof(float));
    m->prop = bv_aligned_alloc((size_t)B * c->proprio_dim * sizeof(float));
    m->act = bv_aligned_alloc((size_t)B * A * sizeof(float));
    uint64_t s = 12345;
    for (int64_t r = 0; r < B; r++) {
        int64_t *id = m->ids + r * T, t = 0;
        const int64_t n_text = V - 258; /* ordinary ids: [0, V - 258) */
        id[t++] = 1 % n_text;
        for (int64_t k = 0; k < n_img * P; k++) id[t++] = c->image_token_index;
        id[t++] = c->proprio_token_index;
        for (int k = 0; k < text; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            id[t++] = (int64_t)((s >> 33) % (uint64_t)n_text);
        }
        for (int64_t k = 0; k < A; k++) id[t++] = V - 256 + k % 256;
        id[t++] = 2 % n_text;
        for (int64_t k = 0; k < T; k++) {
            m->attn[r * T + k] = 1;
            m->amask[r * T + k] = k >= T - 1 - A && k < T - 1;
        }
    }
    bv_bench_fill(m->pix, npix, 3);
    bv_bench_fill(m->prop, (int64_t)B * c->proprio_dim, 5);
    bv_bench_fill(m->act, (int64_t)B * A, 7);
    m->t_ids = bv_tensor_make2(m->ids, BV_DTYPE_I64, B, T);
    m->t_attn = bv_tensor_make2(m->attn, BV_DTYPE_U8, B, T);
    m->t_amask = bv_tensor_make2(m->amask, BV_DTYPE_U8, B, T);
    int64_t ps[5] = {B, n_img, 3, S, S};
    m->t_pix = bv_tensor_make(m->pix, BV_DTYPE_F32, 5, ps);
    m->t_prop = bv_tensor_make2(m->prop, BV_DTYPE_F32, B, c->proprio_dim);
    m->t_act = bv_tensor_make3(m->act, BV_DTYPE_F32, B, c->num_actions_chunk, c->action_dim);
    m->b = (bv_vla_batch){.input_ids = &m->t_ids, .attention_mask = &m->t_attn, .pixel_values = &m->t_pix,
                          .proprio = &m->t_prop, .action_mask = &m->t_amask, .actions = &m->t_act};
}

bv_status bv_bench_train_config(const char *size, int vocab, bv_vla_config *c) {
    if (!strcmp(size, "tiny")) return bv_config_preset("tiny", c);
    BV_TRY(bv_config_preset("bitvla-2b", c));
    c->vision.num_hidden_layers = 6;
    c->vision_feature_layer = -1;
    c->text.num_hidden_layers = 4;
    c->text.vocab_size = vocab;
    c->image_token_index = vocab - 258;
    c->proprio_token_index = vocab - 257;
    return bv_config_validate(c, "bench train mid");
}

/* median seconds per batch of the loader on this thread (threads = 0), from `episodes` synth
 * episodes at 256x256 converted to JPEG shards in a temporary directory */
static bv_status data_time(const bv_vla_config *c, int B, int reps, double *sec) {
    char root[256], rlds[300], dir[300];
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/bitvla_bench_train_%d", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    snprintf(rlds, sizeof rlds, "%s/rlds", root);
    snprintf(dir, sizeof dir, "%s/jpeg", root);
    if (mkdir(root, 0777)) return bv_error_set(BV_ERR_IO, "cannot create %s", root);
    bv_tok *tok = NULL;
    bv_loader *l = NULL;
    bv_synth_opts so;
    bv_synth_opts_default(&so);
    so.episodes = 2;
    so.quiet = true;
    bv_schema schema;
    bv_status st = bv_synth_write_rlds(rlds, &so, NULL);
    if (!st && !(st = bv_schema_load(&schema, "libero"))) {
        bv_convert_opts co = {.out_dir = dir, .images = BV_IMAGES_JPEG};
        st = bv_convert_rlds(rlds, &schema, &co);
        bv_schema_free(&schema);
    }
    if (!st) st = bv_bench_tokenizer(&tok);
    if (!st) {
        bv_loader_opts lo;
        bv_loader_opts_default(&lo);
        lo.dir = dir, lo.tok = tok, lo.batch_size = B, lo.threads = 0, lo.seed = 1;
        lo.image_size = c->vision.image_size, lo.image_tokens = bv_config_vision_patches(c);
        lo.n_images = 2, lo.chunk = c->num_actions_chunk;
        st = bv_loader_open(&l, &lo);
    }
    double t[MAX_REPS];
    reps = BV_MAX(3, BV_MIN(reps, MAX_REPS));
    for (int r = -1; r < reps && !st; r++) {
        const bv_loader_batch *b;
        double t0 = bv_time_now();
        st = bv_loader_next(l, &b);
        if (r >= 0) t[r] = bv_time_now() - t0;
    }
    if (!st) *sec = bv_bench_median(t, reps);
    bv_loader_free(l);
    bv_tok_free(tok);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "bitvla bench train: could not remove %s\n", root);
    return st ? bv_error_prefix(st, "data loading") : BV_OK;
}

typedef struct {
    double fwd, bwd, opt, step;
} step_times;

/* CPU seconds (user, system) this process has used */
static void cpu_times(double *user, double *sys) {
    struct rusage ru;
    *user = *sys = 0;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return;
    *user = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec;
    *sys = (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static step_times train_step(bv_graph *g, bv_model *m, bv_adamw *opt, const bv_vla_batch *b) {
    bv_params *p = &m->params;
    double t0 = bv_time_now();
    bv_params_zero_grad(p);
    bv_graph_reset(g);
    double t1 = bv_time_now();
    bv_vla_out y = bv_vla_forward(g, p, &m->vla, b, BV_VLA_MODE_ACTION);
    double t2 = bv_time_now();
    bv_graph_backward(g, y.loss);
    double t3 = bv_time_now();
    /* what the trainer does between the backward and the update (recipes/train.c step) */
    if (bv_grad_first_nonfinite(p->grads, p->numel_trainable) < 0) {
        double norm = bv_grad_norm(p->grads, p->numel_trainable);
        bv_grad_clip(p->grads, p->numel_trainable, norm, 1.0);
        bv_adamw_step(opt, p, 1e-4, 1.0);
    }
    double t4 = bv_time_now();
    return (step_times){.fwd = t2 - t1, .bwd = t3 - t2, .opt = (t1 - t0) + (t4 - t3), .step = t4 - t0};
}

static int bench_size(const char *size, const tb_opts *o) {
    bv_vla_config c;
    const bool tiny = !strcmp(size, "tiny");
    if (bv_bench_train_config(size, o->vocab, &c) != BV_OK) {
        fprintf(stderr, "bitvla bench train: %s\n", bv_error_msg());
        return 1;
    }
    const int B = o->batch ? o->batch : (tiny ? 8 : 1);
    const int reps = BV_MIN(o->reps ? o->reps : (tiny ? 20 : 3), MAX_REPS);
    bv_bench_batch mb;
    bv_bench_batch_make(&mb, &c, B, 2, o->text);
    const double act = bv_vla_plan_forward(&c, &mb.b, BV_VLA_MODE_ACTION, true);
    printf("== train %s: vision %d x (D %d, MLP %d, %d heads) W%sA%d on 2 images %dx%d, LLM %d x (D %d, FFN %d, "
           "%d/%d heads) vocab %lld, B=%lld rows x T=%lld tokens; step = forward + backward + AdamW, %d threads\n",
           size, c.vision.num_hidden_layers, c.vision.hidden_size, c.vision.intermediate_size,
           c.vision.num_attention_heads, c.vision.weight_bits == 1 ? "1.58" : "32", c.vision.act_bits,
           c.vision.image_size, c.vision.image_size, c.text.num_hidden_layers, c.text.hidden_size,
           c.text.intermediate_size, c.text.num_attention_heads, c.text.num_key_value_heads,
           (long long)c.text.vocab_size, (long long)mb.B, (long long)mb.T, o->b.threads);
    fflush(stdout);
    bv_model m;
    bv_model_spec spec = {.config = tiny ? "tiny" : "bench train mid", .cfg = &c, .purpose = BV_MODEL_TRAIN,
                          .seed = 1, .reserve_bytes = act};
    bv_adamw opt = {0};
    bv_adamw_cfg oc;
    bv_adamw_cfg_default(&oc);
    bv_status st = bv_model_build(&m, &spec);
    if (!st) st = bv_vla_batch_check(&m.vla, &mb.b, BV_VLA_MODE_ACTION, "bench batch");
    if (!st) st = bv_adamw_init(&opt, &m.params, &oc);
    if (st) {
        fprintf(stderr, "bitvla bench train: %s\n", bv_error_msg());
        bv_model_free(&m); /* harmless on the zeroed model of a failed build */
        bv_adamw_free(&opt);
        bv_bench_batch_free(&mb);
        return 1;
    }
    bv_graph g;
    bv_graph_init(&g, (size_t)act);
    double t0 = bv_time_now();
    step_times w = train_step(&g, &m, &opt, &mb.b);
    printf("  warm-up step (arena, weight quantization): %.1f ms\n", (bv_time_now() - t0) * 1e3);
    fflush(stdout);
    double ts[MAX_REPS], tot[4] = {0};
    double u0, s0, u1, s1;
    cpu_times(&u0, &s0);
    bv_prof_reset();
    bv_prof_enable(true);
    for (int r = 0; r < reps; r++) {
        w = train_step(&g, &m, &opt, &mb.b);
        ts[r] = w.step;
        tot[0] += w.fwd, tot[1] += w.bwd, tot[2] += w.opt, tot[3] += w.step;
    }
    bv_prof_enable(false);
    cpu_times(&u1, &s1);
    const double rss = bv_bench_peak_rss();
    double best = ts[0];
    for (int r = 1; r < reps; r++) best = ts[r] < best ? ts[r] : best;
    const double med = bv_bench_median(ts, reps);
    const double gemm = bv_prof_seconds[BV_PROF_GEMM], quant = bv_prof_seconds[BV_PROF_QUANT];
    const double attn = bv_prof_seconds[BV_PROF_ATTN], other = tot[3] - gemm - quant - attn - tot[2];
    const double model_b = bv_model_bytes(&m), moments_b = 8.0 * (double)m.params.numel_trainable;
    const double hw = (double)bv_arena_high_water(&g.arena);
    const size_t nparams = m.params.numel_total;
    printf("train %s: %.1f ms per step (median of %d; best %.1f ms): forward %.1f, backward %.1f, optimizer %.1f ms "
           "(means)\n",
           size, med * 1e3, reps, best * 1e3, tot[0] / reps * 1e3, tot[1] / reps * 1e3, tot[2] / reps * 1e3);
    printf("  shares of the step: gemm %.1f%%, quantization %.1f%%, attention %.1f%%, optimizer %.1f%%, other %.1f%%\n",
           100 * gemm / tot[3], 100 * quant / tot[3], 100 * attn / tot[3], 100 * tot[2] / tot[3], 100 * other / tot[3]);
    printf("  CPU time over the timed steps: user %.2f s + system %.2f s in %.2f s of wall time = %.2fx (at most %d "
           "threads; OpenMP's spin-waiting counts as user time)\n",
           u1 - u0, s1 - s0, tot[3], (u1 - u0 + s1 - s0) / tot[3], o->b.threads);
    printf("  peak RSS %.3f GiB; planned: model %.3f GiB (weights, gradients, BitLinear caches) + AdamW %.3f GiB + "
           "activations %.3f GiB (arena high-water %.3f GiB); %zu parameters\n",
           rss / 1073741824.0, model_b / 1073741824.0, moments_b / 1073741824.0, act / 1073741824.0, hw / 1073741824.0,
           nparams);
    fflush(stdout);
    bv_graph_free(&g);
    bv_adamw_free(&opt);
    bv_model_free(&m);
    double data = NAN;
    int rc = 0;
    if (o->data) {
        if ((st = data_time(&c, B, reps, &data))) {
            fprintf(stderr, "bitvla bench train: %s\n", bv_error_msg());
            rc = 1;
        } else {
            printf("  data loading (loader on the calling thread: JPEG decode, augmentation, prompt): %.2f ms per batch "
                   "= %.1f%% of a step that loaded its batch itself\n",
                   data * 1e3, 100 * data / (data + med));
        }
    }
    fflush(stdout);
    if (o->b.json) {
        bv_bench_text js = {0};
        bv_bench_text_printf(
            &js,
            "{\"bench\": \"train\", \"size\": \"%s\", \"threads\": %d, \"reps\": %d, \"batch\": %lld, \"tokens\": %lld, "
            "\"vocab\": %lld, \"params\": %zu, \"step_ms_median\": %.3f, \"step_ms_best\": %.3f, \"step_ms_mean\": %.3f, "
            "\"forward_ms\": %.3f, "
            "\"backward_ms\": %.3f, \"optimizer_ms\": %.3f, \"gemm_ms\": %.3f, \"quant_ms\": %.3f, \"attention_ms\": "
            "%.3f, \"other_ms\": %.3f, \"data_ms\": %.3f, \"peak_rss_bytes\": %.0f, \"planned_bytes\": %.0f, "
            "\"arena_high_water_bytes\": %.0f, \"cpu_user_s\": %.3f, \"cpu_sys_s\": %.3f}\n",
            size, o->b.threads, reps, (long long)mb.B, (long long)mb.T, (long long)c.text.vocab_size,
            nparams, med * 1e3, best * 1e3, tot[3] / reps * 1e3, tot[0] / reps * 1e3,
            tot[1] / reps * 1e3, tot[2] / reps * 1e3, gemm / reps * 1e3, quant / reps * 1e3, attn / reps * 1e3,
            other / reps * 1e3, isnan(data) ? -1.0 : data * 1e3, rss, model_b + moments_b + act, hw, u1 - u0, s1 - s0);
        if (bv_bench_json_append("train", o->b.json, &js)) rc = 1;
        bv_bench_text_free(&js);
    }
    bv_bench_batch_free(&mb);
    return rc;
}

int bv_bench_train(int argc, char **argv) {
    tb_opts o = {.size = "all", .text = 40, .vocab = 1024, .data = true};
    char *rest[64];
    int nrest = 0;
    bool reps_given = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long x;
        if (i > 0 && !strcmp(a, "--size")) {
            if (!v || (strcmp(v, "tiny") && strcmp(v, "mid") && strcmp(v, "all"))) {
                fprintf(stderr, "bitvla bench train: --size expects tiny, mid or all, got '%s'\n", v ? v : "(nothing)");
                return 2;
            }
            o.size = argv[++i];
        } else if (i > 0 && (!strcmp(a, "--batch") || !strcmp(a, "--text") || !strcmp(a, "--vocab"))) {
            const bool vocab = !strcmp(a, "--vocab");
            if (bv_parse_int(a, v, vocab ? 512 : 1, vocab ? 1 << 20 : 4096, &x)) {
                fprintf(stderr, "bitvla bench train: %s\n", bv_error_msg());
                return 2;
            }
            *(!strcmp(a, "--batch") ? &o.batch : !strcmp(a, "--text") ? &o.text : &o.vocab) = (int)x;
            i++;
        } else if (i > 0 && !strcmp(a, "--no-data")) {
            o.data = false;
        } else if (i == 0 || !strcmp(a, "--reps") || !strcmp(a, "--threads") || !strcmp(a, "--json")) {
            if (nrest + 2 > (int)BV_ARRAY_LEN(rest)) {
                fprintf(stderr, "bitvla bench train: too many arguments\n");
                return 2;
            }
            if (!strcmp(a, "--reps")) reps_given = true;
            rest[nrest++] = argv[i];
            if (i > 0 && v) rest[nrest++] = argv[++i]; /* the value: bv_bench_parse checks it */
        } else {
            fprintf(stderr,
                    "bitvla bench train: unknown option '%s' (expected --size tiny|mid|all, --batch B, --text N, "
                    "--vocab V, --no-data, --reps N, --threads N, --json FILE)\n",
                    a);
            return 2;
        }
    }
    if (bv_bench_parse(nrest, rest, "train", &o.b) != 0) return 2;
    if (reps_given && o.b.reps > MAX_REPS) {
        fprintf(stderr, "bitvla bench train: --reps %d is more than the %d this benchmark keeps\n", o.b.reps, MAX_REPS);
        return 2;
    }
    o.reps = reps_given ? o.b.reps : 0;
    setenv("BV_PROGRESS", "0", 1);
    int rc = 0;
    if (!strcmp(o.size, "tiny") || !strcmp(o.size, "all")) rc = bench_size("tiny", &o);
    if (rc == 0 && (!strcmp(o.size, "mid") || !strcmp(o.size, "all"))) rc = bench_size("mid", &o);
    return rc;
}
