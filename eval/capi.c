/* capi.c - eval/bitvla.h on top of eval/policy.h. */
#include <pthread.h>

#include "autograd/autograd.h"
#include "eval/bitvla.h"
#include "eval/policy.h"
#include "src/kernels/ternary_gemm.h"

struct bitvla_policy {
    bv_policy *p;
};

/* Process-wide choices made once, before any thread acts (the kernel and the integer forward are
 * decided at first use: doing it here keeps two threads from deciding at once). */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void init_once(void) {
    (void)bv_ternary_kernel_active();
    (void)bv_bitlinear_integer_forward();
}

bitvla_status bitvla_policy_load(const char *path, bitvla_policy **out) {
    if (!out) return (bitvla_status)bv_error_set(BV_ERR_ARG, "bitvla_policy_load: out is NULL");
    *out = NULL;
    if (!path) return (bitvla_status)bv_error_set(BV_ERR_ARG, "bitvla_policy_load: path is NULL");
    pthread_once(&g_once, init_once);
    bv_policy *p;
    bv_status st = bv_policy_load(&p, path, NULL);
    if (st) return (bitvla_status)st;
    *out = bv_xmalloc(sizeof **out);
    (*out)->p = p;
    return BITVLA_OK;
}

bitvla_status bitvla_policy_act(bitvla_policy *p, const bitvla_observation *obs, float *actions, size_t n_actions) {
    if (!p || !obs || !actions) return (bitvla_status)bv_error_set(BV_ERR_ARG, "bitvla_policy_act: a NULL argument");
    size_t need = (size_t)bv_policy_chunk(p->p) * (size_t)bv_policy_action_dim(p->p);
    if (n_actions < need)
        return (bitvla_status)bv_error_set(BV_ERR_ARG, "bitvla_policy_act: room for %zu actions values, the chunk has %zu",
                                           n_actions, need);
    bv_policy_obs o = {.full_image = obs->full_image, .full_w = obs->full_width, .full_h = obs->full_height,
                       .wrist_image = obs->wrist_image, .wrist_w = obs->wrist_width, .wrist_h = obs->wrist_height,
                       .state = obs->state, .state_dim = obs->state_dim, .instruction = obs->instruction};
    bv_status st = bv_policy_act(p->p, &o, actions, NULL);
    return (bitvla_status)(st == BV_ERR_NONFINITE ? BV_ERR_INTERNAL : st);
}

void bitvla_policy_free(bitvla_policy *p) {
    if (!p) return;
    bv_policy_free(p->p);
    free(p);
}

int bitvla_policy_chunk(const bitvla_policy *p) { return bv_policy_chunk(p->p); }
int bitvla_policy_action_dim(const bitvla_policy *p) { return bv_policy_action_dim(p->p); }
int bitvla_policy_state_dim(const bitvla_policy *p) { return bv_policy_state_dim(p->p); }
int bitvla_policy_n_images(const bitvla_policy *p) { return bv_policy_n_images(p->p); }

const char *bitvla_status_string(bitvla_status s) {
    switch (s) {
    case BITVLA_OK: return "ok";
    case BITVLA_ERR_IO: return "i/o error";
    case BITVLA_ERR_FORMAT: return "malformed input";
    case BITVLA_ERR_ARG: return "bad argument";
    case BITVLA_ERR_SHAPE: return "wrong shape";
    case BITVLA_ERR_NOMEM: return "out of memory";
    case BITVLA_ERR_UNSUPPORTED: return "unsupported";
    case BITVLA_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *bitvla_last_error(void) { return bv_error_msg(); }
