/* recipes/recipe.c - reading, checking and writing training recipes (recipes/recipe.h).
 *
 * One table, k_keys, lists every key path of the file with its type, its field in bv_recipe, its
 * range and its default (as JSON text). The same table drives bv_recipe_defaults, the parser
 * (which key paths exist, which are required, which values are allowed), the `--set` overrides
 * (which key paths may be set) and bv_recipe_to_json (which keys are written, in which order).
 * The groups of optimizer.groups have a small table of their own (k_group_keys) read the same way.
 */
#include "recipes/recipe.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "data/synth_env.h"

/* ---- the schema ---- */

typedef enum {
    K_STR,      /* non-empty string */
    K_STR_NULL, /* non-empty string or null (NULL) */
    K_BOOL,
    K_INT,       /* int */
    K_I64,       /* int64_t */
    K_U64,       /* uint64_t (seeds; JSON integers reach 2^63 - 1) */
    K_REAL,      /* double */
    K_REAL_NULL, /* double or null (stored as -1) */
    K_LIST,      /* array of non-empty strings: NULL-terminated char ** */
    K_LIST_NULL, /* the same or null (NULL) */
    K_LR_KIND,   /* bv_lr_kind by name */
    K_BETAS,     /* [beta1, beta2] (optimizer.beta1/beta2) */
    K_SYNTH,     /* object (data.synth = true, keys below) or null */
    K_GROUPS,    /* array of group objects (k_group_keys) */
} key_kind;

enum {
    F_REQ = 1,      /* required */
    F_LO_OPEN = 2,  /* real range open at lo */
    F_HI_OPEN = 4,  /* real range open at hi */
    F_NONEMPTY = 8, /* list: at least one element */
};

typedef struct {
    const char *path;
    key_kind kind;
    size_t off; /* of the field in bv_recipe (k_keys) or bv_recipe_group (k_group_keys) */
    unsigned flags;
    int64_t ilo, ihi; /* integer kinds */
    double lo, hi;    /* real kinds (hi INFINITY: no upper bound) */
    const char *def;  /* default as JSON text; NULL: required, or resolved in code */
} key_spec;

#define MAX_STEPS 1000000000000LL /* steps and every step count: 1e12 */
#define MAX_LIST 4096             /* elements of a string list */
#define R(f) offsetof(bv_recipe, f)
#define G(f) offsetof(bv_recipe_group, f)

static const key_spec k_keys[] = {
    {"name", K_STR, R(name), 0, 0, 0, 0, 0, NULL}, /* default: the file name without .json */
    {"model.config", K_STR, R(model.config), F_REQ, 0, 0, 0, 0, NULL},
    {"model.init_from", K_STR_NULL, R(model.init_from), 0, 0, 0, 0, 0, "null"},
    {"model.allow_missing", K_BOOL, R(model.allow_missing), 0, 0, 0, 0, 0, "false"},
    {"model.train", K_LIST_NULL, R(model.train), F_NONEMPTY, 0, 0, 0, 0, "null"},
    {"model.freeze", K_LIST_NULL, R(model.freeze), 0, 0, 0, 0, 0, "null"},
    {"model.seed", K_U64, R(model.seed), 0, 0, INT64_MAX, 0, 0, "0"},
    {"tokenizer", K_STR, R(tokenizer), F_REQ, 0, 0, 0, 0, NULL},
    {"data.shards", K_STR, R(data.shards), F_REQ, 0, 0, 0, 0, NULL},
    {"data.val_shards", K_STR_NULL, R(data.val_shards), 0, 0, 0, 0, 0, "null"},
    {"data.dataset_name", K_STR_NULL, R(data.dataset_name), 0, 0, 0, 0, 0, "null"},
    {"data.image_size", K_INT, R(data.image_size), 0, 16, 4096, 0, 0, "224"},
    {"data.n_images", K_INT, R(data.n_images), 0, 1, 2, 0, 0, "2"},
    {"data.augment", K_BOOL, R(data.augment), 0, 0, 0, 0, 0, "true"},
    {"data.threads", K_INT, R(data.threads), 0, 0, 256, 0, 0, "2"},
    {"data.prefetch", K_INT, R(data.prefetch), 0, 0, 1024, 0, 0, "0"},
    {"data.seed", K_U64, R(data.seed), 0, 0, INT64_MAX, 0, 0, "0"},
    {"data.synth", K_SYNTH, R(data.synth), 0, 0, 0, 0, 0, "null"},
    {"data.synth.episodes", K_INT, R(data.synth_opts.episodes), 0, 1, 10000000, 0, 0, "64"},
    {"data.synth.val_episodes", K_INT, R(data.synth_opts.val_episodes), 0, 0, 10000000, 0, 0, "8"},
    {"data.synth.image_size", K_INT, R(data.synth_opts.image_size), 0, 16, 1024, 0, 0, "224"},
    {"data.synth.tasks", K_INT, R(data.synth_opts.tasks), 0, 0, 1024, 0, 0, "0"}, /* <= tasks: check_joint */
    {"data.synth.unique_colour", K_BOOL, R(data.synth_opts.unique_colour), 0, 0, 0, 0, 0, "false"},
    {"data.synth.seed", K_U64, R(data.synth_opts.seed), 0, 0, INT64_MAX, 0, 0, "1"},
    {"data.synth.rlds", K_STR_NULL, R(data.synth_opts.rlds), 0, 0, 0, 0, 0, "null"},
    {"data.synth.tokenizer_vocab", K_INT, R(data.synth_opts.tokenizer_vocab), 0, 0, 1 << 20, 0, 0, "500"},
    {"optimizer.lr", K_REAL, R(optimizer.lr), F_LO_OPEN, 0, 0, 0, INFINITY, "1e-4"},
    {"optimizer.betas", K_BETAS, R(optimizer.beta1), F_HI_OPEN, 0, 0, 0, 1, "[0.9, 0.999]"},
    {"optimizer.eps", K_REAL, R(optimizer.eps), F_LO_OPEN, 0, 0, 0, INFINITY, "1e-8"},
    {"optimizer.weight_decay", K_REAL, R(optimizer.weight_decay), 0, 0, 0, 0, INFINITY, "0.01"},
    {"optimizer.no_decay", K_LIST, R(optimizer.no_decay), 0, 0, 0, 0, 0, "[\"norm\", \"bias\", \"embed\"]"},
    {"optimizer.clip_grad_norm", K_REAL, R(optimizer.clip_grad_norm), 0, 0, 0, 0, INFINITY, "0"},
    {"optimizer.groups", K_GROUPS, R(optimizer.groups), 0, 0, 0, 0, 0, "[]"},
    {"schedule.type", K_LR_KIND, R(schedule.type), 0, 0, 0, 0, 0, "\"constant\""},
    {"schedule.warmup_steps", K_I64, R(schedule.warmup_steps), 0, 0, MAX_STEPS, 0, 0, "0"}, /* <= steps */
    {"schedule.min_lr_ratio", K_REAL, R(schedule.min_lr_ratio), 0, 0, 0, 0, 1, "0"},
    {"schedule.power", K_REAL, R(schedule.power), F_LO_OPEN, 0, 0, 0, INFINITY, "1.0"},
    {"schedule.weight_decay_off_step", K_I64, R(schedule.weight_decay_off_step), 0, -1, MAX_STEPS, 0, 0, "-1"},
    {"steps", K_I64, R(steps), 0, 1, MAX_STEPS, 0, 0, "10001"},
    {"micro_batch", K_INT, R(micro_batch), 0, 1, 65536, 0, 0, "2"},
    {"accumulation", K_INT, R(accumulation), 0, 1, 1 << 20, 0, 0, "8"},
    {"global_batch", K_INT, R(global_batch), 0, 0, 1 << 30, 0, 0, "0"},
    {"seed", K_U64, R(seed), 0, 0, INT64_MAX, 0, 0, "7"},
    {"validation.every", K_I64, R(validation.every), 0, 0, MAX_STEPS, 0, 0, "0"},
    {"validation.batches", K_INT, R(validation.batches), 0, 1, 1 << 20, 0, 0, "8"},
    {"checkpoint.every", K_I64, R(checkpoint.every), 0, 0, MAX_STEPS, 0, 0, "0"},
    {"checkpoint.keep", K_INT, R(checkpoint.keep), 0, 1, 1000000, 0, 0, "3"},
    {"logging.every", K_I64, R(logging.every), 0, 1, MAX_STEPS, 0, 0, "1"},
    {"logging.tensorboard", K_BOOL, R(logging.tensorboard), 0, 0, 0, 0, 0, "true"},
    {"guard.max_nonfinite", K_INT, R(guard.max_nonfinite), 0, 0, 1 << 30, 0, 0, "5"},
    {"distributed.zero", K_INT, R(distributed.zero), 0, 0, 1, 0, 0, "0"},
    {"distributed.bucket_mb", K_REAL, R(distributed.bucket_mb), F_LO_OPEN, 0, 0, 0, 65536, "25"},
    {"distributed.exact", K_BOOL, R(distributed.exact), 0, 0, 0, 0, 0, "true"},
};

/* the keys of one element of optimizer.groups; lr defaults to optimizer.lr (set in code) */
static const key_spec k_group_keys[] = {
    {"name", K_STR, G(name), F_REQ, 0, 0, 0, 0, NULL},
    {"prefixes", K_LIST, G(prefixes), F_REQ | F_NONEMPTY, 0, 0, 0, 0, NULL},
    {"lr", K_REAL, G(lr), F_LO_OPEN, 0, 0, 0, INFINITY, NULL},
    {"weight_decay", K_REAL_NULL, G(weight_decay), 0, 0, 0, 0, INFINITY, "null"},
};

static const char *const k_lr_kinds[] = {
    [BV_LR_CONSTANT] = "constant", [BV_LR_COSINE] = "cosine", [BV_LR_POLYNOMIAL] = "polynomial"};

static bool is_list(key_kind k) { return k == K_LIST || k == K_LIST_NULL || k == K_BETAS; }

static const key_spec *find_key(const key_spec *t, size_t n, const char *path) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t[i].path, path)) return &t[i];
    return NULL;
}

/* path names an object that holds keys of the table ("model", "data", "data.synth") */
static bool is_section(const char *path) {
    size_t n = strlen(path);
    for (size_t i = 0; i < BV_ARRAY_LEN(k_keys); i++)
        if (!strncmp(k_keys[i].path, path, n) && k_keys[i].path[n] == '.') return true;
    return false;
}

const char *bv_recipe_key(int i) {
    static const char *const group_paths[] = {"optimizer.groups[].name", "optimizer.groups[].prefixes",
                                              "optimizer.groups[].lr", "optimizer.groups[].weight_decay"};
    _Static_assert(BV_ARRAY_LEN(group_paths) == BV_ARRAY_LEN(k_group_keys), "group_paths follows k_group_keys");
    if (i < 0) return NULL;
    if ((size_t)i < BV_ARRAY_LEN(k_keys)) return k_keys[i].path;
    i -= (int)BV_ARRAY_LEN(k_keys);
    return (size_t)i < BV_ARRAY_LEN(group_paths) ? group_paths[i] : NULL;
}

/* ---- reading values ---- */

typedef struct {
    const char *label;
    bv_recipe *r;
} pctx;

/* "a number in [0, 1)" and the like, into buf */
static const char *describe(const key_spec *s, char *buf, size_t n) {
    switch (s->kind) {
    case K_STR: return "a non-empty string";
    case K_STR_NULL: return "a non-empty string or null";
    case K_BOOL: return "true or false";
    case K_LIST:
        return s->flags & F_NONEMPTY ? "a non-empty array of non-empty strings" : "an array of non-empty strings";
    case K_LIST_NULL:
        return s->flags & F_NONEMPTY ? "a non-empty array of non-empty strings, or null"
                                     : "an array of non-empty strings, or null";
    case K_LR_KIND: return "one of \"constant\", \"cosine\", \"polynomial\"";
    case K_BETAS: return "an array of two numbers [beta1, beta2]";
    case K_SYNTH: return "an object or null";
    case K_GROUPS: snprintf(buf, n, "an array of at most %d group objects", BV_RECIPE_MAX_GROUPS); return buf;
    case K_INT:
    case K_I64:
    case K_U64: snprintf(buf, n, "an integer in [%lld, %lld]", (long long)s->ilo, (long long)s->ihi); return buf;
    case K_REAL:
    case K_REAL_NULL: {
        const char *null = s->kind == K_REAL_NULL ? " or null" : "";
        if (isinf(s->hi))
            snprintf(buf, n, "a number %s %g%s", s->flags & F_LO_OPEN ? ">" : ">=", s->lo, null);
        else
            snprintf(buf, n, "a number in %c%g, %g%c%s", s->flags & F_LO_OPEN ? '(' : '[', s->lo, s->hi,
                     s->flags & F_HI_OPEN ? ')' : ']', null);
        return buf;
    }
    }
    return "?";
}

/* "'PATH' must be DESCRIPTION, got VALUE" (the value as compact JSON, long ones cut) */
static bv_status bad_value(const pctx *p, const char *path, const char *what, json_t *v) {
    /* 15 digits: 0.9, not 0.90000000000000002 */
    char *txt = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
    size_t n = txt ? strlen(txt) : 0;
    bv_status st = bv_error_set(BV_ERR_FORMAT, "%s: '%s' must be %s, got %.*s%s", p->label, path, what,
                                n > 80 ? 80 : (int)n, txt ? txt : "?", n > 80 ? "..." : "");
    free(txt);
    return st;
}

static bool real_in(const key_spec *s, double x) {
    bool lo_ok = s->flags & F_LO_OPEN ? x > s->lo : x >= s->lo;
    bool hi_ok = isinf(s->hi) ? isfinite(x) : (s->flags & F_HI_OPEN ? x < s->hi : x <= s->hi);
    return lo_ok && hi_ok;
}

/* a JSON integer, or a real with an integral value (1e4) */
static bool get_integer(json_t *v, int64_t *out) {
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 9e15) {
            *out = (int64_t)d;
            return true;
        }
    }
    return false;
}

static void free_list(char **l) {
    if (!l) return;
    for (char **p = l; *p; p++) free(*p);
    free(l);
}

/* a NULL-terminated copy of an array of non-empty strings into *out (replacing what was there) */
static bv_status get_list(const pctx *p, const key_spec *s, const char *path, json_t *v, char ***out) {
    char what[128];
    size_t n = json_array_size(v);
    if (!json_is_array(v) || n > MAX_LIST || (n == 0 && (s->flags & F_NONEMPTY)))
        return bad_value(p, path, describe(s, what, sizeof what), v);
    char **l = bv_xcalloc(n + 1, sizeof *l);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e) || json_string_length(e) == 0 || strlen(json_string_value(e)) != json_string_length(e)) {
            free_list(l);
            char epath[256];
            snprintf(epath, sizeof epath, "%s[%zu]", path, i);
            return bad_value(p, epath, "a non-empty string", e);
        }
        l[i] = bv_xstrdup(json_string_value(e));
    }
    free_list(*out);
    *out = l;
    return BV_OK;
}

static bv_status get_groups(const pctx *p, const key_spec *s, json_t *v);

/* Read v (the value at `path`) into the field of s in base (a bv_recipe or a bv_recipe_group). */
static bv_status set_value(const pctx *p, const key_spec *s, const char *path, json_t *v, void *base) {
    char what[128];
    void *f = (char *)base + s->off;
    int64_t i = 0;
    switch (s->kind) {
    case K_STR:
    case K_STR_NULL:
        if (s->kind == K_STR_NULL && json_is_null(v)) {
            free(*(char **)f);
            *(char **)f = NULL;
            return BV_OK;
        }
        /* strings with a NUL inside (\u0000) would be cut: refused */
        if (!json_is_string(v) || json_string_length(v) == 0 || strlen(json_string_value(v)) != json_string_length(v))
            return bad_value(p, path, describe(s, what, sizeof what), v);
        free(*(char **)f);
        *(char **)f = bv_xstrdup(json_string_value(v));
        return BV_OK;
    case K_BOOL:
        if (!json_is_boolean(v)) return bad_value(p, path, describe(s, what, sizeof what), v);
        *(bool *)f = json_is_true(v);
        return BV_OK;
    case K_INT:
    case K_I64:
    case K_U64:
        if (!get_integer(v, &i) || i < s->ilo || i > s->ihi)
            return bad_value(p, path, describe(s, what, sizeof what), v);
        if (s->kind == K_INT)
            *(int *)f = (int)i;
        else if (s->kind == K_I64)
            *(int64_t *)f = i;
        else
            *(uint64_t *)f = (uint64_t)i;
        return BV_OK;
    case K_REAL:
    case K_REAL_NULL:
        if (s->kind == K_REAL_NULL && json_is_null(v)) {
            *(double *)f = -1;
            return BV_OK;
        }
        if (!json_is_number(v) || !real_in(s, json_number_value(v)))
            return bad_value(p, path, describe(s, what, sizeof what), v);
        *(double *)f = json_number_value(v);
        return BV_OK;
    case K_LIST_NULL:
        if (json_is_null(v)) {
            free_list(*(char ***)f);
            *(char ***)f = NULL;
            return BV_OK;
        }
        return get_list(p, s, path, v, (char ***)f);
    case K_LIST: return get_list(p, s, path, v, (char ***)f);
    case K_LR_KIND: {
        const char *name = json_string_value(v);
        for (size_t k = 0; name && k < BV_ARRAY_LEN(k_lr_kinds); k++)
            if (!strcmp(name, k_lr_kinds[k])) {
                *(bv_lr_kind *)f = (bv_lr_kind)k;
                return BV_OK;
            }
        return bad_value(p, path, describe(s, what, sizeof what), v);
    }
    case K_BETAS: {
        if (!json_is_array(v) || json_array_size(v) != 2) return bad_value(p, path, describe(s, what, sizeof what), v);
        double b[2];
        for (size_t k = 0; k < 2; k++) {
            json_t *e = json_array_get(v, k);
            char epath[64];
            snprintf(epath, sizeof epath, "%s[%zu]", path, k);
            if (!json_is_number(e) || !real_in(s, json_number_value(e)))
                return bad_value(
                    p, epath, describe(&(key_spec){.kind = K_REAL, .flags = s->flags, .hi = s->hi}, what, sizeof what),
                    e);
            b[k] = json_number_value(e);
        }
        bv_recipe *r = base;
        r->optimizer.beta1 = b[0];
        r->optimizer.beta2 = b[1];
        return BV_OK;
    }
    case K_SYNTH:
        if (!json_is_object(v) && !json_is_null(v)) return bad_value(p, path, describe(s, what, sizeof what), v);
        *(bool *)f = json_is_object(v);
        return BV_OK;
    case K_GROUPS: return get_groups(p, s, v);
    }
    return BV_OK;
}

/* apply the default of s (its JSON text) to base */
static void set_default(const pctx *p, const key_spec *s, void *base) {
    json_error_t err;
    json_t *v = json_loads(s->def, JSON_DECODE_ANY, &err);
    BV_ASSERT(v, "recipe schema: default of '%s' is not JSON: %s", s->path, s->def);
    bv_status st = set_value(p, s, s->path, v, base);
    BV_ASSERT(st == BV_OK, "recipe schema: default of '%s' (%s) is out of its range: %s", s->path, s->def,
              bv_error_msg());
    json_decref(v);
}

static bool allocates(key_kind k) { return k == K_STR || k == K_STR_NULL || k == K_LIST || k == K_LIST_NULL; }

static bv_status get_groups(const pctx *p, const key_spec *s, json_t *v) {
    char what[128];
    bv_recipe *r = p->r;
    if (!json_is_array(v) || json_array_size(v) > BV_RECIPE_MAX_GROUPS)
        return bad_value(p, s->path, describe(s, what, sizeof what), v);
    for (size_t gi = 0; gi < json_array_size(v); gi++) {
        json_t *o = json_array_get(v, gi);
        char gpath[64], kpath[320];
        snprintf(gpath, sizeof gpath, "%s[%zu]", s->path, gi);
        if (!json_is_object(o)) return bad_value(p, gpath, "an object", o);
        bv_recipe_group *g = &r->optimizer.groups[r->optimizer.n_groups++];
        *g = (bv_recipe_group){.lr = r->optimizer.lr, .weight_decay = -1};
        const char *key;
        json_t *val;
        json_object_foreach(o, key, val) {
            if (!find_key(k_group_keys, BV_ARRAY_LEN(k_group_keys), key))
                return bv_error_set(BV_ERR_FORMAT, "%s: unknown key '%s.%.100s' (docs/recipes.md lists the keys)",
                                    p->label, gpath, key);
        }
        for (size_t k = 0; k < BV_ARRAY_LEN(k_group_keys); k++) {
            const key_spec *gs = &k_group_keys[k];
            snprintf(kpath, sizeof kpath, "%s.%s", gpath, gs->path);
            json_t *e = json_object_get(o, gs->path);
            if (!e && (gs->flags & F_REQ))
                return bv_error_set(BV_ERR_FORMAT, "%s: missing required key '%s'", p->label, kpath);
            if (e) BV_TRY(set_value(p, gs, kpath, e, g));
        }
        for (size_t h = 0; h + 1 < (size_t)r->optimizer.n_groups; h++)
            if (!strcmp(r->optimizer.groups[h].name, g->name))
                return bv_error_set(BV_ERR_FORMAT, "%s: '%s.name' \"%s\" is the name of %s[%zu] too (names are unique)",
                                    p->label, gpath, g->name, s->path, h);
    }
    return BV_OK;
}

/* ---- parsing ---- */

/* Every key of obj (at `prefix`, "" at the top) must be a key of the table or a section holding
 * some; sections must be objects. */
static bv_status check_keys(const pctx *p, json_t *obj, const char *prefix) {
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        char full[256];
        int n = snprintf(full, sizeof full, "%s%s%s", prefix, *prefix ? "." : "", key);
        /* a key with a '.' in it ("model.config" at the top) is not the nested key it spells */
        bool plain = n < (int)sizeof full && !strchr(key, '.');
        const key_spec *s = plain ? find_key(k_keys, BV_ARRAY_LEN(k_keys), full) : NULL;
        bool section = plain && is_section(full);
        if (!s && !section)
            return bv_error_set(BV_ERR_FORMAT, "%s: unknown key '%s%s%.100s' (docs/recipes.md lists the keys)",
                                p->label, prefix, *prefix ? "." : "", key);
        if (section && !s && !json_is_object(val)) return bad_value(p, full, "an object", val);
        if (section && json_is_object(val)) BV_TRY(check_keys(p, val, full));
    }
    return BV_OK;
}

/* the value at a dotted key path, or NULL when it or an object above it is missing (or null) */
static json_t *get_path(json_t *root, const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = root;
    for (char *seg = buf, *dot; cur; seg = dot + 1) {
        dot = strchr(seg, '.');
        if (dot) *dot = 0;
        cur = json_is_object(cur) ? json_object_get(cur, seg) : NULL;
        if (!dot) break;
    }
    return cur;
}

/* the checks that involve more than one key */
static bv_status check_joint(const pctx *p) {
    const bv_recipe *r = p->r;
    if (r->schedule.warmup_steps > r->steps)
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: 'schedule.warmup_steps' must be an integer in [0, steps = %lld], got %lld", p->label,
                            (long long)r->steps, (long long)r->schedule.warmup_steps);
    if (r->validation.every > 0 && !r->data.val_shards)
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: 'validation.every' is %lld but 'data.val_shards' is null: give the validation shards "
                            "or set validation.every to 0 (off)",
                            p->label, (long long)r->validation.every);
    if (r->data.synth) {
        int v = r->data.synth_opts.tokenizer_vocab, t = r->data.synth_opts.tasks;
        if (v != 0 && v < 256)
            return bv_error_set(BV_ERR_FORMAT,
                                "%s: 'data.synth.tokenizer_vocab' must be 0 (train no tokenizer) or an integer in "
                                "[256, %d] (256 byte tokens and the merges), got %d",
                                p->label, 1 << 20, v);
        if (t > bv_synth_num_tasks())
            return bv_error_set(BV_ERR_FORMAT,
                                "%s: 'data.synth.tasks' must be 0 (all) or an integer in [1, %d] (the built-in "
                                "task's number of tasks), got %d",
                                p->label, bv_synth_num_tasks(), t);
    }
    return BV_OK;
}

/* "dir/x.json" -> "x" */
static char *stem(const char *label) {
    const char *b = strrchr(label, '/');
    b = b ? b + 1 : label;
    size_t n = strlen(b);
    if (n > 5 && !strcmp(b + n - 5, ".json")) n -= 5;
    char *s = bv_xmalloc(n + 1);
    memcpy(s, b, n);
    s[n] = 0;
    return s;
}

static bv_status parse_tree(const pctx *p, json_t *root) {
    bv_recipe *r = p->r;
    BV_TRY(check_keys(p, root, ""));
    for (size_t i = 0; i < BV_ARRAY_LEN(k_keys); i++) {
        const key_spec *s = &k_keys[i];
        json_t *v = get_path(root, s->path);
        if (!v && (s->flags & F_REQ))
            return bv_error_set(BV_ERR_FORMAT, "%s: missing required key '%s'", p->label, s->path);
        if (v)
            BV_TRY(set_value(p, s, s->path, v, r));
        else if (s->def && (allocates(s->kind) || s->kind == K_GROUPS))
            set_default(p, s, r);
    }
    if (!r->name) r->name = stem(p->label);
    return check_joint(p);
}

/* ---- overrides ---- */

/* "a.b[2].c" -> the normalised path "a.b[].c"; false on bad syntax */
static bool normalise_path(const char *path, size_t len, char *norm, size_t cap) {
    size_t o = 0;
    bool want_name = true;
    for (size_t i = 0; i < len;) {
        if (o + 4 >= cap) return false;
        if (want_name) {
            size_t j = i;
            while (j < len && (isalnum((unsigned char)path[j]) || path[j] == '_')) norm[o++] = path[j++];
            if (j == i || o + 4 >= cap) return false;
            i = j;
            want_name = false;
        } else if (path[i] == '.') {
            norm[o++] = path[i++];
            want_name = true;
        } else if (path[i] == '[') {
            size_t j = i + 1;
            while (j < len && isdigit((unsigned char)path[j])) j++;
            if (j == i + 1 || j - i > 7 || j >= len || path[j] != ']') return false;
            norm[o++] = '[';
            norm[o++] = ']';
            i = j + 1;
        } else {
            return false;
        }
    }
    norm[o] = 0;
    return o > 0 && !want_name;
}

/* is the normalised path a key, a section, or an element of a list or of the groups? */
static bool path_allowed(const char *norm) {
    if (find_key(k_keys, BV_ARRAY_LEN(k_keys), norm) || is_section(norm)) return true;
    for (size_t i = 0; i < BV_ARRAY_LEN(k_keys); i++) {
        const key_spec *s = &k_keys[i];
        size_t m = strlen(s->path);
        if (strncmp(norm, s->path, m) || strncmp(norm + m, "[]", 2)) continue;
        const char *rest = norm + m + 2;
        if (is_list(s->kind) || s->kind == K_GROUPS) {
            if (!*rest) return true;
            if (s->kind != K_GROUPS || *rest != '.') continue;
            rest++;
            for (size_t k = 0; k < BV_ARRAY_LEN(k_group_keys); k++) {
                const key_spec *g = &k_group_keys[k];
                size_t gm = strlen(g->path);
                if (!strncmp(rest, g->path, gm) && (!rest[gm] || (is_list(g->kind) && !strcmp(rest + gm, "[]"))))
                    return true;
            }
        }
    }
    return false;
}

/* Set the value at `path` (checked by path_allowed) in root; objects and arrays on the way are
 * made when missing or null. Takes ownership of val. */
static bv_status set_path(const char *label, const char *ov, json_t *root, const char *path, size_t len, json_t *val) {
    json_t *cur = root;
    size_t i = 0;
    while (i < len) {
        char key[128];
        size_t idx = 0, k = 0;
        bool is_index = path[i] == '[';
        if (is_index) {
            for (i++; path[i] != ']'; i++) idx = idx * 10 + (size_t)(path[i] - '0');
            i++;
        } else {
            while (i < len && path[i] != '.' && path[i] != '[' && k + 1 < sizeof key) key[k++] = path[i++];
            key[k] = 0;
        }
        size_t seg_end = i; /* path[0, seg_end) names `next` */
        if (i < len && path[i] == '.') i++;
        bool last = i >= len;
        json_t *next = NULL;
        if (is_index) {
            if (!json_is_array(cur) || idx > json_array_size(cur)) {
                json_decref(val);
                return bv_error_set(BV_ERR_ARG, "%s: --set '%s': index %zu is past the end of an array of %zu", label,
                                    ov, idx, json_array_size(cur));
            }
            next = json_array_get(cur, idx);
        } else {
            next = json_object_get(cur, key);
        }
        if (last) {
            if (!is_index)
                json_object_set_new(cur, key, val);
            else if (next)
                json_array_set_new(cur, idx, val);
            else
                json_array_append_new(cur, val);
            return BV_OK;
        }
        bool want_array = path[i] == '[';
        if (!next || json_is_null(next)) {
            next = want_array ? json_array() : json_object();
            if (!is_index)
                json_object_set_new(cur, key, next);
            else if (idx < json_array_size(cur))
                json_array_set_new(cur, idx, next);
            else
                json_array_append_new(cur, next);
        } else if (want_array ? !json_is_array(next) : !json_is_object(next)) {
            json_decref(val);
            return bv_error_set(BV_ERR_ARG, "%s: --set '%s': '%.*s' is not %s in the recipe", label, ov, (int)seg_end,
                                path, want_array ? "an array" : "an object");
        }
        cur = next;
    }
    json_decref(val);
    return BV_OK;
}

static bv_status apply_override(const char *label, json_t *root, const char *ov) {
    const char *eq = strchr(ov, '=');
    if (!eq || eq == ov)
        return bv_error_set(BV_ERR_ARG, "%s: --set '%s': expected KEY.PATH=VALUE (e.g. optimizer.lr=2e-4)", label, ov);
    size_t len = (size_t)(eq - ov);
    char norm[256];
    if (!normalise_path(ov, len, norm, sizeof norm))
        return bv_error_set(BV_ERR_ARG,
                            "%s: --set '%s': bad key path '%.*s' (names joined by '.', each optionally followed by "
                            "[INDEX], e.g. optimizer.groups[0].lr)",
                            label, ov, (int)len, ov);
    if (!path_allowed(norm))
        return bv_error_set(BV_ERR_ARG, "%s: --set '%s': unknown key '%.*s' (docs/recipes.md lists the keys)", label,
                            ov, (int)len, ov);
    json_error_t err;
    json_t *val = json_loads(eq + 1, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
    if (!val) val = json_string(eq + 1);
    if (!val) return bv_error_set(BV_ERR_ARG, "%s: --set '%s': the value is not valid UTF-8", label, ov);
    return set_path(label, ov, root, ov, len, val);
}

/* ---- public ---- */

void bv_recipe_defaults(bv_recipe *r) {
    memset(r, 0, sizeof *r);
    pctx p = {"<defaults>", r};
    for (size_t i = 0; i < BV_ARRAY_LEN(k_keys); i++)
        if (k_keys[i].def && !allocates(k_keys[i].kind) && k_keys[i].kind != K_GROUPS) set_default(&p, &k_keys[i], r);
}

bv_status bv_recipe_parse(bv_recipe *r, const char *json, size_t len, const char *label, int n_overrides,
                          const char *const *overrides) {
    if (!label) label = "<memory>";
    bv_recipe_defaults(r);
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        memset(r, 0, sizeof *r);
        return bv_error_set(BV_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s", label, err.line, err.column,
                            err.text);
    }
    pctx p = {label, r};
    bv_status st = BV_OK;
    if (!json_is_object(root)) st = bv_error_set(BV_ERR_FORMAT, "%s: the top level must be a JSON object", label);
    for (int i = 0; i < n_overrides && st == BV_OK; i++) st = apply_override(label, root, overrides[i]);
    if (st == BV_OK) st = parse_tree(&p, root);
    json_decref(root);
    if (st == BV_OK)
        r->source = bv_xstrdup(label);
    else
        bv_recipe_free(r);
    return st;
}

bv_status bv_recipe_load(bv_recipe *r, const char *path, int n_overrides, const char *const *overrides) {
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "rb");
    if (!f) return bv_error_set(BV_ERR_IO, "%s: cannot open recipe: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= (16u << 20)) {
                free(buf);
                fclose(f);
                return bv_error_set(BV_ERR_FORMAT, "%s: recipe larger than 16 MiB", path);
            }
            cap = cap ? 2 * cap : 1 << 14;
            buf = bv_xrealloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return bv_error_set(BV_ERR_IO, "%s: read error", path);
    }
    bv_status st = bv_recipe_parse(r, buf, n, path, n_overrides, overrides);
    free(buf);
    return st;
}

static json_t *list_json(char **l) {
    if (!l) return json_null();
    json_t *a = json_array();
    for (; *l; l++) json_array_append_new(a, json_string(*l));
    return a;
}

/* a real; *short_ok stays true while every real written prints exactly with 15 digits */
static json_t *real_json(double x, bool *short_ok) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.15g", x);
    if (strtod(buf, NULL) != x) *short_ok = false;
    return json_real(x);
}

/* the value of s in base as JSON */
static json_t *get_json(const key_spec *s, const void *base, bool *short_ok) {
    const void *f = (const char *)base + s->off;
    switch (s->kind) {
    case K_STR:
    case K_STR_NULL: return *(char *const *)f ? json_string(*(char *const *)f) : json_null();
    case K_BOOL: return json_boolean(*(const bool *)f);
    case K_INT: return json_integer(*(const int *)f);
    case K_I64: return json_integer(*(const int64_t *)f);
    case K_U64: return json_integer((json_int_t) * (const uint64_t *)f);
    case K_REAL: return real_json(*(const double *)f, short_ok);
    case K_REAL_NULL: return *(const double *)f < 0 ? json_null() : real_json(*(const double *)f, short_ok);
    case K_LIST:
    case K_LIST_NULL: return list_json(*(char **const *)f);
    case K_LR_KIND: {
        bv_lr_kind k = *(const bv_lr_kind *)f;
        return json_string((size_t)k < BV_ARRAY_LEN(k_lr_kinds) ? k_lr_kinds[k] : "?");
    }
    case K_BETAS: {
        const bv_recipe *r = base;
        json_t *a = json_array();
        json_array_append_new(a, real_json(r->optimizer.beta1, short_ok));
        json_array_append_new(a, real_json(r->optimizer.beta2, short_ok));
        return a;
    }
    case K_SYNTH: return *(const bool *)f ? json_object() : json_null();
    case K_GROUPS: {
        const bv_recipe *r = base;
        json_t *a = json_array();
        for (int g = 0; g < r->optimizer.n_groups; g++) {
            json_t *o = json_object();
            for (size_t k = 0; k < BV_ARRAY_LEN(k_group_keys); k++)
                json_object_set_new(o, k_group_keys[k].path,
                                    get_json(&k_group_keys[k], &r->optimizer.groups[g], short_ok));
            json_array_append_new(a, o);
        }
        return a;
    }
    }
    return json_null();
}

char *bv_recipe_to_json(const bv_recipe *r) {
    json_t *root = json_object();
    bool short_ok = true;
    for (size_t i = 0; i < BV_ARRAY_LEN(k_keys); i++) {
        const key_spec *s = &k_keys[i];
        json_t *cur = root;
        char buf[256];
        snprintf(buf, sizeof buf, "%s", s->path);
        char *seg = buf;
        for (char *dot; json_is_object(cur) && (dot = strchr(seg, '.')); seg = dot + 1) {
            *dot = 0;
            json_t *next = json_object_get(cur, seg);
            if (!next) json_object_set_new(cur, seg, next = json_object());
            cur = next;
        }
        if (!json_is_object(cur)) continue; /* under data.synth while it is null */
        json_object_set_new(cur, seg, get_json(s, r, &short_ok));
    }
    /* 15 significant digits when they give every number back exactly (0.9 stays 0.9), else 17 */
    char *txt = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(short_ok ? 15 : 17));
    BV_ASSERT(txt, "bv_recipe_to_json: json_dumps failed");
    json_decref(root);
    return txt;
}

void bv_recipe_free(bv_recipe *r) {
    free(r->name);
    free(r->source);
    free(r->model.config);
    free(r->model.init_from);
    free_list(r->model.train);
    free_list(r->model.freeze);
    free(r->tokenizer);
    free(r->data.shards);
    free(r->data.val_shards);
    free(r->data.dataset_name);
    free(r->data.synth_opts.rlds);
    free_list(r->optimizer.no_decay);
    for (int g = 0; g < r->optimizer.n_groups; g++) {
        free(r->optimizer.groups[g].name);
        free_list(r->optimizer.groups[g].prefixes);
    }
    memset(r, 0, sizeof *r);
}
