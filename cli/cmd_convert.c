/* bitvla convert - robot datasets (RLDS/TFDS, original LIBERO HDF5) -> bitvla shard directories.
 * The work is in data/convert.c; this file parses flags and reports. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "src/common.h"
#include "data/convert.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitvla convert rlds SRC_DIR --schema libero|bridge|FILE.json --out SHARD_DIR [options]\n"
            "       bitvla convert libero-hdf5 FILE.hdf5... --out SHARD_DIR [--filter-noops] [options]\n"
            "\n"
            "Converts a robot dataset into HDF5 shards, dataset_statistics.json (OpenVLA-OFT format) and\n"
            "manifest.json (written last: a directory without it is incomplete). See docs/data.md.\n"
            "\n"
            "  rlds         a TFDS/RLDS directory (features.json, dataset_info.json, *.tfrecord-*), mapped to\n"
            "               roles by a schema: built-in 'libero' (modified_libero_rlds; gripper action\n"
            "               1 - clip(a, 0, 1)) or 'bridge', or a JSON schema file (docs/data.md)\n"
            "  libero-hdf5  original LIBERO demo files (data/demo_N/...): cameras rotated 180 degrees,\n"
            "               proprio = ee_states ++ gripper_states, LIBERO gripper transform\n"
            "\n"
            "options:\n"
            "  --out DIR               output directory (created; must be new or empty)\n"
            "  --force                 replace a converted dataset already in DIR (once the new one is complete)\n"
            "  --name NAME             dataset name in the statistics (default: the source's; letters, digits,\n"
            "                          _ - .)\n"
            "  --split NAME            rlds: the split to convert (default: the schema's, 'train')\n"
            "  --images jpeg|raw       image storage (default: the schema's, jpeg: the source JPEGs as is)\n"
            "  --jpeg-quality Q        when frames must be (re-)encoded as JPEG (default 95)\n"
            "  --episodes-per-shard N  episodes per shard file (default 64)\n"
            "  --max-episodes N        stop after N episodes (quick trials)\n"
            "  --filter-noops          libero-hdf5: drop no-op steps as OFT does\n"
            "Progress goes to stderr (a bar on a terminal; BV_PROGRESS=0 silences it).\n");
}

int bv_cmd_convert(int argc, char **argv) {
    if (bv_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *kind = argv[1];
    int is_rlds = !strcmp(kind, "rlds"), is_hdf5 = !strcmp(kind, "libero-hdf5");
    if (!is_rlds && !is_hdf5) {
        fprintf(stderr, "bitvla convert: unknown source kind '%s' (expected rlds or libero-hdf5)\n", kind);
        return 2;
    }
    bv_convert_opts o = {.images = -1};
    const char *schema = NULL;
    const char **pos = calloc((size_t)argc, sizeof *pos);
    int n_pos = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV                                                                       \
    do {                                                                            \
        if (!v) {                                                                   \
            fprintf(stderr, "bitvla convert: %s needs a value\n", a);               \
            free(pos);                                                              \
            return 2;                                                               \
        }                                                                           \
        i++;                                                                        \
    } while (0)
        if (!strcmp(a, "--out")) {
            NEEDV;
            o.out_dir = v;
        } else if (!strcmp(a, "--schema")) {
            NEEDV;
            schema = v;
        } else if (!strcmp(a, "--name")) {
            NEEDV;
            if (bv_convert_name_check(v)) {
                fprintf(stderr, "bitvla convert: --name: %s\n", bv_error_msg());
                free(pos);
                return 2;
            }
            o.dataset_name = v;
        } else if (!strcmp(a, "--split")) {
            NEEDV;
            o.split = v;
        } else if (!strcmp(a, "--images")) {
            NEEDV;
            if (!strcmp(v, "jpeg"))
                o.images = BV_IMAGES_JPEG;
            else if (!strcmp(v, "raw"))
                o.images = BV_IMAGES_RAW;
            else {
                fprintf(stderr, "bitvla convert: --images expects jpeg or raw, got '%s'\n", v);
                free(pos);
                return 2;
            }
        } else if (!strcmp(a, "--jpeg-quality")) {
            NEEDV;
            if (!bv_cli_int("convert", a, v, 1, 100, &o.jpeg_quality)) {
                free(pos);
                return 2;
            }
        } else if (!strcmp(a, "--episodes-per-shard")) {
            NEEDV;
            if (!bv_cli_int("convert", a, v, 1, 1000000, &o.episodes_per_shard)) {
                free(pos);
                return 2;
            }
        } else if (!strcmp(a, "--max-episodes")) {
            NEEDV;
            if (!bv_cli_int64("convert", a, v, 1, 1LL << 40, &o.max_episodes)) {
                free(pos);
                return 2;
            }
        } else if (!strcmp(a, "--force")) {
            o.force = true;
        } else if (!strcmp(a, "--filter-noops")) {
            o.filter_noops = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "bitvla convert: unknown option '%s' (see 'bitvla convert --help')\n", a);
            free(pos);
            return 2;
        } else {
            pos[n_pos++] = a;
        }
#undef NEEDV
    }
    int rc = 2;
    if (!o.out_dir) {
        fprintf(stderr, "bitvla convert %s: --out SHARD_DIR is required\n", kind);
        goto done;
    }
    if (is_rlds) {
        if (n_pos != 1) {
            fprintf(stderr, "bitvla convert rlds: expected one SRC_DIR, got %d arguments\n", n_pos);
            goto done;
        }
        if (!schema) {
            fprintf(stderr, "bitvla convert rlds: --schema libero|bridge|FILE.json is required\n");
            goto done;
        }
        if (o.filter_noops) {
            fprintf(stderr, "bitvla convert rlds: --filter-noops applies to libero-hdf5 only\n");
            goto done;
        }
        bv_schema s;
        bv_status st = bv_schema_load(&s, schema);
        if (st) {
            fprintf(stderr, "bitvla convert: %s\n", bv_error_msg());
            rc = st == BV_ERR_ARG ? 2 : 1;
            goto done;
        }
        st = bv_convert_rlds(pos[0], &s, &o);
        bv_schema_free(&s);
        if (st) {
            fprintf(stderr, "bitvla convert: %s\n", bv_error_msg());
            rc = 1;
            goto done;
        }
    } else {
        if (n_pos < 1) {
            fprintf(stderr, "bitvla convert libero-hdf5: expected one or more FILE.hdf5\n");
            goto done;
        }
        if (schema || o.split) {
            fprintf(stderr, "bitvla convert libero-hdf5: --schema and --split apply to rlds only\n");
            goto done;
        }
        bv_status st = bv_convert_libero_hdf5(n_pos, pos, &o);
        if (st) {
            fprintf(stderr, "bitvla convert: %s\n", bv_error_msg());
            rc = 1;
            goto done;
        }
    }
    printf("converted into %s (manifest.json, dataset_statistics.json)\n", o.out_dir);
    rc = 0;
done:
    free(pos);
    return rc;
}
