#include "models/config.h"

#include <jansson.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    bv_act act;
} k_acts[] = {
    {"gelu_pytorch_tanh", BV_ACT_GELU_TANH}, {"gelu_new", BV_ACT_GELU_TANH}, {"gelu_fast", BV_ACT_GELU_TANH},
    {"gelu", BV_ACT_GELU_ERF},               {"relu", BV_ACT_RELU},          {"relu2", BV_ACT_RELU2},
    {"silu", BV_ACT_SILU},                   {"swish", BV_ACT_SILU},
};

const char *bv_act_name(bv_act a) {
    switch (a) {
    case BV_ACT_GELU_TANH: return "gelu_pytorch_tanh";
    case BV_ACT_GELU_ERF: return "gelu";
    case BV_ACT_RELU: return "relu";
    case BV_ACT_RELU2: return "relu2";
    case BV_ACT_SILU: return "silu";
    }
    return "?";
}

void bv_config_defaults(bv_vla_config *c) {
    memset(c, 0, sizeof *c);
    c->vision.num_channels = 3;
    c->vision.layer_norm_eps = 1e-6;
    c->vision.hidden_act = BV_ACT_GELU_TANH;
    c->vision.weight_bits = 32;
    c->vision.act_bits = 32;
    c->text.rope_theta = 500000.0;
    c->text.rms_norm_eps = 1e-5;
    c->text.tie_word_embeddings = false;
    c->text.max_position_embeddings = 4096;
    c->text.hidden_act = BV_ACT_RELU2;
    c->projector_act = BV_ACT_GELU_ERF;
    c->vision_feature_layer = -1;
    c->proprio_token_index = -1; /* default: image_token_index + 1 */
    c->proprio_dim = 8;
    c->action_dim = 7;
    c->num_actions_chunk = 8;
    c->action_head_num_blocks = 2;
}

bv_status bv_config_preset(const char *name, bv_vla_config *c) {
    bv_config_defaults(c);
    if (!strcmp(name, "bitvla-2b")) {
        /* spec section 1: SigLIP-so400m without its last layer, BitNet b1.58 2B4T, released VLA vocab */
        c->vision = (bv_vision_config){1152, 4304, 26, 16, 14, 224, 3, 1e-6, BV_ACT_GELU_TANH, 1, 8};
        c->text = (bv_text_config){2560, 6912, 30, 20, 5, 500000.0, 1e-5, 128268, false, 4096, BV_ACT_RELU2};
        c->image_token_index = 128010;
        c->proprio_token_index = 128011;
    } else if (!strcmp(name, "tiny")) {
        /* a few hundred thousand parameters with every code path of the full model: GQA, both
         * quantized towers, two encoder and decoder layers. Token ids match the tiny tokenizer
         * layout: 500 byte-level BPE tokens + 10 specials, then image, proprio, 256 actions. */
        c->vision = (bv_vision_config){64, 128, 2, 4, 14, 56, 3, 1e-6, BV_ACT_GELU_TANH, 1, 8};
        c->text = (bv_text_config){64, 176, 2, 4, 2, 500000.0, 1e-5, 768, false, 1024, BV_ACT_RELU2};
        c->image_token_index = 510;
        c->proprio_token_index = 511;
    } else {
        return bv_error_set(BV_ERR_ARG, "unknown config preset '%s' (expected bitvla-2b, tiny, or a path to a config.json)",
                            name);
    }
    return bv_config_validate(c, name);
}

/* ---- JSON parsing ---- */

typedef struct {
    const char *label;
    const char *section; /* "" or "vision_config." / "text_config." */
    bool strict;
} pctx;

static bv_status get_int(const pctx *p, json_t *obj, const char *key, bool required, int64_t lo, int64_t hi,
                         int64_t *out) {
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required) return bv_error_set(BV_ERR_FORMAT, "%s: missing required key '%s%s'", p->label, p->section, key);
        return BV_OK;
    }
    if (!json_is_integer(v)) {
        char *txt = json_dumps(v, JSON_ENCODE_ANY);
        bv_status st = bv_error_set(BV_ERR_FORMAT, "%s: '%s%s' must be an integer in [%lld, %lld], got %s", p->label,
                                    p->section, key, (long long)lo, (long long)hi, txt ? txt : "?");
        free(txt);
        return st;
    }
    int64_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return bv_error_set(BV_ERR_FORMAT, "%s: '%s%s' must be in [%lld, %lld], got %lld", p->label, p->section, key,
                            (long long)lo, (long long)hi, (long long)x);
    *out = x;
    return BV_OK;
}

static bv_status get_i32(const pctx *p, json_t *obj, const char *key, bool required, int lo, int hi, int *out) {
    int64_t v = *out;
    bv_status st = get_int(p, obj, key, required, lo, hi, &v);
    *out = (int)v;
    return st;
}

static bv_status get_real(const pctx *p, json_t *obj, const char *key, double lo, double hi, double *out) {
    json_t *v = json_object_get(obj, key);
    if (!v) return BV_OK;
    if (!json_is_number(v) || !(json_number_value(v) > lo) || !(json_number_value(v) <= hi))
        return bv_error_set(BV_ERR_FORMAT, "%s: '%s%s' must be a number in (%g, %g]", p->label, p->section, key, lo, hi);
    *out = json_number_value(v);
    return BV_OK;
}

static bv_status get_bool(const pctx *p, json_t *obj, const char *key, bool *out) {
    json_t *v = json_object_get(obj, key);
    if (!v) return BV_OK;
    if (!json_is_boolean(v)) return bv_error_set(BV_ERR_FORMAT, "%s: '%s%s' must be true or false", p->label, p->section, key);
    *out = json_is_true(v);
    return BV_OK;
}

static bv_status get_act(const pctx *p, json_t *obj, const char *key, bv_act *out) {
    json_t *v = json_object_get(obj, key);
    if (!v) return BV_OK;
    const char *s = json_string_value(v);
    if (s)
        for (size_t i = 0; i < BV_ARRAY_LEN(k_acts); i++)
            if (!strcmp(s, k_acts[i].name)) {
                *out = k_acts[i].act;
                return BV_OK;
            }
    return bv_error_set(BV_ERR_FORMAT,
                        "%s: '%s%s' must be one of \"gelu_pytorch_tanh\", \"gelu_new\", \"gelu_fast\", \"gelu\", "
                        "\"relu\", \"relu2\", \"silu\", got %s%s%s",
                        p->label, p->section, key, s ? "\"" : "", s ? s : "a non-string", s ? "\"" : "");
}

/* Keys of each object that are read; with strict, anything else is an error. */
static bv_status check_unknown(const pctx *p, json_t *obj, const char *const *known, size_t n) {
    if (!p->strict) return BV_OK;
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        bool ok = false;
        for (size_t i = 0; i < n && !ok; i++) ok = !strcmp(key, known[i]);
        if (!ok)
            return bv_error_set(BV_ERR_FORMAT, "%s: unknown key '%s%s' (strict mode; see docs/models.md for the keys)",
                                p->label, p->section, key);
    }
    return BV_OK;
}

static bv_status parse_vision(const pctx *p0, json_t *o, bv_vision_config *v) {
    pctx p = *p0;
    p.section = "vision_config.";
    if (!json_is_object(o)) return bv_error_set(BV_ERR_FORMAT, "%s: 'vision_config' must be an object", p.label);
    static const char *known[] = {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                  "patch_size", "image_size", "num_channels", "layer_norm_eps", "hidden_act",
                                  "vit_weight_bits", "vit_act_bits", "model_type", "attention_dropout",
                                  "torch_dtype", "projection_dim", "vision_use_head"};
    BV_TRY(check_unknown(&p, o, known, BV_ARRAY_LEN(known)));
    BV_TRY(get_i32(&p, o, "hidden_size", true, 1, BV_CONFIG_MAX_HIDDEN, &v->hidden_size));
    BV_TRY(get_i32(&p, o, "intermediate_size", true, 1, BV_CONFIG_MAX_INTERMEDIATE, &v->intermediate_size));
    BV_TRY(get_i32(&p, o, "num_hidden_layers", true, 1, BV_CONFIG_MAX_LAYERS, &v->num_hidden_layers));
    BV_TRY(get_i32(&p, o, "num_attention_heads", true, 1, BV_CONFIG_MAX_HEADS, &v->num_attention_heads));
    BV_TRY(get_i32(&p, o, "patch_size", true, 1, BV_CONFIG_MAX_PATCH, &v->patch_size));
    BV_TRY(get_i32(&p, o, "image_size", true, 1, BV_CONFIG_MAX_IMAGE, &v->image_size));
    BV_TRY(get_i32(&p, o, "num_channels", false, 1, BV_CONFIG_MAX_CHANNELS, &v->num_channels));
    BV_TRY(get_real(&p, o, "layer_norm_eps", 0, 1, &v->layer_norm_eps));
    BV_TRY(get_act(&p, o, "hidden_act", &v->hidden_act));
    BV_TRY(get_i32(&p, o, "vit_weight_bits", false, 1, 32, &v->weight_bits));
    BV_TRY(get_i32(&p, o, "vit_act_bits", false, 1, 32, &v->act_bits));
    return BV_OK;
}

static bv_status parse_text(const pctx *p0, json_t *o, bv_text_config *t) {
    pctx p = *p0;
    p.section = "text_config.";
    if (!json_is_object(o)) return bv_error_set(BV_ERR_FORMAT, "%s: 'text_config' must be an object", p.label);
    static const char *known[] = {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                  "num_key_value_heads", "rope_theta", "rms_norm_eps", "vocab_size",
                                  "tie_word_embeddings", "max_position_embeddings", "hidden_act", "model_type",
                                  "torch_dtype", "bos_token_id", "eos_token_id", "pad_token_id", "attention_bias",
                                  "attention_dropout", "initializer_range", "use_cache", "rope_scaling",
                                  "quantization_config", "architectures", "head_dim"};
    BV_TRY(check_unknown(&p, o, known, BV_ARRAY_LEN(known)));
    BV_TRY(get_i32(&p, o, "hidden_size", true, 1, BV_CONFIG_MAX_HIDDEN, &t->hidden_size));
    BV_TRY(get_i32(&p, o, "intermediate_size", true, 1, BV_CONFIG_MAX_INTERMEDIATE, &t->intermediate_size));
    BV_TRY(get_i32(&p, o, "num_hidden_layers", true, 1, BV_CONFIG_MAX_LAYERS, &t->num_hidden_layers));
    BV_TRY(get_i32(&p, o, "num_attention_heads", true, 1, BV_CONFIG_MAX_HEADS, &t->num_attention_heads));
    t->num_key_value_heads = t->num_attention_heads; /* HF default: no grouping */
    BV_TRY(get_i32(&p, o, "num_key_value_heads", false, 1, BV_CONFIG_MAX_HEADS, &t->num_key_value_heads));
    BV_TRY(get_real(&p, o, "rope_theta", 0, 1e12, &t->rope_theta));
    BV_TRY(get_real(&p, o, "rms_norm_eps", 0, 1, &t->rms_norm_eps));
    BV_TRY(get_int(&p, o, "vocab_size", true, 1, BV_CONFIG_MAX_VOCAB, &t->vocab_size));
    BV_TRY(get_bool(&p, o, "tie_word_embeddings", &t->tie_word_embeddings));
    BV_TRY(get_i32(&p, o, "max_position_embeddings", false, 1, BV_CONFIG_MAX_POSITIONS, &t->max_position_embeddings));
    BV_TRY(get_act(&p, o, "hidden_act", &t->hidden_act));
    /* head_dim is derived (hidden_size / num_attention_heads); a config may state it. Its range is
     * checked before the product, which then stays below 2^26 (no overflow). */
    int64_t hd = 0;
    BV_TRY(get_int(&p, o, "head_dim", false, 1, BV_CONFIG_MAX_HIDDEN, &hd));
    if (hd && hd * t->num_attention_heads != t->hidden_size)
        return bv_error_set(BV_ERR_UNSUPPORTED,
                            "%s: 'text_config.head_dim' %lld must equal hidden_size / num_attention_heads = %d / %d",
                            p.label, (long long)hd, t->hidden_size, t->num_attention_heads);
    return BV_OK;
}

bv_status bv_config_parse(const char *text, size_t len, const char *label, bool strict, bv_vla_config *c) {
    bv_config_defaults(c);
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return bv_error_set(BV_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s", label, err.line, err.column,
                            err.text);
    bv_status st = BV_OK;
    pctx p = {label, "", strict};
    if (!json_is_object(root)) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: the top level must be a JSON object", label);
        goto done;
    }
    static const char *known[] = {"vision_config", "text_config", "projector_hidden_act", "vision_feature_layer",
                                  "vision_feature_select_strategy", "image_token_index", "proprio_token_index",
                                  "proprio_dim", "action_dim", "num_actions_chunk", "action_head_num_blocks",
                                  "tie_word_embeddings", "architectures", "model_type", "torch_dtype",
                                  "transformers_version", "ignore_index", "pad_token_id", "image_seq_length",
                                  "vocab_size", "quantization_config"};
    json_t *vc = json_object_get(root, "vision_config"), *tc = json_object_get(root, "text_config");
    if ((st = check_unknown(&p, root, known, BV_ARRAY_LEN(known)))) goto done;
    if (!vc) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: missing required key 'vision_config' (a LLaVA-style composite config)", label);
        goto done;
    }
    if (!tc) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: missing required key 'text_config' (a LLaVA-style composite config)", label);
        goto done;
    }
    if ((st = parse_vision(&p, vc, &c->vision))) goto done;
    /* a top-level tie_word_embeddings (older LLaVA layouts) is overridden by text_config's */
    if ((st = get_bool(&p, root, "tie_word_embeddings", &c->text.tie_word_embeddings))) goto done;
    if ((st = parse_text(&p, tc, &c->text))) goto done;
    json_t *vfs = json_object_get(root, "vision_feature_select_strategy");
    if (vfs && (!json_is_string(vfs) || strcmp(json_string_value(vfs), "full") != 0)) {
        st = bv_error_set(BV_ERR_UNSUPPORTED,
                          "%s: 'vision_feature_select_strategy' must be \"full\" (BitVLA keeps all patch tokens)", label);
        goto done;
    }
    if ((st = get_act(&p, root, "projector_hidden_act", &c->projector_act))) goto done;
    if ((st = get_i32(&p, root, "vision_feature_layer", false, -BV_CONFIG_MAX_LAYERS, BV_CONFIG_MAX_LAYERS - 1,
                      &c->vision_feature_layer)))
        goto done;
    if ((st = get_int(&p, root, "image_token_index", true, 0, BV_CONFIG_MAX_VOCAB - 1, &c->image_token_index)))
        goto done;
    c->proprio_token_index = c->image_token_index + 1;
    if ((st = get_int(&p, root, "proprio_token_index", false, 0, BV_CONFIG_MAX_VOCAB - 1, &c->proprio_token_index)))
        goto done;
    if ((st = get_i32(&p, root, "proprio_dim", false, 1, BV_CONFIG_MAX_ACTION, &c->proprio_dim))) goto done;
    if ((st = get_i32(&p, root, "action_dim", false, 1, BV_CONFIG_MAX_ACTION, &c->action_dim))) goto done;
    if ((st = get_i32(&p, root, "num_actions_chunk", false, 1, BV_CONFIG_MAX_ACTION, &c->num_actions_chunk))) goto done;
    if ((st = get_i32(&p, root, "action_head_num_blocks", false, 0, BV_CONFIG_MAX_HEAD_BLOCKS,
                      &c->action_head_num_blocks)))
        goto done;
    st = bv_config_validate(c, label);
done:
    json_decref(root);
    return st;
}

bv_status bv_config_load(const char *src, bool strict, bv_vla_config *c) {
    if (!strchr(src, '/') && !strstr(src, ".json")) return bv_config_preset(src, c);
    char *buf;
    size_t n;
    bv_status st = bv_read_file(src, "config", 64u << 20, &buf, &n);
    if (st) return st;
    st = bv_config_parse(buf, n, src, strict, c);
    free(buf);
    return st;
}

/* ---- validation ---- */

typedef struct {
    const char *key;
    int64_t v, lo, hi;
} int_field;

static bv_status check_ints(const int_field *f, size_t n, const char *label) {
    for (size_t i = 0; i < n; i++)
        if (f[i].v < f[i].lo || f[i].v > f[i].hi)
            return bv_error_set(BV_ERR_FORMAT, "%s: '%s' must be in [%lld, %lld], got %lld", label, f[i].key,
                                (long long)f[i].lo, (long long)f[i].hi, (long long)f[i].v);
    return BV_OK;
}

/* x in (lo, hi] and finite (NaN fails the comparison) */
static bv_status check_real(const char *key, double x, double lo, double hi, const char *label) {
    if (!(x > lo && x <= hi))
        return bv_error_set(BV_ERR_FORMAT, "%s: '%s' must be a number in (%g, %g], got %g", label, key, lo, hi, x);
    return BV_OK;
}

static bv_status check_act(const char *key, bv_act a, const char *label) {
    if (a < BV_ACT_GELU_TANH || a > BV_ACT_SILU)
        return bv_error_set(BV_ERR_FORMAT, "%s: '%s' is not a known activation (code %d)", label, key, (int)a);
    return BV_OK;
}

static bv_status validate_vision(const bv_vla_config *c, const char *label) {
    const bv_vision_config *v = &c->vision;
    const int_field f[] = {
        {"vision_config.hidden_size", v->hidden_size, 1, BV_CONFIG_MAX_HIDDEN},
        {"vision_config.intermediate_size", v->intermediate_size, 1, BV_CONFIG_MAX_INTERMEDIATE},
        {"vision_config.num_hidden_layers", v->num_hidden_layers, 1, BV_CONFIG_MAX_LAYERS},
        {"vision_config.num_attention_heads", v->num_attention_heads, 1, BV_CONFIG_MAX_HEADS},
        {"vision_config.patch_size", v->patch_size, 1, BV_CONFIG_MAX_PATCH},
        {"vision_config.image_size", v->image_size, 1, BV_CONFIG_MAX_IMAGE},
        {"vision_config.num_channels", v->num_channels, 1, BV_CONFIG_MAX_CHANNELS},
        {"vision_feature_layer", c->vision_feature_layer, -BV_CONFIG_MAX_LAYERS, BV_CONFIG_MAX_LAYERS - 1},
    };
    BV_TRY(check_ints(f, BV_ARRAY_LEN(f), label));
    BV_TRY(check_real("vision_config.layer_norm_eps", v->layer_norm_eps, 0, 1, label));
    BV_TRY(check_act("vision_config.hidden_act", v->hidden_act, label));
    if (v->hidden_size % v->num_attention_heads)
        return bv_error_set(BV_ERR_FORMAT, "%s: vision_config.hidden_size %d is not a multiple of num_attention_heads %d",
                            label, v->hidden_size, v->num_attention_heads);
    if (v->image_size % v->patch_size)
        return bv_error_set(BV_ERR_FORMAT, "%s: vision_config.image_size %d is not a multiple of patch_size %d", label,
                            v->image_size, v->patch_size);
    if (v->weight_bits != 1 && v->weight_bits != 32)
        return bv_error_set(BV_ERR_FORMAT, "%s: vision_config.vit_weight_bits must be 1 (ternary) or 32, got %d", label,
                            v->weight_bits);
    if (v->act_bits != 8 && v->act_bits != 32)
        return bv_error_set(BV_ERR_FORMAT, "%s: vision_config.vit_act_bits must be 8 or 32, got %d", label, v->act_bits);
    int L = v->num_hidden_layers;
    if (c->vision_feature_layer < -L || c->vision_feature_layer >= L)
        return bv_error_set(BV_ERR_FORMAT, "%s: vision_feature_layer %d outside [-%d, %d] for %d vision layers", label,
                            c->vision_feature_layer, L, L - 1, L);
    return BV_OK;
}

static bv_status validate_text(const bv_vla_config *c, const char *label) {
    const bv_text_config *t = &c->text;
    const int_field f[] = {
        {"text_config.hidden_size", t->hidden_size, 1, BV_CONFIG_MAX_HIDDEN},
        {"text_config.intermediate_size", t->intermediate_size, 1, BV_CONFIG_MAX_INTERMEDIATE},
        {"text_config.num_hidden_layers", t->num_hidden_layers, 1, BV_CONFIG_MAX_LAYERS},
        {"text_config.num_attention_heads", t->num_attention_heads, 1, BV_CONFIG_MAX_HEADS},
        {"text_config.num_key_value_heads", t->num_key_value_heads, 1, BV_CONFIG_MAX_HEADS},
        {"text_config.vocab_size", t->vocab_size, 1, BV_CONFIG_MAX_VOCAB},
        {"text_config.max_position_embeddings", t->max_position_embeddings, 1, BV_CONFIG_MAX_POSITIONS},
    };
    BV_TRY(check_ints(f, BV_ARRAY_LEN(f), label));
    BV_TRY(check_real("text_config.rope_theta", t->rope_theta, 0, 1e12, label));
    BV_TRY(check_real("text_config.rms_norm_eps", t->rms_norm_eps, 0, 1, label));
    BV_TRY(check_act("text_config.hidden_act", t->hidden_act, label));
    if (t->hidden_size % t->num_attention_heads)
        return bv_error_set(BV_ERR_FORMAT, "%s: text_config.hidden_size %d is not a multiple of num_attention_heads %d",
                            label, t->hidden_size, t->num_attention_heads);
    if ((t->hidden_size / t->num_attention_heads) % 2)
        return bv_error_set(BV_ERR_FORMAT, "%s: text_config head size %d must be even (rotary embedding)", label,
                            t->hidden_size / t->num_attention_heads);
    if (t->num_attention_heads % t->num_key_value_heads)
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: text_config.num_attention_heads %d is not a multiple of num_key_value_heads %d", label,
                            t->num_attention_heads, t->num_key_value_heads);
    return BV_OK;
}

/* the keys that join the towers: projector, token ids, proprio projector and action head */
static bv_status validate_joint(const bv_vla_config *c, const char *label) {
    const bv_text_config *t = &c->text;
    const int_field f[] = {
        {"image_token_index", c->image_token_index, 0, BV_CONFIG_MAX_VOCAB - 1},
        {"proprio_token_index", c->proprio_token_index, 0, BV_CONFIG_MAX_VOCAB - 1},
        {"proprio_dim", c->proprio_dim, 1, BV_CONFIG_MAX_ACTION},
        {"action_dim", c->action_dim, 1, BV_CONFIG_MAX_ACTION},
        {"num_actions_chunk", c->num_actions_chunk, 1, BV_CONFIG_MAX_ACTION},
        {"action_head_num_blocks", c->action_head_num_blocks, 0, BV_CONFIG_MAX_HEAD_BLOCKS},
    };
    BV_TRY(check_ints(f, BV_ARRAY_LEN(f), label));
    BV_TRY(check_act("projector_hidden_act", c->projector_act, label));
    if (c->image_token_index >= t->vocab_size || c->proprio_token_index >= t->vocab_size)
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: image_token_index %lld / proprio_token_index %lld must be < text_config.vocab_size %lld",
                            label, (long long)c->image_token_index, (long long)c->proprio_token_index,
                            (long long)t->vocab_size);
    if (c->image_token_index == c->proprio_token_index)
        return bv_error_set(BV_ERR_FORMAT, "%s: image_token_index and proprio_token_index are both %lld", label,
                            (long long)c->image_token_index);
    return BV_OK;
}

bv_status bv_config_validate_sections(const bv_vla_config *c, unsigned sections, const char *label) {
    if (sections & BV_CONFIG_VISION) BV_TRY(validate_vision(c, label));
    if (sections & BV_CONFIG_TEXT) BV_TRY(validate_text(c, label));
    if (sections & BV_CONFIG_JOINT) BV_TRY(validate_joint(c, label));
    return BV_OK;
}

bv_status bv_config_validate(const bv_vla_config *c, const char *label) {
    return bv_config_validate_sections(c, BV_CONFIG_ALL, label);
}

char *bv_config_to_json(const bv_vla_config *c) {
    json_t *v = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:s, s:i, s:i}", "model_type",
                          "siglip_vision_model", "hidden_size", c->vision.hidden_size, "intermediate_size",
                          c->vision.intermediate_size, "num_hidden_layers", c->vision.num_hidden_layers,
                          "num_attention_heads", c->vision.num_attention_heads, "patch_size", c->vision.patch_size,
                          "image_size", c->vision.image_size, "num_channels", c->vision.num_channels, "layer_norm_eps",
                          c->vision.layer_norm_eps, "hidden_act", bv_act_name(c->vision.hidden_act), "vit_weight_bits",
                          c->vision.weight_bits, "vit_act_bits", c->vision.act_bits);
    json_t *t = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:I, s:b, s:i, s:s}", "model_type", "bitnet",
                          "hidden_size", c->text.hidden_size, "intermediate_size", c->text.intermediate_size,
                          "num_hidden_layers", c->text.num_hidden_layers, "num_attention_heads",
                          c->text.num_attention_heads, "num_key_value_heads", c->text.num_key_value_heads,
                          "rope_theta", c->text.rope_theta, "rms_norm_eps", c->text.rms_norm_eps, "vocab_size",
                          (json_int_t)c->text.vocab_size, "tie_word_embeddings", c->text.tie_word_embeddings,
                          "max_position_embeddings", c->text.max_position_embeddings, "hidden_act",
                          bv_act_name(c->text.hidden_act));
    json_t *root = json_pack("{s:[s], s:s, s:o, s:o, s:s, s:i, s:s, s:I, s:I, s:i, s:i, s:i, s:i}", "architectures",
                             "BitVLAForActionPrediction", "model_type", "llava", "vision_config", v, "text_config", t,
                             "projector_hidden_act", bv_act_name(c->projector_act), "vision_feature_layer",
                             c->vision_feature_layer, "vision_feature_select_strategy", "full", "image_token_index",
                             (json_int_t)c->image_token_index, "proprio_token_index",
                             (json_int_t)c->proprio_token_index, "proprio_dim", c->proprio_dim, "action_dim",
                             c->action_dim, "num_actions_chunk", c->num_actions_chunk, "action_head_num_blocks",
                             c->action_head_num_blocks);
    BV_ASSERT(v && t && root, "config to_json: json_pack failed");
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return s;
}
