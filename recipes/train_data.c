/* train_data.c - making a recipe's data when it is missing (bv_train_prepare_data, recipes/train.h):
 * the built-in tabletop task's demonstrations, converted to shards, and a tokenizer for them. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/convert.h"
#include "data/synth.h"
#include "data/synth_env.h"
#include "recipes/train.h"
#include "src/atomic_file.h"
#include "src/tokenizer.h"

static bool exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static bool is_converted(const char *dir) {
    char p[4096];
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    return exists(p);
}

/* A converted directory this recipe made from its synth dataset `rlds_dir` earlier, with another
 * episode count (the recipe changed since): it is remade. Converted data from anywhere else is
 * never replaced. */
static bool is_stale_synth(const char *dir, const char *rlds_dir, int episodes) {
    char p[4096];
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    json_t *m = json_load_file(p, 0, NULL);
    if (!m) return false;
    const char *src = json_string_value(json_object_get(json_object_get(m, "source"), "path"));
    json_t *n = json_object_get(m, "num_episodes");
    bool stale = src && !strcmp(src, rlds_dir) && json_is_integer(n) && json_integer_value(n) != episodes;
    json_decref(m);
    return stale;
}

/* synth `episodes` demonstrations with `seed` into rlds_dir, then convert them into shards_dir */
static bv_status make_shards(const bv_recipe *r, const char *rlds_dir, const char *shards_dir, int episodes,
                             uint64_t seed, FILE *log) {
    bv_status st;
    bv_synth_opts so;
    bv_synth_opts_default(&so);
    so.episodes = episodes;
    so.seed = seed;
    so.image_size = r->data.synth_opts.image_size;
    so.tasks = r->data.synth_opts.tasks;
    so.unique_colour = r->data.synth_opts.unique_colour;
    so.quiet = log == NULL;
    so.force = true; /* a dataset left by an interrupted preparation is redone */
    if (log) fprintf(log, "bitvla train: writing %d demonstrations of the built-in task to %s\n", episodes, rlds_dir);
    bv_synth_report rep;
    if ((st = bv_synth_write_rlds(rlds_dir, &so, &rep))) return st;
    if (log) fprintf(log, "bitvla train: converting %s into shards %s\n", rlds_dir, shards_dir);
    bv_schema schema;
    if ((st = bv_schema_load(&schema, "libero"))) return st;
    bv_convert_opts co = {.out_dir = shards_dir, .images = -1, .force = true};
    st = bv_convert_rlds(rlds_dir, &schema, &co);
    bv_schema_free(&schema);
    return st;
}

/* a byte-level BPE tokenizer with BitVLA's tokens, trained on the prompts of every task */
static bv_status make_tokenizer(const bv_recipe *r, FILE *log) {
    size_t cap = 1 << 16, n = 0;
    char *text = bv_xmalloc(cap);
    text[0] = 0;
    for (int rep = 0; rep < 2; rep++)
        for (int t = 0; t < bv_synth_num_tasks(); t++) {
            char ins[160], user[256];
            bv_synth_task_instruction(bv_synth_task_get(t), ins, sizeof ins);
            snprintf(user, sizeof user, "What action should the robot take to %s?", ins);
            bv_tok_msg m = {"user", user};
            char *chat = bv_tok_chat_render(&m, 1, 1);
            size_t k = strlen(chat);
            if (n + k + 2 > cap) {
                cap = 2 * (n + k + 2);
                text = bv_xrealloc(text, cap);
            }
            memcpy(text + n, chat, k);
            n += k;
            text[n++] = '\n';
            text[n] = 0;
            free(chat);
        }
    bv_tok_train_opts to = {.vocab_size = r->data.synth_opts.tokenizer_vocab, .min_frequency = 2, .bitvla = 1};
    bv_tok *tok = NULL;
    bv_status st = bv_tok_train(&tok, text, n, &to);
    free(text);
    if (st) return bv_error_prefix(st, "training a tokenizer for %s", r->tokenizer);
    char *dir = bv_xstrdup(r->tokenizer);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        st = bv_atomic_dir_make(dir);
    }
    free(dir);
    if (!st) st = bv_tok_save(tok, r->tokenizer);
    if (!st && log)
        fprintf(log, "bitvla train: trained a %d-token tokenizer on the task's prompts: %s\n", bv_tok_vocab_size(tok),
                r->tokenizer);
    bv_tok_free(tok);
    return st;
}

bv_status bv_train_prepare_data(const bv_recipe *r, FILE *log) {
    bv_status st = BV_OK;
    char base[4096];
    if (r->data.synth_opts.rlds)
        snprintf(base, sizeof base, "%s", r->data.synth_opts.rlds);
    else
        snprintf(base, sizeof base, "%s.rlds", r->data.shards);
    char tdir[4200], vdir[4200];
    snprintf(tdir, sizeof tdir, "%s/train", base);
    snprintf(vdir, sizeof vdir, "%s/val", base);
    bool need_train = !is_converted(r->data.shards) ||
                      (r->data.synth && is_stale_synth(r->data.shards, tdir, r->data.synth_opts.episodes));
    bool need_val = r->data.val_shards &&
                    (!is_converted(r->data.val_shards) ||
                     (r->data.synth && is_stale_synth(r->data.val_shards, vdir, r->data.synth_opts.val_episodes)));
    bool need_tok = !exists(r->tokenizer);
    if (!need_train && !need_val && !need_tok) return BV_OK;
    if (!r->data.synth) {
        if (need_train)
            return bv_error_set(BV_ERR_IO, "%s: 'data.shards' %s is not a converted dataset (no manifest.json): convert "
                                "one with 'bitvla convert', or give the recipe a 'data.synth' section",
                                r->source, r->data.shards);
        if (need_val)
            return bv_error_set(BV_ERR_IO, "%s: 'data.val_shards' %s is not a converted dataset (no manifest.json)",
                                r->source, r->data.val_shards);
        return bv_error_set(BV_ERR_IO, "%s: 'tokenizer' %s does not exist", r->source, r->tokenizer);
    }
    if (need_train)
        st = make_shards(r, tdir, r->data.shards, r->data.synth_opts.episodes, r->data.synth_opts.seed, log);
    if (!st && need_val) {
        /* held-out episodes: scenes from another seed */
        st = make_shards(r, vdir, r->data.val_shards, r->data.synth_opts.val_episodes,
                         r->data.synth_opts.seed + 0x9e3779b97f4a7c15ull, log);
    }
    if (!st && need_tok) {
        if (r->data.synth_opts.tokenizer_vocab <= 0)
            return bv_error_set(BV_ERR_IO, "%s: 'tokenizer' %s does not exist (and 'data.synth.tokenizer_vocab' is 0)",
                                r->source, r->tokenizer);
        st = make_tokenizer(r, log);
    }
    if (st) st = bv_error_prefix(st, "preparing the data of %s", r->source);
    return st;
}
