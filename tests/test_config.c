/* Tests of the model configuration: presets, config.json parsing (required keys, defaults,
 * types, strict mode), validation messages that name the file and key, the range of every integer
 * field (checked before any product: no overflow, UBSan quiet), validation of configs built in
 * code and by section, and the JSON round trip. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "models/config.h"
#include "tests/util/testutil.h"

static const char *k_good =
    "{\"architectures\": [\"LlavaForConditionalGeneration\"], \"torch_dtype\": \"bfloat16\","
    " \"vision_config\": {\"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 2,"
    "   \"num_attention_heads\": 4, \"patch_size\": 14, \"image_size\": 56, \"layer_norm_eps\": 1e-06,"
    "   \"hidden_act\": \"gelu_pytorch_tanh\", \"vit_weight_bits\": 1, \"vit_act_bits\": 8},"
    " \"text_config\": {\"hidden_size\": 64, \"intermediate_size\": 176, \"num_hidden_layers\": 2,"
    "   \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 768, \"rope_theta\": 500000.0,"
    "   \"rms_norm_eps\": 1e-05, \"hidden_act\": \"relu2\", \"tie_word_embeddings\": true},"
    " \"projector_hidden_act\": \"gelu\", \"image_token_index\": 510}";

static bv_status parse(const char *s, bool strict, bv_vla_config *c) {
    bv_test_fuzz_seed(s, strlen(s));
    return bv_config_parse(s, strlen(s), "cfg.json", strict, c);
}

static void test_parse_good_and_defaults(void **state) {
    bv_vla_config c;
    assert_int_equal(parse(k_good, false, &c), BV_OK);
    assert_int_equal(c.vision.hidden_size, 64);
    assert_int_equal(c.vision.weight_bits, 1);
    assert_int_equal(c.text.num_key_value_heads, 2);
    assert_true(c.text.tie_word_embeddings);
    assert_int_equal(c.projector_act, BV_ACT_GELU_ERF);
    assert_int_equal(c.vision.hidden_act, BV_ACT_GELU_TANH);
    /* documented defaults */
    assert_int_equal(c.proprio_token_index, 511);
    assert_int_equal(c.proprio_dim, 8);
    assert_int_equal(c.action_dim, 7);
    assert_int_equal(c.num_actions_chunk, 8);
    assert_int_equal(c.action_head_num_blocks, 2);
    assert_int_equal(c.vision_feature_layer, -1);
    assert_int_equal(bv_config_vision_patches(&c), 16);
    assert_int_equal(bv_config_action_tokens(&c), 56);
}

static void expect_error(const char *json, bool strict, bv_status want, const char *needle) {
    bv_vla_config c;
    bv_status st = parse(json, strict, &c);
    if (st != want || !strstr(bv_error_msg(), needle) || !strstr(bv_error_msg(), "cfg.json"))
        fail_msg("expected status %d with a message naming cfg.json and containing '%s'; got %d: '%s'", want, needle,
                 st, bv_error_msg());
}

static char *replace(const char *s, const char *from, const char *to) {
    const char *p = strstr(s, from);
    assert_non_null(p);
    char *r = malloc(strlen(s) + strlen(to) + 1);
    memcpy(r, s, (size_t)(p - s));
    strcpy(r + (p - s), to);
    strcat(r, p + strlen(from));
    return r;
}

static void test_parse_errors(void **state) {
    struct {
        const char *from, *to, *needle;
        bv_status st;
    } cases[] = {
        {"\"num_attention_heads\": 4, \"num_key_value_heads\": 2", "\"num_key_value_heads\": 2",
         "text_config.num_attention_heads", BV_ERR_FORMAT},
        {"\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3", "num_key_value_heads 3", BV_ERR_FORMAT},
        {"\"vit_weight_bits\": 1", "\"vit_weight_bits\": 4", "vit_weight_bits", BV_ERR_FORMAT},
        {"\"hidden_act\": \"relu2\"", "\"hidden_act\": \"tanh\"", "text_config.hidden_act", BV_ERR_FORMAT},
        {"\"hidden_size\": 64, \"intermediate_size\": 176", "\"hidden_size\": \"64\", \"intermediate_size\": 176",
         "text_config.hidden_size", BV_ERR_FORMAT},
        {"\"image_size\": 56", "\"image_size\": 50", "image_size 50", BV_ERR_FORMAT},
        {"\"image_token_index\": 510", "\"image_token_index\": 900", "vocab_size", BV_ERR_FORMAT},
        {"\"image_token_index\": 510", "\"image_token_index\": 510, \"vision_feature_layer\": 5",
         "vision_feature_layer", BV_ERR_FORMAT},
        {", \"image_token_index\": 510", "", "image_token_index", BV_ERR_FORMAT},
        {"\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": -1", "rms_norm_eps", BV_ERR_FORMAT},
        {"\"image_token_index\": 510", "\"image_token_index\": 510, \"vision_feature_select_strategy\": \"default\"",
         "vision_feature_select_strategy", BV_ERR_UNSUPPORTED},
        {"{\"architectures\"", "{\"architectures\": 1, \"architectures\"", "line 1", BV_ERR_FORMAT},
    };
    for (size_t i = 0; i < BV_ARRAY_LEN(cases); i++) {
        char *j = replace(k_good, cases[i].from, cases[i].to);
        expect_error(j, false, cases[i].st, cases[i].needle);
        free(j);
    }
    expect_error("[1, 2]", false, BV_ERR_FORMAT, "object");
    expect_error("{\"text_config\": {}}", false, BV_ERR_FORMAT, "vision_config");
    expect_error("{not json", false, BV_ERR_FORMAT, "line 1, column");
}

static void test_strict_mode_catches_typos(void **state) {
    bv_vla_config c;
    char *j = replace(k_good, "\"rope_theta\"", "\"rope_teta\": 1, \"rope_theta\"");
    assert_int_equal(parse(j, false, &c), BV_OK);
    expect_error(j, true, BV_ERR_FORMAT, "text_config.rope_teta");
    free(j);
}

/* head_dim is range-checked before it is multiplied by the head count: 2^62 + 16 times 4 heads
 * wraps to 64 in int64 (signed overflow, undefined; the release build accepted it). */
static void test_head_dim_no_overflow(void **state) {
    const char *bad[] = {"4611686018427387920", "4611686018427387908", "9223372036854775807", "-16", "0", "65537",
                         "16.0", "\"16\""};
    for (size_t i = 0; i < BV_ARRAY_LEN(bad); i++) {
        char to[160];
        snprintf(to, sizeof to, "\"num_key_value_heads\": 2, \"head_dim\": %s", bad[i]);
        char *j = replace(k_good, "\"num_key_value_heads\": 2", to);
        expect_error(j, false, BV_ERR_FORMAT, "'text_config.head_dim' must be");
        if (strchr(bad[i], '.') == NULL && bad[i][0] != '"') bv_test_expect_in(bv_error_msg(), "[1, 65536]");
        free(j);
    }
    /* 4 heads of 16: the right value is accepted, another one is refused with both numbers */
    char *j = replace(k_good, "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 2, \"head_dim\": 16");
    bv_vla_config c;
    assert_int_equal(parse(j, true, &c), BV_OK);
    free(j);
    j = replace(k_good, "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 2, \"head_dim\": 8");
    expect_error(j, false, BV_ERR_UNSUPPORTED, "'text_config.head_dim' 8 must equal hidden_size / num_attention_heads = 64 / 4");
    free(j);
}

/* One past the documented maximum (or below the minimum) of each integer key is refused, naming the
 * key and the range. */
static void test_integer_ranges(void **state) {
    struct {
        const char *from, *to, *needle;
    } cases[] = {
        {"\"vocab_size\": 768", "\"vocab_size\": 2147483649", "'text_config.vocab_size' must be in [1, 2147483648]"},
        {"\"vocab_size\": 768", "\"vocab_size\": 0", "'text_config.vocab_size' must be in [1, 2147483648]"},
        {"\"hidden_size\": 64, \"intermediate_size\": 176", "\"hidden_size\": 65537, \"intermediate_size\": 176",
         "'text_config.hidden_size' must be in [1, 65536]"},
        {"\"intermediate_size\": 176", "\"intermediate_size\": 262145", "'text_config.intermediate_size' must be in [1, 262144]"},
        {"\"num_hidden_layers\": 2,   \"num_attention_heads\": 4, \"num_key_value_heads\"",
         "\"num_hidden_layers\": 1025, \"num_attention_heads\": 4, \"num_key_value_heads\"",
         "'text_config.num_hidden_layers' must be in [1, 1024]"},
        {"\"num_key_value_heads\": 2", "\"num_key_value_heads\": 2, \"max_position_embeddings\": 16777217",
         "'text_config.max_position_embeddings' must be in [1, 16777216]"},
        {"\"image_size\": 56", "\"image_size\": 16385", "'vision_config.image_size' must be in [1, 16384]"},
        {"\"patch_size\": 14", "\"patch_size\": 1025", "'vision_config.patch_size' must be in [1, 1024]"},
        {"\"patch_size\": 14", "\"patch_size\": 14, \"num_channels\": 17", "'vision_config.num_channels' must be in [1, 16]"},
        {"\"image_token_index\": 510", "\"image_token_index\": 510, \"action_dim\": 4097", "'action_dim' must be in [1, 4096]"},
        {"\"image_token_index\": 510", "\"image_token_index\": 510, \"num_actions_chunk\": 0",
         "'num_actions_chunk' must be in [1, 4096]"},
        {"\"image_token_index\": 510", "\"image_token_index\": 510, \"proprio_dim\": -3", "'proprio_dim' must be in [1, 4096]"},
        {"\"image_token_index\": 510", "\"image_token_index\": 510, \"action_head_num_blocks\": 65",
         "'action_head_num_blocks' must be in [0, 64]"},
        {"\"image_token_index\": 510", "\"image_token_index\": 510, \"vision_feature_layer\": -1025",
         "'vision_feature_layer' must be in [-1024, 1023]"},
        {"\"image_token_index\": 510", "\"image_token_index\": 9223372036854775807",
         "'image_token_index' must be in [0, 2147483647]"},
    };
    for (size_t i = 0; i < BV_ARRAY_LEN(cases); i++) {
        char *j = replace(k_good, cases[i].from, cases[i].to);
        expect_error(j, false, BV_ERR_FORMAT, cases[i].needle);
        free(j);
    }
}

/* Every integer at its maximum: validation does no arithmetic that overflows (UBSan would abort
 * the asan build), and the derived int-typed sizes fit. */
static void test_maxima_validate(void **state) {
    bv_vla_config c;
    bv_config_defaults(&c);
    c.vision = (bv_vision_config){BV_CONFIG_MAX_HIDDEN, BV_CONFIG_MAX_INTERMEDIATE, BV_CONFIG_MAX_LAYERS,
                                  BV_CONFIG_MAX_HEADS, 1, BV_CONFIG_MAX_IMAGE, BV_CONFIG_MAX_CHANNELS, 1.0,
                                  BV_ACT_SILU, 1, 8};
    c.text = (bv_text_config){BV_CONFIG_MAX_HIDDEN, BV_CONFIG_MAX_INTERMEDIATE, BV_CONFIG_MAX_LAYERS,
                              BV_CONFIG_MAX_HEADS, BV_CONFIG_MAX_HEADS, 1e12, 1.0, BV_CONFIG_MAX_VOCAB, false,
                              BV_CONFIG_MAX_POSITIONS, BV_ACT_RELU2};
    c.vision_feature_layer = -BV_CONFIG_MAX_LAYERS;
    c.image_token_index = BV_CONFIG_MAX_VOCAB - 1;
    c.proprio_token_index = BV_CONFIG_MAX_VOCAB - 2;
    c.proprio_dim = c.action_dim = c.num_actions_chunk = BV_CONFIG_MAX_ACTION;
    c.action_head_num_blocks = BV_CONFIG_MAX_HEAD_BLOCKS;
    if (bv_config_validate(&c, "maxima") != BV_OK) fail_msg("%s", bv_error_msg());
    assert_int_equal(bv_config_vision_patches(&c), 1 << 28);
    assert_int_equal(bv_config_action_tokens(&c), 1 << 24);
    /* and its JSON parses back to the same config */
    char *js = bv_config_to_json(&c);
    bv_vla_config d;
    if (bv_config_parse(js, strlen(js), "maxima.json", true, &d) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_int_equal(d.text.vocab_size, BV_CONFIG_MAX_VOCAB);
    free(js);
}

/* A config built in code gets the parser's checks: ranges before divisions (a zero head count is
 * an error, not a SIGFPE), non-finite reals, unknown activations. */
static void test_validate_in_memory(void **state) {
    bv_vla_config c;
    const char *needle;
#define EXPECT_INVALID(stmt, want)                                                                                   \
    do {                                                                                                               \
        assert_int_equal(bv_config_preset("tiny", &c), BV_OK);                                                         \
        stmt;                                                                                                          \
        needle = want;                                                                                                 \
        if (bv_config_validate(&c, "code") != BV_ERR_FORMAT || !strstr(bv_error_msg(), needle) ||                     \
            strncmp(bv_error_msg(), "code: ", 6))                                                                      \
            fail_msg("%s: expected an error naming '%s', got '%s'", #stmt, needle, bv_error_msg());                   \
    } while (0)
    EXPECT_INVALID(c.vision.num_attention_heads = 0, "'vision_config.num_attention_heads' must be in [1, 1024], got 0");
    EXPECT_INVALID(c.text.num_attention_heads = 0, "'text_config.num_attention_heads' must be in [1, 1024], got 0");
    EXPECT_INVALID(c.text.num_key_value_heads = -1, "'text_config.num_key_value_heads' must be in [1, 1024]");
    EXPECT_INVALID(c.vision.patch_size = 0, "'vision_config.patch_size' must be in [1, 1024], got 0");
    EXPECT_INVALID(c.text.hidden_size = INT_MAX, "'text_config.hidden_size' must be in [1, 65536], got 2147483647");
    EXPECT_INVALID(c.text.vocab_size = INT64_MAX, "'text_config.vocab_size' must be in [1, 2147483648]");
    EXPECT_INVALID(c.vision.image_size = -56, "'vision_config.image_size' must be in [1, 16384], got -56");
    EXPECT_INVALID(c.action_dim = 1 << 20, "'action_dim' must be in [1, 4096], got 1048576");
    EXPECT_INVALID(c.text.rms_norm_eps = NAN, "'text_config.rms_norm_eps' must be a number in (0, 1]");
    EXPECT_INVALID(c.text.rope_theta = -1, "'text_config.rope_theta' must be a number in (0, 1e+12]");
    EXPECT_INVALID(c.vision.hidden_act = (bv_act)99, "'vision_config.hidden_act' is not a known activation");
    EXPECT_INVALID(c.image_token_index = -1, "'image_token_index' must be in [0, 2147483647], got -1");
#undef EXPECT_INVALID
}

/* A tower alone needs only its section: a config with an empty text part validates for the
 * vision section and fails for the whole model, naming the first text key. */
static void test_validate_sections(void **state) {
    bv_vla_config c;
    assert_int_equal(bv_config_preset("tiny", &c), BV_OK);
    memset(&c.text, 0, sizeof c.text);
    assert_int_equal(bv_config_validate_sections(&c, BV_CONFIG_VISION, "tower"), BV_OK);
    assert_int_equal(bv_config_validate_sections(&c, BV_CONFIG_TEXT, "tower"), BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), "tower: 'text_config.hidden_size' must be in [1, 65536], got 0");
    assert_int_equal(bv_config_validate(&c, "tower"), BV_ERR_FORMAT);
    /* an LLM alone with a one-row vocabulary: the token ids of the VLA are not its business */
    assert_int_equal(bv_config_preset("tiny", &c), BV_OK);
    c.text.vocab_size = 1;
    memset(&c.vision, 0, sizeof c.vision);
    assert_int_equal(bv_config_validate_sections(&c, BV_CONFIG_TEXT, "llm"), BV_OK);
    assert_int_equal(bv_config_validate_sections(&c, BV_CONFIG_TEXT | BV_CONFIG_JOINT, "llm"), BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), "must be < text_config.vocab_size 1");
}

static void test_presets_and_round_trip(void **state) {
    const char *names[] = {"bitvla-2b", "tiny"};
    for (int i = 0; i < 2; i++) {
        bv_vla_config a, b;
        assert_int_equal(bv_config_preset(names[i], &a), BV_OK);
        char *js = bv_config_to_json(&a);
        assert_int_equal(bv_config_parse(js, strlen(js), names[i], true, &b), BV_OK);
        char *js2 = bv_config_to_json(&b);
        assert_string_equal(js, js2); /* every field survives (compared via the JSON: structs have padding) */
        assert_int_equal(a.text.vocab_size, b.text.vocab_size);
        assert_true(a.vision.layer_norm_eps == b.vision.layer_norm_eps && a.text.rope_theta == b.text.rope_theta);
        free(js);
        free(js2);
    }
    bv_vla_config c;
    assert_int_equal(bv_config_preset("bitvla-2b", &c), BV_OK);
    assert_int_equal(c.vision.num_hidden_layers, 26);
    assert_int_equal(c.text.hidden_size, 2560);
    assert_int_equal(c.text.num_key_value_heads, 5);
    assert_int_equal(c.text.vocab_size, 128268);
    assert_int_equal(bv_config_vision_patches(&c), 256);
    assert_int_not_equal(bv_config_preset("huge", &c), BV_OK);
    assert_non_null(strstr(bv_error_msg(), "bitvla-2b"));
    assert_int_equal(bv_config_load("/nonexistent/config.json", false, &c), BV_ERR_IO);
    assert_non_null(strstr(bv_error_msg(), "/nonexistent/config.json"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good_and_defaults),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_strict_mode_catches_typos),
        cmocka_unit_test(test_head_dim_no_overflow),
        cmocka_unit_test(test_integer_ranges),
        cmocka_unit_test(test_maxima_validate),
        cmocka_unit_test(test_validate_in_memory),
        cmocka_unit_test(test_validate_sections),
        cmocka_unit_test(test_presets_and_round_trip),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
