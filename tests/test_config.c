/* Tests of the model configuration: presets, config.json parsing (required keys, defaults,
 * types, strict mode), validation messages that name the file and key, and the JSON round trip. */
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
        cmocka_unit_test(test_presets_and_round_trip),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
