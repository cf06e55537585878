/* convert_libero.c - `bitvla convert libero-hdf5`: LIBERO's original demo files (robomimic
 * layout, convert.h) -> a shard directory through the sink of convert_impl.h. */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/convert_impl.h"
#include "src/progress.h"

bool bv_libero_is_noop(const float *a, const float *prev) {
    double n2 = 0;
    for (int i = 0; i < 6; i++) n2 += (double)a[i] * (double)a[i];
    if (!(sqrt(n2) < 1e-4)) return false;
    return prev == NULL || a[6] == prev[6];
}

typedef struct {
    char name[64];
    long num;
} demo_name;

static herr_t collect_demo(hid_t g, const char *name, const H5L_info_t *info, void *op) {
    (void)g;
    (void)info;
    void **st = op; /* [0]: demo_name **arr, [1]: int *n, [2]: int *cap */
    demo_name **arr = st[0];
    int *n = st[1], *cap = st[2];
    long num;
    char tail;
    if (sscanf(name, "demo_%ld%c", &num, &tail) != 1 || num < 0 || strlen(name) >= sizeof(*arr)->name) return 0;
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        *arr = bv_xrealloc(*arr, (size_t)*cap * sizeof **arr);
    }
    snprintf((*arr)[*n].name, sizeof(*arr)->name, "%s", name);
    (*arr)[*n].num = num;
    (*n)++;
    return 0;
}

static int cmp_demo(const void *a, const void *b) {
    long x = ((const demo_name *)a)->num, y = ((const demo_name *)b)->num;
    return (x > y) - (x < y);
}

/* Reads string attribute `name` of loc (fixed or variable length, as h5py writes). */
static bv_status h5_attr_string(hid_t loc, const char *name, char **out, const char *where) {
    *out = NULL;
    if (H5Aexists(loc, name) <= 0) return bv_error_set(BV_ERR_FORMAT, "%s: missing attribute '%s'", where, name);
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t ft = a >= 0 ? H5Aget_type(a) : -1;
    bv_status st = BV_OK;
    if (ft < 0 || H5Tget_class(ft) != H5T_STRING) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: attribute '%s' is not a string", where, name);
    } else {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_cset(mt, H5Tget_cset(ft));
        if (H5Tis_variable_str(ft)) {
            H5Tset_size(mt, H5T_VARIABLE);
            char *v = NULL;
            if (H5Aread(a, mt, &v) < 0 || !v)
                st = bv_error_set(BV_ERR_FORMAT, "%s: cannot read attribute '%s'", where, name);
            else {
                *out = bv_xstrdup(v);
                H5free_memory(v);
            }
        } else {
            size_t n = H5Tget_size(ft);
            H5Tset_size(mt, n);
            char *v = bv_xcalloc(n + 1, 1);
            if (H5Aread(a, mt, v) < 0) {
                st = bv_error_set(BV_ERR_FORMAT, "%s: cannot read attribute '%s'", where, name);
                free(v);
            } else {
                *out = v;
            }
        }
        H5Tclose(mt);
    }
    if (ft >= 0) H5Tclose(ft);
    if (a >= 0) H5Aclose(a);
    return st;
}

/* Reads dataset `key` of group g as `mtype`; it must have rank `rank` and, where want[i] >= 0, those
 * dimensions. dims[] receives the shape; *out a malloc'd buffer. */
static bv_status h5_read(hid_t g, const char *key, hid_t mtype, size_t esz, int rank, const int64_t *want,
                         int64_t *dims, void **out, const char *where) {
    *out = NULL;
    if (H5Lexists(g, key, H5P_DEFAULT) <= 0)
        return bv_error_set(BV_ERR_FORMAT, "%s: key '%s' is missing", where, key);
    hid_t d = H5Dopen2(g, key, H5P_DEFAULT);
    if (d < 0) return bv_error_set(BV_ERR_FORMAT, "%s: key '%s' is not a dataset", where, key);
    hid_t sp = H5Dget_space(d), ft = H5Dget_type(d);
    int r = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t hd[8] = {0};
    bv_status st = BV_OK;
    H5T_class_t cls = ft >= 0 ? H5Tget_class(ft) : H5T_NO_CLASS;
    bool want_int = mtype == H5T_NATIVE_UINT8;
    if (r != rank || H5Sget_simple_extent_dims(sp, hd, NULL) < 0) {
        st = bv_error_set(BV_ERR_SHAPE, "%s: key '%s' has rank %d, expected %d", where, key, r, rank);
    } else if (want_int ? (cls != H5T_INTEGER || H5Tget_size(ft) != 1) : (cls != H5T_FLOAT && cls != H5T_INTEGER)) {
        st = bv_error_set(BV_ERR_SHAPE, "%s: key '%s' has the wrong element type (expected %s)", where, key,
                          want_int ? "uint8" : "numbers");
    } else {
        size_t n = esz;
        char got[128] = "", exp[128] = "";
        bool bad = false;
        for (int i = 0; i < rank; i++) {
            dims[i] = (int64_t)hd[i];
            n *= hd[i];
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", i ? ", " : "", (unsigned long long)hd[i]);
            if (want[i] >= 0)
                snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%lld", i ? ", " : "", (long long)want[i]);
            else
                snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s*", i ? ", " : "");
            if (want[i] >= 0 && (int64_t)hd[i] != want[i]) bad = true;
        }
        if (bad) {
            st = bv_error_set(BV_ERR_SHAPE, "%s: key '%s' has shape (%s), expected (%s)", where, key, got, exp);
        } else {
            *out = malloc(n ? n : 1);
            if (!*out)
                st = bv_error_set(BV_ERR_NOMEM, "%s: key '%s': cannot allocate %zu bytes", where, key, n);
            else if (n && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) {
                st = bv_error_set(BV_ERR_IO, "%s: reading key '%s' failed", where, key);
                free(*out);
                *out = NULL;
            }
        }
    }
    if (ft >= 0) H5Tclose(ft);
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(d);
    return st;
}

/* The instruction from /data's problem_info JSON attribute. */
static bv_status libero_instruction(hid_t data, const char *file, char **out) {
    char where[1200];
    snprintf(where, sizeof where, "%s: group /data", file);
    char *pi;
    bv_status st = h5_attr_string(data, "problem_info", &pi, where);
    if (st) return st;
    json_error_t je;
    json_t *j = json_loads(pi, 0, &je);
    free(pi);
    const json_t *li = j ? json_object_get(j, "language_instruction") : NULL;
    if (!json_is_string(li)) {
        json_decref(j);
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: attribute 'problem_info' is not JSON with a \"language_instruction\" string", where);
    }
    /* LIBERO stores it as written in the BDDL file; trim surrounding spaces and quotes */
    const char *s = json_string_value(li);
    while (*s == ' ' || *s == '"') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '"' || s[n - 1] == '\n')) n--;
    *out = bv_xmalloc(n + 1);
    memcpy(*out, s, n);
    (*out)[n] = 0;
    json_decref(j);
    return BV_OK;
}

/* ---- the same demos given twice ---- */

/* What identifies a file's demos: the file itself (device and inode) and, per demo, a hash of its
 * actions (FNV-1a over the step count and the float32 values), so a copy is recognised too. */
typedef struct {
    dev_t dev;
    ino_t ino;
    uint64_t *hash; /* per demo with a readable, non-empty 'actions' */
    int n;
} file_ident;

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static bv_status h5_read(hid_t g, const char *key, hid_t mtype, size_t esz, int rank, const int64_t *want,
                         int64_t *dims, void **out, const char *where);

/* Hashes of the actions of the demos of group /data (dd); demos whose actions cannot be read are
 * left out (the conversion reports them). */
static void demo_hashes(hid_t dd, const demo_name *arr, int n, file_ident *id) {
    id->hash = bv_xmalloc((size_t)(n ? n : 1) * sizeof *id->hash);
    id->n = 0;
    const int64_t want[2] = {-1, 7};
    for (int d = 0; d < n; d++) {
        char key[96];
        snprintf(key, sizeof key, "%s/actions", arr[d].name);
        int64_t dims[2];
        float *a = NULL;
        if (H5Lexists(dd, arr[d].name, H5P_DEFAULT) <= 0 ||
            h5_read(dd, key, H5T_NATIVE_FLOAT, sizeof(float), 2, want, dims, (void **)&a, "") || dims[0] == 0) {
            free(a);
            continue;
        }
        uint64_t h = fnv1a(0xcbf29ce484222325ull, &dims[0], sizeof dims[0]);
        id->hash[id->n++] = fnv1a(h, a, (size_t)dims[0] * 7 * sizeof(float));
        free(a);
    }
    bv_error_clear();
}

/* Warns when file i repeats the demos of an earlier file: the same file (device and inode) given
 * twice, or demos with identical actions (a copy). Both are converted anyway. */
static void warn_repeats(const char *const *files, const file_ident *ids, int i, int n_demos) {
    for (int j = 0; j < i; j++) {
        if (ids[j].dev == ids[i].dev && ids[j].ino == ids[i].ino) {
            fprintf(stderr, "bitvla convert: warning: %s is the same file as %s: its %d demos are converted twice\n",
                    files[i], files[j], n_demos);
            return;
        }
        int same = 0;
        for (int a = 0; a < ids[i].n; a++)
            for (int b = 0; b < ids[j].n; b++)
                if (ids[i].hash[a] == ids[j].hash[b]) {
                    same++;
                    break;
                }
        if (same)
            fprintf(stderr,
                    "bitvla convert: warning: %s: %d of its %d demos have the same actions as demos of %s (a copy?): "
                    "they are converted twice\n",
                    files[i], same, n_demos, files[j]);
    }
}

/* A path given as a demo file: it must exist and be a readable regular file. */
static bv_status check_input_file(const char *file, file_ident *id) {
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        bv_status st = bv_error_set(BV_ERR_IO, "%s: cannot open: %s", file, strerror(errno));
        if (fd >= 0) close(fd);
        return st;
    }
    close(fd);
    if (!S_ISREG(sb.st_mode)) return bv_error_set(BV_ERR_ARG, "%s: not a regular file (expected a LIBERO .hdf5 demo file)", file);
    id->dev = sb.st_dev;
    id->ino = sb.st_ino;
    return BV_OK;
}

bv_status bv_convert_libero_hdf5(int n_files, const char *const *files, const bv_convert_opts *o) {
    bv_status st;
    if (o->dataset_name && (st = bv_convert_name_check(o->dataset_name))) return st;
    bv_schema s;
    st = bv_schema_load(&s, "libero"); /* roles are fixed; the transforms and masks are LIBERO's */
    if (st) return st;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    bv_image_storage storage = o->images >= 0 ? (bv_image_storage)o->images : s.images;
    int quality = o->jpeg_quality > 0 ? o->jpeg_quality : s.jpeg_quality;
    const int A = 7, P = 8;
    bv_shard_camera cams[2] = {{.name = "primary", .key = "obs/agentview_rgb"},
                               {.name = "wrist", .key = "obs/eye_in_hand_rgb"}};
    bv_cv_sink k;
    memset(&k, 0, sizeof k);
    bool sink_ok = false;
    bv_cv_cam_buf cb[2];
    memset(cb, 0, sizeof cb);
    json_t *demos_json = json_array(), *files_json = json_array();
    int64_t noops_removed = 0, total_demos = 0;
    float *act = NULL, *ee = NULL, *gr = NULL, *prop = NULL, *kept_act = NULL;
    uint8_t *img[2] = {NULL, NULL};
    char *instr = NULL;
    demo_name *demos = NULL;
    hid_t f = -1, data = -1, dg = -1;
    file_ident *ids = bv_xcalloc((size_t)n_files, sizeof *ids);

    /* count demos for the progress bar, and check every file before writing anything */
    for (int i = 0; i < n_files; i++) {
        if ((st = check_input_file(files[i], &ids[i]))) goto out;
        if (H5Fis_hdf5(files[i]) <= 0) {
            st = bv_error_set(BV_ERR_FORMAT, "%s: not an HDF5 file", files[i]);
            goto out;
        }
        hid_t ff = H5Fopen(files[i], H5F_ACC_RDONLY, H5P_DEFAULT);
        if (ff < 0) {
            st = bv_error_set(BV_ERR_IO, "%s: cannot open HDF5 file", files[i]);
            goto out;
        }
        hid_t dd = H5Lexists(ff, "data", H5P_DEFAULT) > 0 ? H5Gopen2(ff, "data", H5P_DEFAULT) : -1;
        if (dd < 0) {
            H5Fclose(ff);
            st = bv_error_set(BV_ERR_FORMAT, "%s: no group /data (not a LIBERO demo file)", files[i]);
            goto out;
        }
        int n = 0, cap = 0;
        demo_name *arr = NULL;
        void *op[3] = {&arr, &n, &cap};
        hsize_t idx = 0;
        H5Literate(dd, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, collect_demo, op);
        if (n > 0 && i == 0) { /* the camera sizes, from the first demo (every demo must match) */
            qsort(arr, (size_t)n, sizeof *arr, cmp_demo);
            for (int c = 0; c < 2 && !st; c++) {
                char key[160];
                snprintf(key, sizeof key, "%s/%s", arr[0].name, cams[c].key);
                hid_t ds = H5Lexists(dd, arr[0].name, H5P_DEFAULT) > 0 && H5Lexists(dd, key, H5P_DEFAULT) > 0
                               ? H5Dopen2(dd, key, H5P_DEFAULT)
                               : -1;
                hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
                hsize_t hd[4] = {0};
                if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 4 || H5Sget_simple_extent_dims(sp, hd, NULL) < 0 ||
                    hd[3] != 3)
                    st = bv_error_set(BV_ERR_SHAPE, "%s: episode %s: key '%s' is missing or not (T, H, W, 3) images",
                                      files[i], arr[0].name, cams[c].key);
                else if (!bv_cv_image_size_ok((int64_t)hd[1], (int64_t)hd[2]))
                    st = bv_error_set(BV_ERR_SHAPE,
                                      "%s: episode %s: key '%s' has images of %llu x %llu (expected height and width "
                                      "1..%d, at most %lld pixels)",
                                      files[i], arr[0].name, cams[c].key, (unsigned long long)hd[1],
                                      (unsigned long long)hd[2], BV_CV_MAX_SIDE, (long long)BV_IMAGE_MAX_PIXELS);
                if (!st) {
                    cams[c].height = (int)hd[1];
                    cams[c].width = (int)hd[2];
                }
                if (sp >= 0) H5Sclose(sp);
                if (ds >= 0) H5Dclose(ds);
            }
        }
        if (!st && n > 0) {
            qsort(arr, (size_t)n, sizeof *arr, cmp_demo);
            demo_hashes(dd, arr, n, &ids[i]);
        }
        free(arr);
        H5Gclose(dd);
        H5Fclose(ff);
        if (st) goto out;
        if (n == 0) {
            st = bv_error_set(BV_ERR_FORMAT, "%s: /data has no demo_N groups", files[i]);
            goto out;
        }
        warn_repeats(files, ids, i, n);
        total_demos += n;
    }

    if ((st = bv_cv_sink_open(&k, o, o->dataset_name ? o->dataset_name : "libero", storage, A, P, 2, cams))) goto out;
    sink_ok = true;
    k.action_mask = s.n_action_mask ? s.action_mask : NULL;
    k.proprio_mask = s.n_proprio_mask ? s.proprio_mask : NULL;
    bv_progress pr;
    bv_progress_init(&pr, "convert", o->max_episodes > 0 ? BV_MIN(o->max_episodes, total_demos) : total_demos,
                     "episodes");
    int64_t done = 0;
    const int hw[2][2] = {{cams[0].height, cams[0].width}, {cams[1].height, cams[1].width}};
    for (int i = 0; i < n_files && !(o->max_episodes > 0 && done >= o->max_episodes); i++) {
        const char *file = files[i];
        json_array_append_new(files_json, json_string(file));
        f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
        data = f >= 0 ? H5Gopen2(f, "data", H5P_DEFAULT) : -1;
        if (data < 0) {
            st = bv_error_set(BV_ERR_IO, "%s: cannot open /data", file);
            goto out;
        }
        free(instr);
        instr = NULL;
        if ((st = libero_instruction(data, file, &instr))) goto out;
        int n = 0, cap = 0;
        free(demos);
        demos = NULL;
        void *op[3] = {&demos, &n, &cap};
        hsize_t idx = 0;
        H5Literate(data, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, collect_demo, op);
        qsort(demos, (size_t)n, sizeof *demos, cmp_demo); /* demo_2 before demo_10 */
        for (int d = 0; d < n && !(o->max_episodes > 0 && done >= o->max_episodes); d++) {
            char where[1400];
            snprintf(where, sizeof where, "%s: episode %s", file, demos[d].name);
            dg = H5Gopen2(data, demos[d].name, H5P_DEFAULT);
            if (dg < 0) {
                st = bv_error_set(BV_ERR_FORMAT, "%s: not a group", where);
                goto out;
            }
            int64_t dims[4], T;
            const int64_t any2[2] = {-1, A};
            free(act);
            if ((st = h5_read(dg, "actions", H5T_NATIVE_FLOAT, sizeof(float), 2, any2, dims, (void **)&act, where)))
                goto out;
            T = dims[0];
            const int64_t w_ee[2] = {T, 6}, w_gr[2] = {T, 2};
            free(ee);
            free(gr);
            ee = gr = NULL;
            if ((st = h5_read(dg, "obs/ee_states", H5T_NATIVE_FLOAT, sizeof(float), 2, w_ee, dims, (void **)&ee,
                              where)) ||
                (st = h5_read(dg, "obs/gripper_states", H5T_NATIVE_FLOAT, sizeof(float), 2, w_gr, dims, (void **)&gr,
                              where)))
                goto out;
            for (int c = 0; c < 2; c++) {
                const int64_t w_im[4] = {T, hw[c][0], hw[c][1], 3};
                free(img[c]);
                img[c] = NULL;
                if ((st = h5_read(dg, cams[c].key, H5T_NATIVE_UINT8, 1, 4, w_im, dims, (void **)&img[c], where)))
                    goto out;
            }
            H5Gclose(dg);
            dg = -1;
            if ((st = bv_cv_check_finite(act, T, A, where, "actions")) || (st = bv_cv_check_finite(ee, T, 6, where, "obs/ee_states")) ||
                (st = bv_cv_check_finite(gr, T, 2, where, "obs/gripper_states")))
                goto out;
            /* steps kept (OFT's no-op rule on the raw actions), proprio = ee_states ++ gripper_states */
            kept_act = bv_xrealloc(kept_act, (size_t)(T ? T : 1) * A * sizeof *kept_act);
            prop = bv_xrealloc(prop, (size_t)(T ? T : 1) * P * sizeof *prop);
            int64_t *keep = bv_xmalloc((size_t)(T ? T : 1) * sizeof *keep);
            int64_t K = 0;
            const float *prev = NULL;
            for (int64_t t = 0; t < T; t++) {
                if (o->filter_noops && bv_libero_is_noop(act + t * A, prev)) continue;
                prev = act + t * A;
                keep[K++] = t;
            }
            noops_removed += T - K;
            for (int64_t j = 0; j < K; j++) {
                memcpy(kept_act + j * A, act + keep[j] * A, A * sizeof(float));
                memcpy(prop + j * P, ee + keep[j] * 6, 6 * sizeof(float));
                memcpy(prop + j * P + 6, gr + keep[j] * 2, 2 * sizeof(float));
            }
            if (K == 0) {
                fprintf(stderr, "bitvla convert: warning: %s: no steps%s, skipped\n", where,
                        o->filter_noops ? " after removing no-ops" : "");
                free(keep);
                continue;
            }
            bv_cv_gripper_transform(&s, kept_act, K, A);
            bv_shard_episode ep = {.n_steps = K, .action = kept_act, .proprio = prop, .instruction = instr,
                                   .episode_index = k.n_eps};
            for (int c = 0; c < 2; c++) {
                bv_cv_cam_buf_reset(&cb[c]);
                size_t fsz = (size_t)hw[c][0] * hw[c][1] * 3;
                for (int64_t j = 0; j < K; j++)
                    if ((st = bv_cv_take_frame(&cb[c], &cams[c], storage, quality, j, K, NULL, img[c] + keep[j] * fsz, true,
                                         where, cams[c].key))) {
                        free(keep);
                        goto out;
                    }
                ep.jpeg[c] = cb[c].frames;
                ep.rgb[c] = cb[c].rgb;
            }
            free(keep);
            if ((st = bv_cv_sink_add(&k, &ep))) goto out;
            json_array_append_new(demos_json, json_pack("{s:s, s:s, s:I, s:I}", "file", file, "demo", demos[d].name,
                                                        "steps", (json_int_t)K, "source_steps", (json_int_t)T));
            done++;
            bv_progress_update(&pr, done);
        }
        H5Gclose(data);
        H5Fclose(f);
        data = f = -1;
    }
    bv_progress_finish(&pr);
    {
        json_t *src = json_pack("{s:s, s:o, s:b, s:I, s:o}", "kind", "libero-hdf5", "files", files_json, "filter_noops",
                                o->filter_noops, "noops_removed", (json_int_t)noops_removed, "demos", demos_json);
        files_json = demos_json = NULL;
        json_t *sch = bv_cv_schema_json(&s);
        json_object_set_new(sch, "keys", json_pack("{s:s, s:s, s:s, s:s, s:s}", "primary_image", "obs/agentview_rgb (rotated 180)",
                                                   "wrist_image", "obs/eye_in_hand_rgb (rotated 180)", "proprio",
                                                   "obs/ee_states ++ obs/gripper_states", "action", "actions",
                                                   "instruction", "/data attribute problem_info.language_instruction"));
        st = bv_cv_sink_finish(&k, src, sch, cams);
        sink_ok = false;
    }
out:
    if (dg >= 0) H5Gclose(dg);
    if (data >= 0) H5Gclose(data);
    if (f >= 0) H5Fclose(f);
    if (sink_ok) bv_cv_sink_abort(&k);
    for (int c = 0; c < 2; c++) {
        bv_cv_cam_buf_free(&cb[c]);
        free(img[c]);
    }
    json_decref(files_json);
    json_decref(demos_json);
    free(act);
    free(ee);
    free(gr);
    free(prop);
    free(kept_act);
    free(instr);
    free(demos);
    for (int i = 0; i < n_files; i++) free(ids[i].hash);
    free(ids);
    bv_schema_free(&s);
    return st;
}
