/* Tests of training recipes (recipes/recipe.h): every committed recipe loads, defaults, the error
 * messages (unknown key with its path, wrong type, out of range, missing key, bad JSON, bad --set),
 * --set overrides of every kind of value, optimizer groups, the to_json round trip, a failed parse
 * leaving the recipe zeroed, and docs/recipes.md naming every key. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "recipes/recipe.h"
#include "tests/util/testutil.h"

static const char *k_min =
    "{\"model\": {\"config\": \"tiny\"}, \"tokenizer\": \"tok.json\", \"data\": {\"shards\": \"d\"}}";

static bv_status parse_ov(const char *json, bv_recipe *r, int n, const char *const *ov) {
    bv_test_fuzz_seed(json, strlen(json));
    return bv_recipe_parse(r, json, strlen(json), "dir/rx.json", n, ov);
}

static bv_status parse(const char *json, bv_recipe *r) { return parse_ov(json, r, 0, NULL); }

static void expect_zeroed(const bv_recipe *r) {
    static const bv_recipe zero;
    if (memcmp(r, &zero, sizeof zero) != 0) fail_msg("a failed parse left the recipe not zeroed");
}

/* the parse fails with `want`, a message naming dir/rx.json and containing every needle */
static void expect_error_ov(const char *json, int n, const char *const *ov, bv_status want, const char *n1,
                            const char *n2) {
    bv_recipe r;
    memset(&r, 0x5a, sizeof r);
    bv_status st = parse_ov(json, &r, n, ov);
    const char *m = bv_error_msg();
    if (st != want || !strstr(m, "dir/rx.json") || !strstr(m, n1) || (n2 && !strstr(m, n2)))
        fail_msg("%s: expected status %d with a message naming dir/rx.json and containing \"%s\"%s%s%s; got %d: \"%s\"",
                 json, want, n1, n2 ? " and \"" : "", n2 ? n2 : "", n2 ? "\"" : "", st, m);
    expect_zeroed(&r);
}

static void expect_error(const char *json, const char *n1, const char *n2) {
    expect_error_ov(json, 0, NULL, BV_ERR_FORMAT, n1, n2);
}

/* k_min with `extra` (", \"key\": value") added at the top level; a "model" or "data" section in
 * extra replaces k_min's */
static char *with(const char *extra) {
    char *s = bv_xmalloc(strlen(extra) + 128);
    strcpy(s, "{\"tokenizer\": \"tok.json\"");
    if (!strstr(extra, "\"model\": ")) strcat(s, ", \"model\": {\"config\": \"tiny\"}");
    if (!strstr(extra, "\"data\": ")) strcat(s, ", \"data\": {\"shards\": \"d\"}");
    strcat(s, extra);
    strcat(s, "}");
    return s;
}

static void expect_error_with(const char *extra, const char *n1, const char *n2) {
    char *s = with(extra);
    expect_error(s, n1, n2);
    free(s);
}

static int list_len(char **l) {
    int n = 0;
    while (l && l[n]) n++;
    return n;
}

static void test_committed_recipes(void **state) {
    (void)state;
    DIR *d = opendir(BV_SOURCE_DIR "/recipes");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json")) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/recipes/%s", BV_SOURCE_DIR, e->d_name);
        bv_recipe r;
        if (bv_recipe_load(&r, path, 0, NULL) != BV_OK) fail_msg("%s: %s", path, bv_error_msg());
        /* the name is the file's */
        assert_int_equal(strncmp(r.name, e->d_name, len - 5), 0);
        assert_string_equal(r.source, path);
        bv_recipe_free(&r);
        n++;
    }
    closedir(d);
    assert_true(n >= 5);

    const struct {
        const char *file;
        double lr;
        int64_t steps;
    } libero[] = {{"libero_spatial", 1e-4, 10001},
                  {"libero_object", 1e-4, 10001},
                  {"libero_goal", 2e-4, 10001},
                  {"libero_long", 4e-4, 100001}};
    for (size_t i = 0; i < BV_ARRAY_LEN(libero); i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/recipes/%s.json", BV_SOURCE_DIR, libero[i].file);
        bv_recipe r;
        assert_int_equal(bv_recipe_load(&r, path, 0, NULL), BV_OK);
        assert_string_equal(r.model.config, "bitvla-2b");
        assert_non_null(r.model.init_from);
        assert_true(r.optimizer.lr == libero[i].lr);
        assert_int_equal(r.steps, libero[i].steps);
        /* spec section 10: global batch 64 on one rank, cosine after 375 warmup, AdamW, wd 0.01 */
        assert_int_equal(r.micro_batch * r.accumulation, 64);
        assert_int_equal(r.schedule.type, BV_LR_COSINE);
        assert_int_equal(r.schedule.warmup_steps, 375);
        assert_true(r.optimizer.beta1 == 0.9 && r.optimizer.beta2 == 0.999 && r.optimizer.eps == 1e-8);
        assert_true(r.optimizer.weight_decay == 0.01 && r.optimizer.clip_grad_norm == 0);
        assert_int_equal(r.data.image_size, 224);
        assert_int_equal(r.data.n_images, 2);
        assert_true(r.data.augment);
        assert_false(r.data.synth);
        bool is_long = !strcmp(libero[i].file, "libero_long");
        assert_int_equal(r.optimizer.n_groups, is_long ? 1 : 0);
        if (is_long) {
            assert_string_equal(r.optimizer.groups[0].name, "vision");
            assert_string_equal(r.optimizer.groups[0].prefixes[0], "vision_tower.");
            assert_null(r.optimizer.groups[0].prefixes[1]);
            assert_true(r.optimizer.groups[0].lr == 8e-5);
            assert_true(r.optimizer.groups[0].weight_decay < 0);
        }
        bv_recipe_free(&r);
    }

    bv_recipe r;
    assert_int_equal(bv_recipe_load(&r, BV_SOURCE_DIR "/recipes/tiny_synth.json", 0, NULL), BV_OK);
    assert_string_equal(r.model.config, "tiny");
    assert_null(r.model.init_from);
    assert_true(r.data.synth);
    assert_int_equal(r.data.synth_opts.episodes, 200);
    assert_int_equal(r.data.synth_opts.val_episodes, 16);
    assert_int_equal(r.data.synth_opts.tokenizer_vocab, 500);
    assert_string_equal(r.data.synth_opts.rlds, "runs/data/tiny_synth/rlds");
    assert_int_equal(r.data.image_size, 56);
    assert_int_equal(r.validation.every, 200);
    assert_int_equal(r.validation.batches, 8);
    bv_recipe_free(&r);
}

static void test_defaults(void **state) {
    (void)state;
    bv_recipe r, d;
    bv_recipe_defaults(&d);
    assert_int_equal(parse(k_min, &r), BV_OK);
    assert_string_equal(r.name, "rx"); /* dir/rx.json */
    assert_string_equal(r.source, "dir/rx.json");
    assert_string_equal(r.model.config, "tiny");
    assert_string_equal(r.tokenizer, "tok.json");
    assert_string_equal(r.data.shards, "d");
    assert_null(r.model.init_from);
    assert_null(r.model.train);
    assert_null(r.model.freeze);
    assert_null(r.data.val_shards);
    assert_null(r.data.dataset_name);
    assert_null(r.data.synth_opts.rlds);
    /* the documented defaults (recipes/recipe.h, docs/recipes.md) */
    assert_int_equal(r.data.image_size, 224);
    assert_int_equal(r.data.n_images, 2);
    assert_true(r.data.augment);
    assert_int_equal(r.data.threads, 2);
    assert_false(r.data.synth);
    assert_int_equal(r.data.synth_opts.episodes, 64);
    assert_int_equal(r.data.synth_opts.seed, 1);
    assert_true(r.optimizer.lr == 1e-4 && r.optimizer.beta1 == 0.9 && r.optimizer.beta2 == 0.999);
    assert_true(r.optimizer.eps == 1e-8 && r.optimizer.weight_decay == 0.01 && r.optimizer.clip_grad_norm == 0);
    assert_int_equal(list_len(r.optimizer.no_decay), 3);
    assert_string_equal(r.optimizer.no_decay[0], "norm");
    assert_int_equal(r.optimizer.n_groups, 0);
    assert_int_equal(r.schedule.type, BV_LR_CONSTANT);
    assert_int_equal(r.schedule.warmup_steps, 0);
    assert_true(r.schedule.power == 1.0 && r.schedule.min_lr_ratio == 0);
    assert_int_equal(r.schedule.weight_decay_off_step, -1);
    assert_int_equal(r.steps, 10001);
    assert_int_equal(r.micro_batch, 2);
    assert_int_equal(r.accumulation, 8);
    assert_int_equal(r.seed, 7);
    assert_int_equal(r.validation.every, 0);
    assert_int_equal(r.validation.batches, 8);
    assert_int_equal(r.checkpoint.every, 0);
    assert_int_equal(r.checkpoint.keep, 3);
    assert_int_equal(r.logging.every, 1);
    assert_true(r.logging.tensorboard);
    assert_int_equal(r.guard.max_nonfinite, 5);
    /* bv_recipe_defaults agrees on every number */
    assert_true(d.optimizer.lr == r.optimizer.lr && d.optimizer.beta2 == r.optimizer.beta2);
    assert_int_equal(d.steps, r.steps);
    assert_int_equal(d.accumulation, r.accumulation);
    assert_int_equal(d.schedule.weight_decay_off_step, r.schedule.weight_decay_off_step);
    assert_int_equal(d.data.synth_opts.tokenizer_vocab, r.data.synth_opts.tokenizer_vocab);
    assert_null(d.name);
    assert_null(d.optimizer.no_decay);
    bv_recipe_free(&r);
    bv_recipe_free(&r); /* safe on a zeroed recipe */
    /* a label without a directory or .json; a NULL label */
    assert_int_equal(bv_recipe_parse(&r, k_min, strlen(k_min), NULL, 0, NULL), BV_OK);
    assert_string_equal(r.source, "<memory>");
    bv_recipe_free(&r);
}

static void test_errors(void **state) {
    (void)state;
    /* unknown keys, named by their path */
    expect_error_with(", \"stepz\": 3", "unknown key 'stepz'", NULL);
    expect_error_with(", \"optimizer\": {\"lrr\": 1}", "unknown key 'optimizer.lrr'", NULL);
    expect_error_with(", \"data\": {\"shards\": \"d\", \"synth\": {\"episode\": 3}}",
                      "unknown key 'data.synth.episode'", NULL);
    expect_error_with(", \"optimizer\": {\"groups\": [{\"name\": \"v\", \"prefixes\": [\"v.\"], \"lrr\": 1}]}",
                      "unknown key 'optimizer.groups[0].lrr'", NULL);
    /* a dotted key is not the nested key it spells */
    expect_error_with(", \"data.augment\": false", "unknown key 'data.augment'", NULL);
    /* wrong types: the path, what was expected and what was found */
    expect_error_with(", \"steps\": \"10\"", "'steps' must be an integer in [1, 1000000000000], got \"10\"", NULL);
    expect_error_with(", \"steps\": 1.5", "'steps' must be an integer", "got 1.5");
    expect_error_with(", \"optimizer\": {\"betas\": [0.9, \"0.9\"]}",
                      "'optimizer.betas[1]' must be a number in [0, 1), got \"0.9\"", NULL);
    expect_error_with(", \"optimizer\": {\"betas\": [0.9]}", "'optimizer.betas' must be an array of two numbers",
                      "got [0.9]");
    expect_error_with(", \"logging\": {\"tensorboard\": 1}", "'logging.tensorboard' must be true or false, got 1",
                      NULL);
    expect_error_with(", \"model\": 5", "'model' must be an object, got 5", NULL);
    expect_error_with(", \"schedule\": {\"type\": \"linear\"}", "'schedule.type' must be one of \"constant\"",
                      "got \"linear\"");
    expect_error_with(", \"optimizer\": {\"no_decay\": [\"norm\", 3]}",
                      "'optimizer.no_decay[1]' must be a non-empty string", "got 3");
    expect_error_with(", \"model\": {\"config\": \"tiny\", \"train\": []}", "'model.train' must be a non-empty array",
                      NULL);
    expect_error_with(", \"data\": {\"shards\": \"\"}", "'data.shards' must be a non-empty string", "got \"\"");
    expect_error_with(", \"data\": {\"shards\": \"d\", \"synth\": true}", "'data.synth' must be an object or null",
                      NULL);
    /* out of range */
    expect_error_with(", \"optimizer\": {\"betas\": [0.9, 1.0]}", "'optimizer.betas[1]' must be a number in [0, 1)",
                      "got 1.0");
    expect_error_with(", \"optimizer\": {\"lr\": 0}", "'optimizer.lr' must be a number > 0, got 0", NULL);
    expect_error_with(", \"optimizer\": {\"eps\": -1e-8}", "'optimizer.eps' must be a number > 0", NULL);
    expect_error_with(", \"optimizer\": {\"weight_decay\": -0.1}", "'optimizer.weight_decay' must be a number >= 0",
                      NULL);
    expect_error_with(", \"optimizer\": {\"clip_grad_norm\": -1}", "'optimizer.clip_grad_norm'", NULL);
    expect_error_with(", \"schedule\": {\"min_lr_ratio\": 1.5}", "'schedule.min_lr_ratio' must be a number in [0, 1]",
                      NULL);
    expect_error_with(", \"schedule\": {\"power\": 0}", "'schedule.power' must be a number > 0", NULL);
    expect_error_with(", \"micro_batch\": 0", "'micro_batch' must be an integer in [1, 65536], got 0", NULL);
    expect_error_with(", \"accumulation\": -2", "'accumulation' must be an integer", "got -2");
    expect_error_with(", \"steps\": 0", "'steps' must be an integer in [1, ", "got 0");
    expect_error_with(", \"data\": {\"shards\": \"d\", \"n_images\": 3}",
                      "'data.n_images' must be an integer in [1, 2]", "got 3");
    expect_error_with(", \"checkpoint\": {\"keep\": 0}", "'checkpoint.keep' must be an integer in [1, ", NULL);
    expect_error_with(", \"seed\": -1", "'seed' must be an integer in [0, 9223372036854775807], got -1", NULL);
    expect_error_with(", \"steps\": 100, \"schedule\": {\"warmup_steps\": 101}",
                      "'schedule.warmup_steps' must be an integer in [0, steps = 100], got 101", NULL);
    expect_error_with(", \"validation\": {\"every\": 10}", "'validation.every' is 10 but 'data.val_shards' is null",
                      NULL);
    expect_error_with(", \"data\": {\"shards\": \"d\", \"synth\": {\"tokenizer_vocab\": 100}}",
                      "'data.synth.tokenizer_vocab' must be 0", "got 100");
    expect_error_with(", \"data\": {\"shards\": \"d\", \"synth\": {\"tasks\": 999}}", "'data.synth.tasks' must be 0",
                      "got 999");
    /* missing required keys */
    expect_error("{\"model\": {}, \"tokenizer\": \"t\", \"data\": {\"shards\": \"d\"}}",
                 "missing required key 'model.config'", NULL);
    expect_error("{\"model\": {\"config\": \"tiny\"}, \"data\": {\"shards\": \"d\"}}",
                 "missing required key 'tokenizer'", NULL);
    expect_error("{\"model\": {\"config\": \"tiny\"}, \"tokenizer\": \"t\"}", "missing required key 'data.shards'",
                 NULL);
    /* bad JSON, with its line; not an object; duplicate keys */
    expect_error("{\n  \"steps\": 3,\n  \"seed\": ,\n}", "invalid JSON at line 3", NULL);
    expect_error("[1, 2]", "the top level must be a JSON object", NULL);
    expect_error_with(", \"steps\": 3, \"steps\": 4", "invalid JSON", "duplicate");
    /* the I/O error names the file */
    bv_recipe r;
    assert_int_equal(bv_recipe_load(&r, "/nonexistent/recipe.json", 0, NULL), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), "/nonexistent/recipe.json");
    expect_zeroed(&r);
}

static void test_groups(void **state) {
    (void)state;
    char *s =
        with(", \"optimizer\": {\"lr\": 3e-4, \"weight_decay\": 0.1, \"groups\": ["
             "{\"name\": \"vision\", \"prefixes\": [\"vision_tower.\", \"multi_modal_projector.\"], \"lr\": 8e-5},"
             "{\"name\": \"head\", \"prefixes\": [\"action_head.\"], \"weight_decay\": 0}]}");
    bv_recipe r;
    assert_int_equal(parse(s, &r), BV_OK);
    free(s);
    assert_int_equal(r.optimizer.n_groups, 2);
    assert_string_equal(r.optimizer.groups[0].name, "vision");
    assert_int_equal(list_len(r.optimizer.groups[0].prefixes), 2);
    assert_string_equal(r.optimizer.groups[0].prefixes[1], "multi_modal_projector.");
    assert_true(r.optimizer.groups[0].lr == 8e-5);
    assert_true(r.optimizer.groups[0].weight_decay < 0); /* the optimizer's */
    assert_true(r.optimizer.groups[1].lr == 3e-4);       /* absent: the optimizer's */
    assert_true(r.optimizer.groups[1].weight_decay == 0);
    bv_recipe_free(&r);

    expect_error_with(", \"optimizer\": {\"groups\": [{\"prefixes\": [\"v.\"]}]}",
                      "missing required key 'optimizer.groups[0].name'", NULL);
    expect_error_with(", \"optimizer\": {\"groups\": [{\"name\": \"v\", \"prefixes\": []}]}",
                      "'optimizer.groups[0].prefixes' must be a non-empty array", NULL);
    expect_error_with(", \"optimizer\": {\"groups\": [{\"name\": \"v\", \"prefixes\": [\"\"]}]}",
                      "'optimizer.groups[0].prefixes[0]' must be a non-empty string", NULL);
    expect_error_with(", \"optimizer\": {\"groups\": [{\"name\": \"v\", \"prefixes\": [\"a\"]}, "
                      "{\"name\": \"v\", \"prefixes\": [\"b\"]}]}",
                      "'optimizer.groups[1].name' \"v\" is the name of optimizer.groups[0] too", NULL);
    expect_error_with(", \"optimizer\": {\"groups\": [{\"name\": \"v\", \"prefixes\": [\"a\"], \"lr\": -1}]}",
                      "'optimizer.groups[0].lr' must be a number > 0", NULL);
    expect_error_with(
        ", \"optimizer\": {\"groups\": [{\"name\": \"v\", \"prefixes\": [\"a\"], \"weight_decay\": \"x\"}]}",
        "'optimizer.groups[0].weight_decay' must be a number >= 0 or null", NULL);
    expect_error_with(", \"optimizer\": {\"groups\": [3]}", "'optimizer.groups[0]' must be an object, got 3", NULL);
    /* at most BV_RECIPE_MAX_GROUPS */
    char buf[4096] = ", \"optimizer\": {\"groups\": [";
    for (int g = 0; g <= BV_RECIPE_MAX_GROUPS; g++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s{\"name\": \"g%d\", \"prefixes\": [\"p%d.\"]}",
                 g ? ", " : "", g, g);
    strcat(buf, "]}");
    expect_error_with(buf, "'optimizer.groups' must be an array of at most 16 group objects", NULL);
}

static void test_overrides(void **state) {
    (void)state;
    bv_recipe r;
    /* numbers, strings (bare and quoted), arrays, null, booleans; intermediate objects made */
    const char *ov[] = {"optimizer.lr=2e-4",
                        "steps=500",
                        "steps=1e3", /* the later wins; an integral real is an integer */
                        "data.shards=runs/other dir",
                        "tokenizer=\"quoted.json\"",
                        "data.val_shards=val",
                        "validation.every=25",
                        "optimizer.betas=[0.8, 0.95]",
                        "model.train=[\"language_model.\", \"action_head.\"]",
                        "model.init_from=null",
                        "data.augment=false",
                        "schedule.type=polynomial",
                        "data.dataset_name=[abc", /* not JSON: the string */
                        "model.freeze[0]=vision_tower.",
                        "data.synth.episodes=12",
                        "optimizer.no_decay=[]"};
    const char *file = "{\"model\": {\"config\": \"tiny\", \"init_from\": \"ckpt\"}, \"tokenizer\": \"t.json\","
                       " \"data\": {\"shards\": \"d\", \"synth\": null}}";
    assert_int_equal(parse_ov(file, &r, (int)BV_ARRAY_LEN(ov), ov), BV_OK);
    assert_true(r.optimizer.lr == 2e-4);
    assert_int_equal(r.steps, 1000);
    assert_string_equal(r.data.shards, "runs/other dir");
    assert_string_equal(r.tokenizer, "quoted.json");
    assert_string_equal(r.data.val_shards, "val");
    assert_int_equal(r.validation.every, 25);
    assert_true(r.optimizer.beta1 == 0.8 && r.optimizer.beta2 == 0.95);
    assert_int_equal(list_len(r.model.train), 2);
    assert_string_equal(r.model.train[1], "action_head.");
    assert_null(r.model.init_from);
    assert_false(r.data.augment);
    assert_int_equal(r.schedule.type, BV_LR_POLYNOMIAL);
    assert_string_equal(r.data.dataset_name, "[abc");
    assert_int_equal(list_len(r.model.freeze), 1);
    assert_string_equal(r.model.freeze[0], "vision_tower.");
    assert_true(r.data.synth); /* the null synth became an object */
    assert_int_equal(r.data.synth_opts.episodes, 12);
    assert_int_equal(list_len(r.optimizer.no_decay), 0);
    assert_non_null(r.optimizer.no_decay);
    bv_recipe_free(&r);

    /* array elements: a group's key, a new group appended, a beta */
    const char *gov[] = {"optimizer.groups[0].lr=1e-5", "optimizer.groups[1]={\"name\": \"h\", \"prefixes\": [\"x.\"]}",
                         "optimizer.groups[1].prefixes[1]=y.", "optimizer.betas[1]=0.99"};
    char *s =
        with(", \"optimizer\": {\"betas\": [0.9, 0.999], \"groups\": [{\"name\": \"v\", \"prefixes\": [\"v.\"]}]}");
    assert_int_equal(parse_ov(s, &r, 4, gov), BV_OK);
    assert_int_equal(r.optimizer.n_groups, 2);
    assert_true(r.optimizer.groups[0].lr == 1e-5);
    assert_string_equal(r.optimizer.groups[1].name, "h");
    assert_string_equal(r.optimizer.groups[1].prefixes[1], "y.");
    assert_true(r.optimizer.beta2 == 0.99);
    bv_recipe_free(&r);

    /* errors: unknown paths, bad syntax, bad values, indices past the end, paths through non-objects */
    const struct {
        const char *ov, *n1;
        bv_status st;
    } bad[] = {
        {"optimizer.lrr=1", "--set 'optimizer.lrr=1': unknown key 'optimizer.lrr'", BV_ERR_ARG},
        {"model.config.x=1", "unknown key 'model.config.x'", BV_ERR_ARG},
        {"steps[0]=1", "unknown key 'steps[0]'", BV_ERR_ARG},
        {"optimizer.groups[0].lrr=1", "unknown key 'optimizer.groups[0].lrr'", BV_ERR_ARG},
        {"steps", "expected KEY.PATH=VALUE", BV_ERR_ARG},
        {"=3", "expected KEY.PATH=VALUE", BV_ERR_ARG},
        {"a..b=1", "bad key path 'a..b'", BV_ERR_ARG},
        {"optimizer.groups[x].lr=1", "bad key path", BV_ERR_ARG},
        {"steps.=1", "bad key path", BV_ERR_ARG},
        {"optimizer.groups[3].lr=1", "index 3 is past the end of an array of 1", BV_ERR_ARG},
        {"optimizer.betas.x=1", "unknown key 'optimizer.betas.x'", BV_ERR_ARG},
        {"steps=ten", "'steps' must be an integer in [1, 1000000000000], got \"ten\"", BV_ERR_FORMAT},
        {"optimizer.betas[1]=1", "'optimizer.betas[1]' must be a number in [0, 1), got 1", BV_ERR_FORMAT},
        {"optimizer.lr=null", "'optimizer.lr' must be a number > 0, got null", BV_ERR_FORMAT},
        {"model.config=null", "'model.config' must be a non-empty string, got null", BV_ERR_FORMAT},
        {"data.stuff=1", "unknown key 'data.stuff'", BV_ERR_ARG},
    };
    for (size_t i = 0; i < BV_ARRAY_LEN(bad); i++) expect_error_ov(s, 1, &bad[i].ov, bad[i].st, bad[i].n1, NULL);
    free(s);
    const char *through = "data.shards=x";
    expect_error_ov("{\"model\": {\"config\": \"tiny\"}, \"tokenizer\": \"t\", \"data\": \"d\"}", 1, &through,
                    BV_ERR_ARG, "--set 'data.shards=x': 'data' is not an object in the recipe", NULL);
}

/* every field of a and b agrees (compared through their JSON: the structs have padding) */
static void expect_same(const bv_recipe *a, const bv_recipe *b) {
    char *ja = bv_recipe_to_json(a), *jb = bv_recipe_to_json(b);
    assert_string_equal(ja, jb);
    free(ja);
    free(jb);
    assert_true(a->optimizer.lr == b->optimizer.lr && a->optimizer.beta2 == b->optimizer.beta2);
    assert_true(a->schedule.min_lr_ratio == b->schedule.min_lr_ratio && a->schedule.power == b->schedule.power);
    assert_int_equal(a->optimizer.n_groups, b->optimizer.n_groups);
    for (int g = 0; g < a->optimizer.n_groups; g++)
        assert_true(a->optimizer.groups[g].lr == b->optimizer.groups[g].lr &&
                    a->optimizer.groups[g].weight_decay == b->optimizer.groups[g].weight_decay);
    assert_int_equal(a->data.synth, b->data.synth);
    assert_int_equal(a->data.synth_opts.seed, b->data.synth_opts.seed);
}

static void round_trip(const bv_recipe *a) {
    char *js = bv_recipe_to_json(a);
    bv_recipe b;
    if (bv_recipe_parse(&b, js, strlen(js), "<round trip>", 0, NULL) != BV_OK)
        fail_msg("%s\ndoes not parse back: %s", js, bv_error_msg());
    bv_test_fuzz_seed(js, strlen(js));
    expect_same(a, &b);
    assert_string_equal(a->name, b.name);
    /* every key is written: the text names each key of the schema */
    for (int i = 0; bv_recipe_key(i); i++) {
        const char *k = bv_recipe_key(i), *leaf = strrchr(k, '.');
        char q[96];
        snprintf(q, sizeof q, "\"%s\"", leaf ? leaf + 1 : k);
        if (!strstr(js, q) && strncmp(k, "data.synth.", 11) && strncmp(k, "optimizer.groups[]", 18))
            fail_msg("to_json does not write '%s':\n%s", k, js);
    }
    free(js);
    bv_recipe_free(&b);
}

static void test_round_trip(void **state) {
    (void)state;
    const char *files[] = {"libero_spatial", "libero_object", "libero_goal", "libero_long", "tiny_synth"};
    for (size_t i = 0; i < BV_ARRAY_LEN(files); i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/recipes/%s.json", BV_SOURCE_DIR, files[i]);
        bv_recipe r;
        assert_int_equal(bv_recipe_load(&r, path, 0, NULL), BV_OK);
        round_trip(&r);
        bv_recipe_free(&r);
    }
    /* every value away from its default, awkward numbers included */
    const char *all =
        "{\"name\": \"all\", \"model\": {\"config\": \"cfg/config.json\", \"init_from\": \"ck\", \"allow_missing\": "
        "true,"
        " \"train\": [\"a.\", \"b.\"], \"freeze\": [\"a.x\"], \"seed\": 9223372036854775807},"
        " \"tokenizer\": \"t\", \"data\": {\"shards\": \"s\", \"val_shards\": \"v\", \"dataset_name\": \"n\","
        " \"image_size\": 56, \"n_images\": 1, \"augment\": false, \"threads\": 0, \"prefetch\": 3, \"seed\": 5,"
        " \"synth\": {\"episodes\": 3, \"val_episodes\": 0, \"image_size\": 64, \"tasks\": 2, \"seed\": 0,"
        " \"rlds\": \"r\", \"tokenizer_vocab\": 0}},"
        " \"optimizer\": {\"lr\": 0.1, \"betas\": [0, 0.3333333333333333], \"eps\": 1e-300, \"weight_decay\": 0,"
        " \"no_decay\": [\"x\"], \"clip_grad_norm\": 1e300,"
        " \"groups\": [{\"name\": \"g\", \"prefixes\": [\"p\"], \"lr\": 7e-7, \"weight_decay\": 0.5}]},"
        " \"schedule\": {\"type\": \"polynomial\", \"warmup_steps\": 3, \"min_lr_ratio\": 1, \"power\": 0.5,"
        " \"weight_decay_off_step\": 2}, \"steps\": 3, \"micro_batch\": 1, \"accumulation\": 1, \"seed\": 0,"
        " \"validation\": {\"every\": 1, \"batches\": 1}, \"checkpoint\": {\"every\": 1, \"keep\": 1},"
        " \"logging\": {\"every\": 2, \"tensorboard\": false}, \"guard\": {\"max_nonfinite\": 0}}";
    bv_recipe r;
    if (parse(all, &r) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_int_equal(r.model.seed, INT64_MAX);
    assert_true(r.optimizer.beta2 == 1.0 / 3.0);
    round_trip(&r);
    bv_recipe_free(&r);
    /* defaults (synth off), then a recipe built in code */
    assert_int_equal(parse(k_min, &r), BV_OK);
    round_trip(&r);
    r.optimizer.lr = 0.1 + 0.2;
    r.schedule.type = BV_LR_COSINE;
    round_trip(&r);
    bv_recipe_free(&r);
}

static void test_keys_documented(void **state) {
    (void)state;
    FILE *f = fopen(BV_SOURCE_DIR "/docs/recipes.md", "rb");
    assert_non_null(f);
    static char doc[1 << 17];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = 0;
    int keys = 0;
    for (int i = 0; bv_recipe_key(i); i++, keys++) {
        char q[96];
        snprintf(q, sizeof q, "`%s`", bv_recipe_key(i));
        if (!strstr(doc, q)) fail_msg("docs/recipes.md does not document %s", q);
    }
    assert_true(keys > 40);
    assert_null(bv_recipe_key(-1));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_committed_recipes),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_keys_documented),
    };
    return cmocka_run_group_tests_name("recipe", tests, NULL, NULL);
}
