#include "data/shards.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/atomic_file.h"

_Static_assert(sizeof(hid_t) == sizeof(int64_t), "bv_shard stores hid_t in int64_t");

#define ROW_CHUNK 1024            /* rows per chunk of action / proprio */
#define JPEG_CHUNK (256 << 10)    /* bytes per chunk of the concatenated JPEG frames */

const char *bv_image_storage_name(bv_image_storage s) { return s == BV_IMAGES_RAW ? "raw" : "jpeg"; }

static void quiet_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* ---- why an HDF5 call failed ---- */

/* The reason for the last failed HDF5 call, noted by h5_note() right after it (before any other
 * HDF5 call clears the error stack): the OS error of the innermost system call that failed (HDF5's
 * file drivers put "errno = N" into their messages), else HDF5's innermost message. */
static _Thread_local char g_why[256];

static herr_t why_cb(unsigned n, const H5E_error2_t *e, void *found) {
    const char *p = e->desc ? strstr(e->desc, "errno = ") : NULL;
    int en = p ? atoi(p + 8) : 0;
    if (en > 0) {
        snprintf(g_why, sizeof g_why, "%s", strerror(en));
        *(int *)found = 1;
    } else if (!*(int *)found && e->desc) { /* walking downward: the last one seen is the innermost */
        snprintf(g_why, sizeof g_why, "HDF5: %s", e->desc);
    }
    return 0;
}

static void h5_note(void) {
    int found = 0;
    snprintf(g_why, sizeof g_why, "HDF5 gave no reason");
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, why_cb, &found);
}

/* ---- a shard that cannot be closed ---- */

/* HDF5 1.10 cannot close a file whose buffered data it can no longer write (disk full, file-size
 * limit): H5Fclose then frees the file but leaves its id registered, and HDF5's exit handler
 * crashes on that id (H5F__close_cb; fixed in HDF5 1.14.1, and no public call drops the id). So a
 * shard whose write failed is never closed: its handles are abandoned (its temporary is unlinked;
 * the space returns when the process ends), and the process leaves without HDF5's exit handler,
 * which would try to close it again: an on_exit handler, registered after HDF5's and so run before
 * it, flushes stdio and calls _exit with the same status. */
static void skip_hdf5_exit(int status, void *arg) {
    (void)arg;
    fflush(NULL);
    _exit(status);
}

static void guard_hdf5_exit(void) {
    static bool registered;
    if (registered) return;
    registered = true;
    on_exit(skip_hdf5_exit, NULL);
}

struct bv_shard_writer {
    bv_shard_opts o;
    char *dir, *dataset_name;
    bv_shard_camera cams[BV_SHARD_MAX_CAMS];
    char *cam_names[BV_SHARD_MAX_CAMS], *cam_keys[BV_SHARD_MAX_CAMS];
    /* the shard being written */
    hid_t file, action, proprio, img_data[BV_SHARD_MAX_CAMS], img_off[BV_SHARD_MAX_CAMS];
    bool broken; /* a write to this shard failed: it is abandoned, never closed (see guard_hdf5_exit) */
    char *tmp;
    int64_t n_steps, jpeg_bytes[BV_SHARD_MAX_CAMS];
    int64_t *ep_off, *ep_index; /* per episode of this shard */
    char **instr;
    int n_ep, cap_ep;
    /* finished shards */
    char **tmps;
    int64_t *done_episodes, *done_steps;
    int n_done;
};

/* ---- small HDF5 helpers (each returns <0 on failure; the caller names the file) ---- */

static hid_t make_extendible(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *row, const hsize_t *chunk,
                             int deflate, int shuffle) {
    hsize_t dims[4] = {0}, maxd[4] = {H5S_UNLIMITED};
    for (int i = 1; i < rank; i++) dims[i] = maxd[i] = row[i];
    hid_t sp = H5Screate_simple(rank, dims, maxd);
    if (sp < 0) return -1;
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    int ok = pl >= 0 && H5Pset_chunk(pl, rank, chunk) >= 0;
    if (ok && shuffle) ok = H5Pset_shuffle(pl) >= 0;
    if (ok && deflate > 0) ok = H5Pset_deflate(pl, (unsigned)deflate) >= 0;
    hid_t d = ok ? H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, pl, H5P_DEFAULT) : -1;
    if (d < 0) h5_note();
    if (pl >= 0) H5Pclose(pl);
    H5Sclose(sp);
    return d;
}

/* Append n rows (row shape from the dataset) of `type` data at the end of dataset d. */
static int append_rows(hid_t d, hid_t type, hsize_t n, const void *data) {
    if (n == 0) return 0;
    hid_t sp = H5Dget_space(d);
    if (sp < 0) {
        h5_note();
        return -1;
    }
    int rank = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[4];
    if (rank < 1 || rank > 4 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
        h5_note();
        H5Sclose(sp);
        return -1;
    }
    H5Sclose(sp);
    hsize_t start[4] = {dims[0]}, count[4] = {n};
    for (int i = 1; i < rank; i++) count[i] = dims[i];
    dims[0] += n;
    if (H5Dset_extent(d, dims) < 0) {
        h5_note();
        return -1;
    }
    hid_t fs = H5Dget_space(d);
    hid_t ms = H5Screate_simple(rank, count, NULL);
    int rc = -1;
    if (fs >= 0 && ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0) {
        rc = H5Dwrite(d, type, ms, fs, H5P_DEFAULT, data) < 0 ? -1 : 0;
        if (rc) h5_note();
    }
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return rc;
}

static int write_1d(hid_t loc, const char *name, hid_t type, hsize_t n, const void *data) {
    hid_t sp = H5Screate_simple(1, &n, NULL);
    if (sp < 0) return -1;
    hid_t d = H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = d >= 0 && (n == 0 || H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0) ? 0 : -1;
    if (rc) h5_note();
    if (d >= 0 && H5Dclose(d) < 0 && !rc) {
        h5_note();
        rc = -1;
    }
    H5Sclose(sp);
    return rc;
}

static int attr_str(hid_t loc, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    H5Tset_size(t, strlen(v) + 1);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, t, v) >= 0 ? 0 : -1;
    if (rc) h5_note();
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return rc;
}

static int attr_int(hid_t loc, const char *name, int64_t v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(loc, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, H5T_NATIVE_INT64, &v) >= 0 ? 0 : -1;
    if (rc) h5_note();
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

static int read_attr_str(hid_t loc, const char *name, char *out, size_t cap) {
    out[0] = 0;
    if (H5Aexists(loc, name) <= 0) return -1;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return -1;
    hid_t ft = H5Aget_type(a);
    int rc = -1;
    if (ft >= 0 && H5Tget_class(ft) == H5T_STRING && !H5Tis_variable_str(ft)) {
        size_t n = H5Tget_size(ft);
        char *tmp = malloc(n + 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, n);
        H5Tset_cset(mt, H5Tget_cset(ft)); /* HDF5 does not convert between ASCII and UTF-8 */
        if (tmp && H5Aread(a, mt, tmp) >= 0) {
            tmp[n] = 0;
            snprintf(out, cap, "%s", tmp);
            rc = 0;
        }
        H5Tclose(mt);
        free(tmp);
    }
    if (ft >= 0) H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

static int read_attr_int(hid_t loc, const char *name, int64_t *v) {
    if (H5Aexists(loc, name) <= 0) return -1;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return -1;
    int rc = H5Aread(a, H5T_NATIVE_INT64, v) >= 0 ? 0 : -1;
    H5Aclose(a);
    return rc;
}

/* ---- writer ---- */

/* Flush and close the shard being written; 0, or -1 with the reason in g_why. A broken shard, or
 * one whose flush fails, is abandoned instead of closed (see guard_hdf5_exit). */
static int release_shard(bv_shard_writer *w) {
    if (!w->file) return 0;
    if (!w->broken && H5Fflush(w->file, H5F_SCOPE_LOCAL) < 0) {
        h5_note();
        w->broken = true;
    }
    int rc = 0;
    if (w->broken) {
        guard_hdf5_exit();
        rc = -1;
    } else {
        for (int c = 0; c < w->o.n_cams; c++) {
            if (w->img_data[c] > 0) H5Dclose(w->img_data[c]);
            if (w->img_off[c] > 0) H5Dclose(w->img_off[c]);
        }
        if (w->action > 0) H5Dclose(w->action);
        if (w->proprio > 0) H5Dclose(w->proprio);
        if (H5Fclose(w->file) < 0) { /* flushed, so this should not happen; if it does, HDF5 is damaged */
            h5_note();
            guard_hdf5_exit();
            rc = -1;
        }
    }
    for (int c = 0; c < w->o.n_cams; c++) w->img_data[c] = w->img_off[c] = 0;
    w->action = w->proprio = w->file = 0;
    w->broken = false;
    return rc;
}

static void free_episode_table(bv_shard_writer *w) {
    for (int i = 0; i < w->n_ep; i++) free(w->instr[i]);
    w->n_ep = 0;
}

static char *shard_name(const bv_shard_writer *w, int k) {
    size_t n = strlen(w->dir) + 32;
    char *p = bv_xmalloc(n);
    snprintf(p, n, "%s/shard-%05d.h5", w->dir, k);
    return p;
}

static bv_status start_shard(bv_shard_writer *w) {
    char *final = shard_name(w, w->n_done);
    w->tmp = bv_atomic_tmp_path(final);
    if (!w->tmp) {
        bv_status st = bv_error_set(BV_ERR_NOMEM, "%s: out of memory", final);
        free(final);
        return st;
    }
    free(final);
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w->file < 0) {
        h5_note();
        w->file = 0;
        return bv_error_set(BV_ERR_IO, "%s: cannot create the HDF5 shard: %s", w->tmp, g_why);
    }
    hsize_t arow[2] = {0, (hsize_t)w->o.action_dim}, ach[2] = {ROW_CHUNK, (hsize_t)w->o.action_dim};
    hsize_t prow[2] = {0, (hsize_t)w->o.proprio_dim}, pch[2] = {ROW_CHUNK, (hsize_t)w->o.proprio_dim};
    w->action = make_extendible(w->file, "action", H5T_IEEE_F32LE, 2, arow, ach, 4, 1);
    w->proprio = w->action < 0 ? -1 : make_extendible(w->file, "proprio", H5T_IEEE_F32LE, 2, prow, pch, 4, 1);
    if (w->action < 0 || w->proprio < 0) {
        w->broken = true;
        return bv_error_set(BV_ERR_IO, "%s: cannot create the datasets: %s", w->tmp, g_why);
    }
    hid_t g = H5Gcreate2(w->file, "images", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) {
        h5_note();
        w->broken = true;
        return bv_error_set(BV_ERR_IO, "%s: cannot create group /images: %s", w->tmp, g_why);
    }
    bv_status st = BV_OK;
    for (int c = 0; c < w->o.n_cams && !st; c++) {
        const bv_shard_camera *cam = &w->cams[c];
        hid_t cg = H5Gcreate2(g, cam->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (cg < 0) h5_note();
        if (cg < 0 || attr_int(cg, "height", cam->height) || attr_int(cg, "width", cam->width) ||
            attr_str(cg, "key", cam->key ? cam->key : "")) {
            st = bv_error_set(BV_ERR_IO, "%s: cannot create group /images/%s: %s", w->tmp, cam->name, g_why);
        } else if (w->o.storage == BV_IMAGES_JPEG) {
            hsize_t row[1] = {0}, ch[1] = {JPEG_CHUNK}, orow[1] = {0}, och[1] = {ROW_CHUNK};
            w->img_data[c] = make_extendible(cg, "jpeg", H5T_STD_U8LE, 1, row, ch, 0, 0);
            w->img_off[c] = w->img_data[c] < 0 ? -1 : make_extendible(cg, "offsets", H5T_STD_I64LE, 1, orow, och, 4, 1);
            int64_t zero = 0;
            w->jpeg_bytes[c] = 0;
            if (w->img_data[c] < 0 || w->img_off[c] < 0 || append_rows(w->img_off[c], H5T_NATIVE_INT64, 1, &zero))
                st = bv_error_set(BV_ERR_IO, "%s: cannot create /images/%s datasets: %s", w->tmp, cam->name, g_why);
        } else {
            hsize_t row[4] = {0, (hsize_t)cam->height, (hsize_t)cam->width, 3};
            hsize_t ch[4] = {1, (hsize_t)cam->height, (hsize_t)cam->width, 3};
            w->img_data[c] = make_extendible(cg, "rgb", H5T_STD_U8LE, 4, row, ch, 1, 0);
            if (w->img_data[c] < 0)
                st = bv_error_set(BV_ERR_IO, "%s: cannot create /images/%s/rgb: %s", w->tmp, cam->name, g_why);
        }
        if (cg >= 0) H5Gclose(cg);
    }
    H5Gclose(g);
    if (st) w->broken = true;
    w->n_steps = 0;
    w->n_ep = 0;
    return st;
}

/* Writes the per-episode tables and attributes, closes the file, records it as done. */
static bv_status end_shard(bv_shard_writer *w) {
    int E = w->n_ep;
    bv_status st = BV_OK;
    int64_t *off = bv_xmalloc(((size_t)E + 1) * sizeof *off);
    off[0] = 0;
    for (int i = 0; i < E; i++) off[i + 1] = w->ep_off[i + 1];
    hid_t vstr = H5Tcopy(H5T_C_S1);
    H5Tset_size(vstr, H5T_VARIABLE);
    H5Tset_cset(vstr, H5T_CSET_UTF8);
    char cams[256] = "";
    for (int c = 0; c < w->o.n_cams; c++)
        snprintf(cams + strlen(cams), sizeof cams - strlen(cams), "%s%s", c ? "," : "", w->cams[c].name);
    if (write_1d(w->file, "episode_offsets", H5T_STD_I64LE, (hsize_t)E + 1, off) ||
        write_1d(w->file, "episode_index", H5T_STD_I64LE, (hsize_t)E, w->ep_index) ||
        write_1d(w->file, "instruction", vstr, (hsize_t)E, w->instr) ||
        attr_str(w->file, "format", BV_SHARD_FORMAT) || attr_int(w->file, "version", BV_SHARD_VERSION) ||
        attr_str(w->file, "dataset_name", w->dataset_name) ||
        attr_str(w->file, "image_storage", bv_image_storage_name(w->o.storage)) || attr_str(w->file, "cameras", cams))
        st = bv_error_set(BV_ERR_IO, "%s: writing the episode tables failed: %s", w->tmp, g_why);
    H5Tclose(vstr);
    free(off);
    if (st) w->broken = true;
    if (release_shard(w) < 0 && !st) st = bv_error_set(BV_ERR_IO, "%s: closing the HDF5 file failed: %s", w->tmp, g_why);
    w->tmps = bv_xrealloc(w->tmps, (size_t)(w->n_done + 1) * sizeof *w->tmps);
    w->done_episodes = bv_xrealloc(w->done_episodes, (size_t)(w->n_done + 1) * sizeof *w->done_episodes);
    w->done_steps = bv_xrealloc(w->done_steps, (size_t)(w->n_done + 1) * sizeof *w->done_steps);
    w->tmps[w->n_done] = w->tmp;
    w->done_episodes[w->n_done] = E;
    w->done_steps[w->n_done] = w->n_steps;
    w->n_done++;
    w->tmp = NULL;
    free_episode_table(w);
    return st;
}

bv_status bv_shards_open(bv_shard_writer **out, const bv_shard_opts *o) {
    *out = NULL;
    BV_ASSERT(o->episodes_per_shard > 0 && o->action_dim > 0 && o->proprio_dim > 0 && o->n_cams >= 0 &&
                  o->n_cams <= BV_SHARD_MAX_CAMS,
              "bad shard options");
    quiet_hdf5();
    if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0 || H5Zfilter_avail(H5Z_FILTER_SHUFFLE) <= 0)
        return bv_error_set(BV_ERR_UNSUPPORTED, "this HDF5 library lacks the deflate or shuffle filter");
    bv_shard_writer *w = bv_xcalloc(1, sizeof *w);
    w->o = *o;
    w->dir = bv_xstrdup(o->dir);
    w->dataset_name = bv_xstrdup(o->dataset_name);
    for (int c = 0; c < o->n_cams; c++) {
        w->cams[c] = o->cams[c];
        w->cam_names[c] = bv_xstrdup(o->cams[c].name);
        w->cam_keys[c] = bv_xstrdup(o->cams[c].key ? o->cams[c].key : "");
        w->cams[c].name = w->cam_names[c];
        w->cams[c].key = w->cam_keys[c];
        BV_ASSERT(o->storage == BV_IMAGES_JPEG || (o->cams[c].height > 0 && o->cams[c].width > 0),
                  "raw storage needs camera sizes");
    }
    w->o.dir = w->dir;
    w->o.dataset_name = w->dataset_name;
    *out = w;
    return BV_OK;
}

bv_status bv_shards_add(bv_shard_writer *w, const bv_shard_episode *ep) {
    bv_status st;
    if (!w->file && (st = start_shard(w))) return st;
    hsize_t T = (hsize_t)ep->n_steps;
    if (append_rows(w->action, H5T_NATIVE_FLOAT, T, ep->action) ||
        append_rows(w->proprio, H5T_NATIVE_FLOAT, T, ep->proprio)) {
        w->broken = true;
        return bv_error_set(BV_ERR_IO, "%s: writing episode %lld (actions, proprio) failed: %s", w->tmp,
                            (long long)ep->episode_index, g_why);
    }
    for (int c = 0; c < w->o.n_cams; c++) {
        if (w->o.storage == BV_IMAGES_JPEG) { /* the episode's frames in one append */
            size_t total = 0;
            for (hsize_t t = 0; t < T; t++) total += ep->jpeg[c][t].len;
            uint8_t *cat = bv_xmalloc(total ? total : 1);
            int64_t *offs = bv_xmalloc((size_t)(T ? T : 1) * sizeof *offs);
            size_t o = 0;
            for (hsize_t t = 0; t < T; t++) {
                const bv_bytes *b = &ep->jpeg[c][t];
                if (b->len) memcpy(cat + o, b->data, b->len);
                o += b->len;
                offs[t] = w->jpeg_bytes[c] + (int64_t)o;
            }
            int rc = append_rows(w->img_data[c], H5T_NATIVE_UINT8, total, cat) ||
                     append_rows(w->img_off[c], H5T_NATIVE_INT64, T, offs);
            free(cat);
            free(offs);
            if (rc) {
                w->broken = true;
                return bv_error_set(BV_ERR_IO, "%s: writing episode %lld camera %s failed: %s", w->tmp,
                                    (long long)ep->episode_index, w->cams[c].name, g_why);
            }
            w->jpeg_bytes[c] += (int64_t)total;
        } else if (append_rows(w->img_data[c], H5T_NATIVE_UINT8, T, ep->rgb[c])) {
            w->broken = true;
            return bv_error_set(BV_ERR_IO, "%s: writing episode %lld camera %s failed: %s", w->tmp,
                                (long long)ep->episode_index, w->cams[c].name, g_why);
        }
    }
    if (w->n_ep + 1 >= w->cap_ep) {
        w->cap_ep = w->cap_ep ? 2 * w->cap_ep : 64;
        w->ep_off = bv_xrealloc(w->ep_off, ((size_t)w->cap_ep + 1) * sizeof *w->ep_off);
        w->ep_index = bv_xrealloc(w->ep_index, (size_t)w->cap_ep * sizeof *w->ep_index);
        w->instr = bv_xrealloc(w->instr, (size_t)w->cap_ep * sizeof *w->instr);
    }
    w->n_steps += (int64_t)T;
    w->ep_off[0] = 0;
    w->ep_off[w->n_ep + 1] = w->n_steps;
    w->ep_index[w->n_ep] = ep->episode_index;
    w->instr[w->n_ep] = bv_xstrdup(ep->instruction ? ep->instruction : "");
    w->n_ep++;
    if (w->n_ep >= w->o.episodes_per_shard) return end_shard(w);
    return BV_OK;
}

static void free_writer(bv_shard_writer *w) {
    free_episode_table(w);
    free(w->ep_off);
    free(w->ep_index);
    free(w->instr);
    for (int i = 0; i < w->n_done; i++) free(w->tmps[i]);
    free(w->tmps);
    free(w->done_episodes);
    free(w->done_steps);
    free(w->tmp);
    for (int c = 0; c < w->o.n_cams; c++) {
        free(w->cam_names[c]);
        free(w->cam_keys[c]);
    }
    free(w->dir);
    free(w->dataset_name);
    free(w);
}

void bv_shards_abort(bv_shard_writer *w) {
    if (!w) return;
    release_shard(w);
    if (w->tmp) unlink(w->tmp);
    for (int i = 0; i < w->n_done; i++)
        if (w->tmps[i]) unlink(w->tmps[i]);
    free_writer(w);
}

bv_status bv_shards_finish(bv_shard_writer *w, int *n_shards, char ***files, int64_t **eps, int64_t **steps) {
    bv_status st = BV_OK;
    *n_shards = 0;
    if (files) *files = NULL;
    if (eps) *eps = NULL;
    if (steps) *steps = NULL;
    if (w->file && (st = end_shard(w))) {
        bv_shards_abort(w);
        return st;
    }
    int n = w->n_done;
    char **names = bv_xcalloc((size_t)(n ? n : 1), sizeof *names);
    for (int k = 0; k < n && !st; k++) {
        names[k] = shard_name(w, k);
        st = bv_atomic_commit_tmp(w->tmps[k], names[k]);
        if (!st) {
            free(w->tmps[k]);
            w->tmps[k] = NULL;
        }
    }
    if (st) {
        for (int k = 0; k < n; k++) {
            if (names[k] && !w->tmps[k]) unlink(names[k]); /* renamed already: withdraw it */
            free(names[k]);
        }
        free(names);
        bv_shards_abort(w);
        return st;
    }
    *n_shards = n;
    if (eps) {
        *eps = bv_xmalloc((size_t)(n ? n : 1) * sizeof **eps);
        memcpy(*eps, w->done_episodes, (size_t)n * sizeof **eps);
    }
    if (steps) {
        *steps = bv_xmalloc((size_t)(n ? n : 1) * sizeof **steps);
        memcpy(*steps, w->done_steps, (size_t)n * sizeof **steps);
    }
    if (files)
        *files = names;
    else {
        for (int k = 0; k < n; k++) free(names[k]);
        free(names);
    }
    free_writer(w);
    return BV_OK;
}

/* ---- reader ---- */

static int dims_of(hid_t d, int want_rank, hsize_t *dims) {
    hid_t sp = H5Dget_space(d);
    if (sp < 0) return -1;
    int r = H5Sget_simple_extent_ndims(sp);
    int rc = r == want_rank && H5Sget_simple_extent_dims(sp, dims, NULL) >= 0 ? 0 : -1;
    H5Sclose(sp);
    return rc;
}

static int read_rows(hid_t d, hid_t mtype, int rank, hsize_t r0, hsize_t n, void *dst) {
    hsize_t dims[4];
    if (dims_of(d, rank, dims) || r0 + n > dims[0]) return -1;
    if (n == 0) return 0;
    hsize_t start[4] = {r0}, count[4] = {n};
    for (int i = 1; i < rank; i++) count[i] = dims[i];
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(rank, count, NULL);
    int rc = -1;
    if (fs >= 0 && ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
        rc = H5Dread(d, mtype, ms, fs, H5P_DEFAULT, dst) < 0 ? -1 : 0;
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return rc;
}

void bv_shard_close(bv_shard *s) {
    for (int c = 0; c < s->n_cams; c++) {
        if (s->cams[c].data > 0) H5Dclose(s->cams[c].data);
        if (s->cams[c].offsets > 0) H5Dclose(s->cams[c].offsets);
    }
    if (s->action > 0) H5Dclose(s->action);
    if (s->proprio > 0) H5Dclose(s->proprio);
    if (s->file > 0) H5Fclose(s->file);
    free(s->episode_offsets);
    free(s->episode_index);
    free(s->path);
    memset(s, 0, sizeof *s);
}

bv_status bv_shard_open(bv_shard *s, const char *path) {
    memset(s, 0, sizeof *s);
    quiet_hdf5();
    s->path = bv_xstrdup(path);
    bv_status st = BV_OK;
#define FAIL(code, ...)                          \
    do {                                         \
        st = bv_error_set(code, __VA_ARGS__);    \
        goto fail;                               \
    } while (0)
    if (H5Fis_hdf5(path) <= 0) FAIL(BV_ERR_FORMAT, "%s: not an HDF5 file (or unreadable)", path);
    s->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (s->file < 0) FAIL(BV_ERR_IO, "%s: cannot open HDF5 file", path);
    char fmt[64], storage[16], cams[256];
    int64_t ver;
    if (read_attr_str(s->file, "format", fmt, sizeof fmt) || strcmp(fmt, BV_SHARD_FORMAT))
        FAIL(BV_ERR_FORMAT, "%s: not a bitvla shard (attribute format is '%s', expected '%s')", path, fmt,
             BV_SHARD_FORMAT);
    if (read_attr_int(s->file, "version", &ver) || ver != BV_SHARD_VERSION)
        FAIL(BV_ERR_UNSUPPORTED, "%s: shard format version %lld (this build reads %d)", path, (long long)ver,
             BV_SHARD_VERSION);
    if (read_attr_str(s->file, "image_storage", storage, sizeof storage) ||
        read_attr_str(s->file, "cameras", cams, sizeof cams) ||
        read_attr_str(s->file, "dataset_name", s->dataset_name, sizeof s->dataset_name))
        FAIL(BV_ERR_FORMAT, "%s: missing root attributes (image_storage, cameras, dataset_name)", path);
    s->storage = !strcmp(storage, "raw") ? BV_IMAGES_RAW : BV_IMAGES_JPEG;
    s->action = H5Dopen2(s->file, "action", H5P_DEFAULT);
    s->proprio = H5Dopen2(s->file, "proprio", H5P_DEFAULT);
    hsize_t ad[2], pd[2];
    if (s->action < 0 || s->proprio < 0 || dims_of(s->action, 2, ad) || dims_of(s->proprio, 2, pd) || ad[0] != pd[0])
        FAIL(BV_ERR_FORMAT, "%s: /action and /proprio missing or of different lengths", path);
    s->n_steps = (int64_t)ad[0];
    s->action_dim = (int)ad[1];
    s->proprio_dim = (int)pd[1];
    hid_t eo = H5Dopen2(s->file, "episode_offsets", H5P_DEFAULT);
    hsize_t ed[1];
    if (eo < 0 || dims_of(eo, 1, ed) || ed[0] < 1) {
        if (eo >= 0) H5Dclose(eo);
        FAIL(BV_ERR_FORMAT, "%s: /episode_offsets missing", path);
    }
    s->n_episodes = (int64_t)ed[0] - 1;
    s->episode_offsets = bv_xmalloc((size_t)ed[0] * sizeof *s->episode_offsets);
    s->episode_index = bv_xmalloc((size_t)(ed[0]) * sizeof *s->episode_index);
    int rc = H5Dread(eo, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->episode_offsets);
    H5Dclose(eo);
    hid_t ei = H5Dopen2(s->file, "episode_index", H5P_DEFAULT);
    if (rc < 0 || ei < 0 || (s->n_episodes && H5Dread(ei, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                                     s->episode_index) < 0)) {
        if (ei >= 0) H5Dclose(ei);
        FAIL(BV_ERR_FORMAT, "%s: cannot read /episode_offsets or /episode_index", path);
    }
    H5Dclose(ei);
    for (int64_t e = 0; e < s->n_episodes; e++)
        if (s->episode_offsets[e] > s->episode_offsets[e + 1])
            FAIL(BV_ERR_FORMAT, "%s: /episode_offsets decreases at %lld", path, (long long)e);
    if (s->episode_offsets[0] != 0 || s->episode_offsets[s->n_episodes] != s->n_steps)
        FAIL(BV_ERR_FORMAT, "%s: /episode_offsets does not span the %lld steps", path, (long long)s->n_steps);
    for (char *tok = cams, *save = NULL, *c; (c = strtok_r(tok, ",", &save)); tok = NULL) {
        if (s->n_cams == BV_SHARD_MAX_CAMS) FAIL(BV_ERR_FORMAT, "%s: more than %d cameras", path, BV_SHARD_MAX_CAMS);
        int k = s->n_cams++;
        snprintf(s->cams[k].name, sizeof s->cams[k].name, "%s", c);
        char g[64];
        snprintf(g, sizeof g, "images/%s", c);
        hid_t cg = H5Gopen2(s->file, g, H5P_DEFAULT);
        int64_t h = 0, w = 0;
        if (cg < 0 || read_attr_int(cg, "height", &h) || read_attr_int(cg, "width", &w)) {
            if (cg >= 0) H5Gclose(cg);
            FAIL(BV_ERR_FORMAT, "%s: /%s missing or lacks height/width", path, g);
        }
        s->cams[k].height = (int)h;
        s->cams[k].width = (int)w;
        hsize_t dd[4];
        if (s->storage == BV_IMAGES_JPEG) {
            s->cams[k].data = H5Dopen2(cg, "jpeg", H5P_DEFAULT);
            s->cams[k].offsets = H5Dopen2(cg, "offsets", H5P_DEFAULT);
            if (s->cams[k].data < 0 || s->cams[k].offsets < 0 || dims_of(s->cams[k].offsets, 1, dd) ||
                dd[0] != (hsize_t)s->n_steps + 1) {
                H5Gclose(cg);
                FAIL(BV_ERR_FORMAT, "%s: /%s/jpeg or /%s/offsets missing or of the wrong length", path, g, g);
            }
        } else {
            s->cams[k].data = H5Dopen2(cg, "rgb", H5P_DEFAULT);
            if (s->cams[k].data < 0 || dims_of(s->cams[k].data, 4, dd) || dd[0] != (hsize_t)s->n_steps ||
                dd[1] != (hsize_t)h || dd[2] != (hsize_t)w || dd[3] != 3) {
                H5Gclose(cg);
                FAIL(BV_ERR_FORMAT, "%s: /%s/rgb missing or not (%lld, %lld, %lld, 3)", path, g, (long long)s->n_steps,
                     (long long)h, (long long)w);
            }
        }
        H5Gclose(cg);
    }
    return BV_OK;
fail:
#undef FAIL
    bv_shard_close(s);
    return st;
}

bv_status bv_shard_read_action(const bv_shard *s, int64_t step0, int64_t n, float *dst) {
    if (step0 < 0 || n < 0 || read_rows(s->action, H5T_NATIVE_FLOAT, 2, (hsize_t)step0, (hsize_t)n, dst))
        return bv_error_set(BV_ERR_IO, "%s: reading /action rows %lld..%lld failed", s->path, (long long)step0,
                            (long long)(step0 + n));
    return BV_OK;
}

bv_status bv_shard_read_proprio(const bv_shard *s, int64_t step0, int64_t n, float *dst) {
    if (step0 < 0 || n < 0 || read_rows(s->proprio, H5T_NATIVE_FLOAT, 2, (hsize_t)step0, (hsize_t)n, dst))
        return bv_error_set(BV_ERR_IO, "%s: reading /proprio rows %lld..%lld failed", s->path, (long long)step0,
                            (long long)(step0 + n));
    return BV_OK;
}

bv_status bv_shard_read_instruction(const bv_shard *s, int64_t e, char **out) {
    *out = NULL;
    if (e < 0 || e >= s->n_episodes)
        return bv_error_set(BV_ERR_ARG, "%s: episode %lld out of range (%lld episodes)", s->path, (long long)e,
                            (long long)s->n_episodes);
    hid_t d = H5Dopen2(s->file, "instruction", H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8); /* as written; HDF5 does not convert between ASCII and UTF-8 */
    hid_t fs = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t start = (hsize_t)e, one = 1;
    hid_t ms = H5Screate_simple(1, &one, NULL);
    char *str = NULL;
    int rc = -1;
    if (fs >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &one, NULL) >= 0 &&
        H5Dread(d, t, ms, fs, H5P_DEFAULT, &str) >= 0 && str) {
        *out = bv_xstrdup(str);
        H5free_memory(str);
        rc = 0;
    }
    H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    if (rc) return bv_error_set(BV_ERR_IO, "%s: reading /instruction[%lld] failed", s->path, (long long)e);
    return BV_OK;
}

int bv_shard_find_camera(const bv_shard *s, const char *name) {
    for (int c = 0; c < s->n_cams; c++)
        if (!strcmp(s->cams[c].name, name)) return c;
    return -1;
}

bv_status bv_shard_read_jpeg(const bv_shard *s, int cam, int64_t step, uint8_t **buf, size_t *cap, size_t *len) {
    BV_ASSERT(cam >= 0 && cam < s->n_cams && s->storage == BV_IMAGES_JPEG, "camera %d", cam);
    *len = 0;
    if (step < 0 || step >= s->n_steps)
        return bv_error_set(BV_ERR_ARG, "%s: step %lld out of range (%lld steps)", s->path, (long long)step,
                            (long long)s->n_steps);
    int64_t off[2];
    if (read_rows(s->cams[cam].offsets, H5T_NATIVE_INT64, 1, (hsize_t)step, 2, off) || off[1] < off[0])
        return bv_error_set(BV_ERR_FORMAT, "%s: bad /images/%s/offsets at step %lld", s->path, s->cams[cam].name,
                            (long long)step);
    size_t n = (size_t)(off[1] - off[0]);
    if (n > *cap) {
        uint8_t *p = realloc(*buf, n);
        if (!p) return bv_error_set(BV_ERR_NOMEM, "%s: cannot allocate %zu bytes", s->path, n);
        *buf = p;
        *cap = n;
    }
    if (read_rows(s->cams[cam].data, H5T_NATIVE_UINT8, 1, (hsize_t)off[0], n, *buf))
        return bv_error_set(BV_ERR_FORMAT, "%s: reading /images/%s/jpeg bytes %lld..%lld failed", s->path,
                            s->cams[cam].name, (long long)off[0], (long long)off[1]);
    *len = n;
    return BV_OK;
}

bv_status bv_shard_read_rgb(const bv_shard *s, int cam, int64_t step, bv_image *img, uint8_t **scratch,
                            size_t *scratch_cap) {
    BV_ASSERT(cam >= 0 && cam < s->n_cams, "camera %d", cam);
    if (s->storage == BV_IMAGES_JPEG) {
        size_t len;
        bv_status st = bv_shard_read_jpeg(s, cam, step, scratch, scratch_cap, &len);
        if (st) return st;
        char label[600];
        snprintf(label, sizeof label, "%s: /images/%s step %lld", s->path, s->cams[cam].name, (long long)step);
        return bv_image_decode(*scratch, len, img, label);
    }
    int h = s->cams[cam].height, w = s->cams[cam].width;
    size_t need = (size_t)h * (size_t)w * 3;
    if (need > img->cap) {
        uint8_t *p = realloc(img->rgb, need);
        if (!p) return bv_error_set(BV_ERR_NOMEM, "%s: cannot allocate %zu bytes", s->path, need);
        img->rgb = p;
        img->cap = need;
    }
    img->w = w;
    img->h = h;
    if (step < 0 || step >= s->n_steps || read_rows(s->cams[cam].data, H5T_NATIVE_UINT8, 4, (hsize_t)step, 1, img->rgb))
        return bv_error_set(BV_ERR_IO, "%s: reading /images/%s/rgb step %lld failed", s->path, s->cams[cam].name,
                            (long long)step);
    return BV_OK;
}
