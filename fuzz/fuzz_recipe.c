/* libFuzzer target for the training-recipe parser (recipes/recipe.c): parses the input as a recipe
 * with bv_recipe_parse, without and with a few --set overrides (one of them chosen by the input's
 * first byte, so the fuzzer steers them too). A rejected input must leave a message naming the
 * input and the recipe zeroed; an accepted one must satisfy the documented checks, and its
 * bv_recipe_to_json text must parse back to the same JSON.
 * Build and run: fuzz/build.sh (not part of the CMake build; CTest's fuzz_smoke runs it briefly). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recipes/recipe.h"

static const char *const k_overrides[] = {
    "optimizer.lr=2e-4",       "steps=1e3",
    "data.val_shards=v",       "validation.every=5",
    "optimizer.groups[0].lr=1e-5", "optimizer.groups[1]={\"name\": \"x\", \"prefixes\": [\"x.\"]}",
    "model.train[0]=a.",       "data.synth.episodes=3",
    "optimizer.betas[1]=0.95", "schedule.type=cosine",
    "model.init_from=null",    "data.shards=[not json",
    "nope.key=1",              "a..b=1",
};

static void check(const uint8_t *data, size_t size, int n_ov, const char *const *ov) {
    bv_recipe r;
    static const bv_recipe zero;
    if (bv_recipe_parse(&r, (const char *)data, size, "<fuzz>", n_ov, ov) != BV_OK) {
        if (strncmp(bv_error_msg(), "<fuzz>", 6) != 0) abort();
        if (memcmp(&r, &zero, sizeof r) != 0) abort();
        return;
    }
    if (!r.model.config || !r.tokenizer || !r.data.shards || !r.name || !r.optimizer.no_decay) abort();
    if (r.steps < 1 || r.micro_batch < 1 || r.accumulation < 1 || !(r.optimizer.lr > 0)) abort();
    if (!(r.optimizer.beta1 >= 0 && r.optimizer.beta1 < 1 && r.optimizer.beta2 >= 0 && r.optimizer.beta2 < 1)) abort();
    if (r.schedule.warmup_steps < 0 || r.schedule.warmup_steps > r.steps) abort();
    if (r.optimizer.n_groups < 0 || r.optimizer.n_groups > BV_RECIPE_MAX_GROUPS) abort();
    for (int g = 0; g < r.optimizer.n_groups; g++)
        if (!r.optimizer.groups[g].name || !r.optimizer.groups[g].prefixes || !r.optimizer.groups[g].prefixes[0])
            abort();
    char *js = bv_recipe_to_json(&r);
    bv_recipe b;
    if (bv_recipe_parse(&b, js, strlen(js), "<round trip>", 0, NULL) != BV_OK) abort();
    char *js2 = bv_recipe_to_json(&b);
    if (strcmp(js, js2) != 0) abort();
    free(js);
    free(js2);
    bv_recipe_free(&b);
    bv_recipe_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check(data, size, 0, NULL);
    if (size > 0) {
        size_t n = sizeof k_overrides / sizeof k_overrides[0];
        const char *ov[3] = {k_overrides[data[0] % n], k_overrides[(data[0] / n) % n], k_overrides[0]};
        check(data, size, 3, ov);
    }
    return 0;
}
