/* cmd_synth.c - `bitvla synth`: demonstrations of the built-in tabletop task as an RLDS dataset. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "data/synth.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitvla synth --episodes N --out RLDS_DIR [options]\n"
            "\n"
            "Record N demonstrations of the built-in tabletop task (pick up the named object, place it on\n"
            "the plate or in the tray) by a scripted expert, and write them as an RLDS (TFDS) dataset in\n"
            "LIBERO's schema: RLDS_DIR/features.json, dataset_info.json and NAME-train.tfrecord-* shards.\n"
            "Same options, same bytes. See docs/synth.md.\n"
            "\n"
            "options:\n"
            "  --episodes N        number of episodes (required)\n"
            "  --out DIR           output directory, created (required; must be new or empty)\n"
            "  --force             replace an RLDS dataset already in DIR\n"
            "  --seed S            dataset seed (default 0)\n"
            "  --image-size N      camera images N x N (default 256, as LIBERO's RLDS; 16..1024)\n"
            "  --jpeg-quality Q    1..100 (default 95)\n"
            "  --tasks K           use the first K of the %d tasks in turn (default all)\n"
            "  --shards K          TFRecord files (default 0: one per 64 episodes)\n"
            "  --noise X           expert action noise std, action units (default 0.05)\n"
            "  --unique-colour     the easier scenes: no other object has the target's colour, so the\n"
            "                      colour word alone names it (default: a same-colour distractor too)\n"
            "  --threads T         worker threads (default OpenMP's)\n"
            "  --name NAME         dataset name, the shard prefix (default bitvla_synth)\n"
            "  --preview DIR       also write PNGs of episode 0, one per expert phase\n"
            "  --quiet             no progress on stderr\n",
            bv_synth_num_tasks());
}

int bv_cmd_synth(int argc, char **argv) {
    if (bv_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    bv_synth_opts o;
    bv_synth_opts_default(&o);
    o.episodes = 0;
    const char *out = NULL, *preview = NULL;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--quiet")) {
            o.quiet = true;
            continue;
        }
        if (!strcmp(f, "--force")) {
            o.force = true;
            continue;
        }
        if (!strcmp(f, "--unique-colour")) {
            o.unique_colour = true;
            continue;
        }
        static const char *const with_value[] = {"--episodes",     "--out",   "--seed",   "--image-size",
                                                 "--jpeg-quality", "--tasks", "--shards", "--noise",
                                                 "--threads",      "--name",  "--preview"};
        int known = 0;
        for (size_t k = 0; k < BV_ARRAY_LEN(with_value); k++) known |= !strcmp(f, with_value[k]);
        if (!known) {
            fprintf(stderr, "bitvla synth: unknown option '%s' (see 'bitvla synth --help')\n", f);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bitvla synth: %s needs a value\n", f);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(f, "--out")) out = v;
        else if (!strcmp(f, "--preview")) preview = v;
        else if (!strcmp(f, "--name")) o.name = v;
        else if (!strcmp(f, "--noise")) {
            double d;
            if (!bv_cli_double("synth", f, v, 0, 1, &d)) return 2;
            o.noise = (float)d;
        } else if (!strcmp(f, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (!*v || *end || errno || v[0] == '-') {
                fprintf(stderr, "bitvla synth: --seed: '%s' is not an integer in 0..%llu\n", v,
                        (unsigned long long)UINT64_MAX);
                return 2;
            }
            o.seed = s;
        } else if (!strcmp(f, "--episodes")) {
            if (!bv_cli_int("synth", f, v, 1, 10000000, &o.episodes)) return 2;
        } else if (!strcmp(f, "--image-size")) {
            if (!bv_cli_int("synth", f, v, 16, 1024, &o.image_size)) return 2;
        } else if (!strcmp(f, "--jpeg-quality")) {
            if (!bv_cli_int("synth", f, v, 1, 100, &o.jpeg_quality)) return 2;
        } else if (!strcmp(f, "--tasks")) {
            if (!bv_cli_int("synth", f, v, 1, bv_synth_num_tasks(), &o.tasks)) return 2;
        } else if (!strcmp(f, "--shards")) {
            if (!bv_cli_int("synth", f, v, 0, 99999, &o.shards)) return 2;
        } else if (!strcmp(f, "--threads")) {
            if (!bv_cli_int("synth", f, v, 1, 1024, &o.threads)) return 2;
        }
    }
    if (!o.episodes || !out) {
        fprintf(stderr, "bitvla synth: %s is required (see 'bitvla synth --help')\n",
                !o.episodes ? "--episodes N" : "--out DIR");
        return 2;
    }
    if (bv_synth_opts_check(&o)) {
        fprintf(stderr, "bitvla synth: %s\n", bv_error_msg());
        return 2;
    }
    bv_synth_report rep;
    if (bv_synth_write_rlds(out, &o, &rep)) {
        fprintf(stderr, "bitvla synth: %s\n", bv_error_msg());
        return 1;
    }
    /* the preview after the dataset, so that it may go into the same directory */
    if (preview && bv_synth_write_preview(preview, &o)) {
        fprintf(stderr, "bitvla synth: %s\n", bv_error_msg());
        return 1;
    }
    printf("wrote %" PRId64 " episodes (%" PRId64 " steps, %.1f MB) to %s in %.1f s", rep.episodes, rep.steps,
           (double)rep.bytes / 1e6, out, rep.seconds);
    if (rep.failed_attempts) printf(" (%" PRId64 " scenes the expert failed were redrawn)", rep.failed_attempts);
    printf("\n");
    return 0;
}
