/* st_compare - compare two safetensors files tensor by tensor (a test tool, not installed).
 *   usage: st_compare A.safetensors B.safetensors RTOL
 * Every tensor of A must be in B with the same shape; for each, the norm-relative difference
 * ||a - b|| / max(||b||, 1e-30) in double. Prints the largest (and its tensor) and whether the two
 * are bit-identical; exit 0 when the largest is <= RTOL, 1 otherwise, 2 on bad input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/safetensors.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: st_compare A.safetensors B.safetensors RTOL\n");
        return 2;
    }
    double rtol = atof(argv[3]);
    bv_st_file a, b;
    if (bv_st_open(&a, argv[1]) || bv_st_open(&b, argv[2])) {
        fprintf(stderr, "st_compare: %s\n", bv_error_msg());
        return 2;
    }
    double worst = 0;
    const char *worst_name = "";
    bool identical = a.n == b.n;
    int rc = 0;
    for (int i = 0; i < a.n && !rc; i++) {
        const bv_st_entry *e = &a.entries[i];
        int j = bv_st_find(&b, e->name);
        int64_t n = 1;
        for (int d = 0; d < e->ndim; d++) n *= e->shape[d];
        if (j < 0 || b.entries[j].ndim != e->ndim || memcmp(b.entries[j].shape, e->shape, sizeof e->shape[0] * e->ndim)) {
            fprintf(stderr, "st_compare: %s: tensor '%s' missing or of another shape in %s\n", argv[1], e->name, argv[2]);
            rc = 2;
            break;
        }
        double *x = malloc((size_t)(n ? n : 1) * sizeof *x), *y = malloc((size_t)(n ? n : 1) * sizeof *y);
        if (bv_st_read(&a, e->name, BV_DTYPE_F64, -1, NULL, n, x) || bv_st_read(&b, e->name, BV_DTYPE_F64, -1, NULL, n, y)) {
            fprintf(stderr, "st_compare: %s\n", bv_error_msg());
            rc = 2;
        }
        identical = identical && a.entries[i].end - a.entries[i].begin == b.entries[j].end - b.entries[j].begin &&
                    !memcmp(a.data + a.entries[i].begin, b.data + b.entries[j].begin, a.entries[i].end - a.entries[i].begin);
        double dd = 0, nn = 0;
        for (int64_t k = 0; k < n && !rc; k++) dd += (x[k] - y[k]) * (x[k] - y[k]), nn += y[k] * y[k];
        double rel = sqrt(dd) / fmax(sqrt(nn), 1e-30);
        if (!(rel <= worst)) worst = rel, worst_name = e->name;
        free(x);
        free(y);
    }
    if (!rc) {
        printf("%s: max norm-relative difference %.3g (%s)%s\n", argv[2], worst, worst_name,
               identical ? ", bit-identical" : "");
        rc = worst <= rtol ? 0 : 1;
    }
    bv_st_close(&a);
    bv_st_close(&b);
    return rc;
}
