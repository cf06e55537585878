/* render.c - flat-shaded software rasterizer (see render.h). */
#include "data/render.h"

#include <math.h>
#include <string.h>

static inline float clamp01(float x) { return x < 0 ? 0 : (x > 1 ? 1 : x); }
static inline float dot3(const float *a, const float *b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
static inline void cross3(const float *a, const float *b, float *o) {
    o[0] = a[1] * b[2] - a[2] * b[1];
    o[1] = a[2] * b[0] - a[0] * b[2];
    o[2] = a[0] * b[1] - a[1] * b[0];
}
static inline void normalize3(float *a) {
    float n = sqrtf(dot3(a, a));
    if (n > 0) a[0] /= n, a[1] /= n, a[2] /= n;
}

void bv_render_target_init(bv_render_target *t, int w, int h) {
    BV_ASSERT(w > 0 && h > 0, "render target %dx%d", w, h);
    t->w = w;
    t->h = h;
    t->rgb = bv_xmalloc((size_t)w * h * 3);
    t->invz = bv_xmalloc((size_t)w * h * sizeof(float));
    t->ids = NULL;
    t->id = 0;
    t->shadowed = NULL;
}

void bv_render_target_free(bv_render_target *t) {
    free(t->rgb);
    free(t->invz);
    memset(t, 0, sizeof *t);
}

void bv_render_clear(bv_render_target *t, const float top[3], const float bottom[3]) {
    for (int j = 0; j < t->h; j++) {
        float s = t->h > 1 ? (float)j / (float)(t->h - 1) : 0.f;
        uint8_t *row = t->rgb + (size_t)j * t->w * 3;
        for (int k = 0; k < 3; k++) row[k] = (uint8_t)lrintf(255.f * clamp01(top[k] + s * (bottom[k] - top[k])));
        for (size_t done = 3, all = (size_t)t->w * 3; done < all; done *= 2) /* double the filled prefix */
            memcpy(row + done, row, BV_MIN(done, all - done));
    }
    memset(t->invz, 0, (size_t)t->w * t->h * sizeof(float));
    if (t->shadowed) memset(t->shadowed, 0, (size_t)t->w * t->h);
}

/* ---- camera ---- */

void bv_render_camera_basis(bv_render_camera *c, const float eye[3], const float fwd[3], const float up[3], float fov_y,
                            int w, int h, float near) {
    memcpy(c->eye, eye, sizeof c->eye);
    memcpy(c->fwd, fwd, sizeof c->fwd);
    memcpy(c->up, up, sizeof c->up);
    cross3(fwd, up, c->right);
    normalize3(c->right);
    c->f = 0.5f * (float)h / tanf(0.5f * fov_y);
    c->cx = 0.5f * (float)w;
    c->cy = 0.5f * (float)h;
    c->near = near;
}

void bv_render_camera_look_at(bv_render_camera *c, const float eye[3], const float at[3], const float up_hint[3],
                              float fov_y, int w, int h, float near) {
    float fwd[3] = {at[0] - eye[0], at[1] - eye[1], at[2] - eye[2]}, right[3], up[3];
    normalize3(fwd);
    cross3(fwd, up_hint, right);
    normalize3(right);
    cross3(right, fwd, up);
    bv_render_camera_basis(c, eye, fwd, up, fov_y, w, h, near);
}

static inline void to_camera(const bv_render_camera *c, const float *p, float *o) {
    float d[3] = {p[0] - c->eye[0], p[1] - c->eye[1], p[2] - c->eye[2]};
    o[0] = dot3(d, c->right);
    o[1] = dot3(d, c->up);
    o[2] = dot3(d, c->fwd);
}

int bv_render_project(const bv_render_camera *c, const float p[3], float *px, float *py, float *depth) {
    float q[3];
    to_camera(c, p, q);
    *depth = q[2];
    if (q[2] < c->near) return 0;
    *px = c->cx + c->f * q[0] / q[2];
    *py = c->cy - c->f * q[1] / q[2];
    return 1;
}

void bv_render_unproject(const bv_render_camera *c, int i, int j, float invz, float p[3]) {
    float z = 1.f / invz;
    float x = ((float)i + 0.5f - c->cx) / c->f * z, y = -((float)j + 0.5f - c->cy) / c->f * z;
    for (int k = 0; k < 3; k++) p[k] = c->eye[k] + x * c->right[k] + y * c->up[k] + z * c->fwd[k];
}

/* ---- meshes ---- */

typedef struct {
    bv_render_mesh *m;
    int cap_v, cap_t;
} mesh_builder;

static int mb_vertex(mesh_builder *b, float x, float y, float z) {
    bv_render_mesh *m = b->m;
    if (m->nv == b->cap_v) {
        b->cap_v = b->cap_v ? 2 * b->cap_v : 64;
        m->v = bv_xrealloc(m->v, (size_t)b->cap_v * 3 * sizeof(float));
    }
    m->v[3 * m->nv] = x, m->v[3 * m->nv + 1] = y, m->v[3 * m->nv + 2] = z;
    return m->nv++;
}

/* Add a triangle, flipped if needed so its normal points along `out` (outward direction). */
static void mb_tri(mesh_builder *b, int i0, int i1, int i2, const float out[3]) {
    bv_render_mesh *m = b->m;
    const float *a = m->v + 3 * i0, *p = m->v + 3 * i1, *q = m->v + 3 * i2;
    float e1[3] = {p[0] - a[0], p[1] - a[1], p[2] - a[2]}, e2[3] = {q[0] - a[0], q[1] - a[1], q[2] - a[2]}, n[3];
    cross3(e1, e2, n);
    if (dot3(n, n) < 1e-14f) return; /* degenerate (sphere poles) */
    if (m->nt == b->cap_t) {
        b->cap_t = b->cap_t ? 2 * b->cap_t : 64;
        m->tri = bv_xrealloc(m->tri, (size_t)b->cap_t * 3 * sizeof(int));
    }
    int *t = m->tri + 3 * m->nt++;
    t[0] = i0;
    if (dot3(n, out) >= 0) t[1] = i1, t[2] = i2;
    else t[1] = i2, t[2] = i1;
}

/* Outward direction of a convex mesh centred at the origin: the triangle's centroid. */
static void mb_tri_convex(mesh_builder *b, int i0, int i1, int i2) {
    const float *v = b->m->v;
    float c[3];
    for (int k = 0; k < 3; k++) c[k] = v[3 * i0 + k] + v[3 * i1 + k] + v[3 * i2 + k];
    mb_tri(b, i0, i1, i2, c);
}

static mesh_builder mb_start(bv_render_mesh *m) {
    memset(m, 0, sizeof *m);
    return (mesh_builder){m, 0, 0};
}

void bv_render_mesh_box(bv_render_mesh *m) {
    mesh_builder b = mb_start(m);
    for (int axis = 0; axis < 3; axis++)
        for (int s = -1; s <= 1; s += 2) {
            int u = (axis + 1) % 3, w = (axis + 2) % 3, idx[4];
            for (int k = 0; k < 4; k++) {
                float p[3];
                p[axis] = 0.5f * (float)s;
                p[u] = (k == 1 || k == 2) ? 0.5f : -0.5f;
                p[w] = (k >= 2) ? 0.5f : -0.5f;
                idx[k] = mb_vertex(&b, p[0], p[1], p[2]);
            }
            mb_tri_convex(&b, idx[0], idx[1], idx[2]);
            mb_tri_convex(&b, idx[0], idx[2], idx[3]);
        }
}

void bv_render_mesh_cylinder(bv_render_mesh *m, int seg) {
    BV_ASSERT(seg >= 3, "cylinder with %d sides", seg);
    mesh_builder b = mb_start(m);
    int c0 = mb_vertex(&b, 0, 0, -0.5f), c1 = mb_vertex(&b, 0, 0, 0.5f);
    int first = m->nv;
    for (int s = 0; s < seg; s++) {
        double a = 2.0 * M_PI * s / seg;
        float x = 0.5f * (float)cos(a), y = 0.5f * (float)sin(a);
        mb_vertex(&b, x, y, -0.5f);
        mb_vertex(&b, x, y, 0.5f);
    }
    for (int s = 0; s < seg; s++) {
        int lo0 = first + 2 * s, hi0 = lo0 + 1, lo1 = first + 2 * ((s + 1) % seg), hi1 = lo1 + 1;
        mb_tri_convex(&b, lo0, lo1, hi1);
        mb_tri_convex(&b, lo0, hi1, hi0);
        mb_tri_convex(&b, c0, lo0, lo1);
        mb_tri_convex(&b, c1, hi0, hi1);
    }
}

void bv_render_mesh_sphere(bv_render_mesh *m, int rings, int seg) {
    BV_ASSERT(rings >= 2 && seg >= 3, "sphere %d x %d", rings, seg);
    mesh_builder b = mb_start(m);
    for (int r = 0; r <= rings; r++) {
        double th = M_PI * r / rings;
        for (int s = 0; s < seg; s++) {
            double ph = 2.0 * M_PI * s / seg;
            mb_vertex(&b, 0.5f * (float)(sin(th) * cos(ph)), 0.5f * (float)(sin(th) * sin(ph)), 0.5f * (float)cos(th));
        }
    }
    for (int r = 0; r < rings; r++)
        for (int s = 0; s < seg; s++) {
            int a = r * seg + s, bb = r * seg + (s + 1) % seg, c = a + seg, d = bb + seg;
            mb_tri_convex(&b, a, bb, d);
            mb_tri_convex(&b, a, d, c);
        }
}

void bv_render_mesh_disc(bv_render_mesh *m, int seg) {
    BV_ASSERT(seg >= 3, "disc with %d sides", seg);
    mesh_builder b = mb_start(m);
    int c = mb_vertex(&b, 0, 0, 0);
    for (int s = 0; s < seg; s++) {
        double a = 2.0 * M_PI * s / seg;
        mb_vertex(&b, 0.5f * (float)cos(a), 0.5f * (float)sin(a), 0);
    }
    const float up[3] = {0, 0, 1};
    for (int s = 0; s < seg; s++) mb_tri(&b, c, 1 + s, 1 + (s + 1) % seg, up);
}

void bv_render_mesh_free(bv_render_mesh *m) {
    free(m->v);
    free(m->tri);
    memset(m, 0, sizeof *m);
}

/* ---- transforms ---- */

bv_render_xform bv_render_xform_trs(const float pos[3], float yaw, float sx, float sy, float sz) {
    float c = cosf(yaw), s = sinf(yaw);
    return (bv_render_xform){{c * sx, -s * sy, 0, pos[0], s * sx, c * sy, 0, pos[1], 0, 0, sz, pos[2]}};
}

bv_render_xform bv_render_xform_rs(const float pos[3], const double rot[9], float sx, float sy, float sz) {
    bv_render_xform x;
    float sc[3] = {sx, sy, sz};
    for (int r = 0; r < 3; r++) {
        for (int k = 0; k < 3; k++) x.m[4 * r + k] = (float)rot[3 * r + k] * sc[k];
        x.m[4 * r + 3] = pos[r];
    }
    return x;
}

bv_render_xform bv_render_xform_segment(const float a[3], const float b[3], float wx, float wy) {
    float z[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]};
    float len = sqrtf(dot3(z, z));
    if (len > 0) z[0] /= len, z[1] /= len, z[2] /= len;
    else z[2] = 1;
    /* any unit vector perpendicular to z, continuous for the near-vertical and near-horizontal
     * links of the arm */
    float h[3] = {fabsf(z[2]) < 0.9f ? 0.f : 1.f, 0, fabsf(z[2]) < 0.9f ? 1.f : 0.f}, x[3], y[3];
    cross3(h, z, x);
    normalize3(x);
    cross3(z, x, y);
    bv_render_xform t;
    for (int r = 0; r < 3; r++) {
        t.m[4 * r + 0] = x[r] * wx;
        t.m[4 * r + 1] = y[r] * wy;
        t.m[4 * r + 2] = z[r] * len;
        t.m[4 * r + 3] = 0.5f * (a[r] + b[r]);
    }
    return t;
}

/* ---- rasterization ---- */

typedef struct {
    float x, y, z; /* camera space */
} cvert;

/* What a rasterized triangle does to the pixels it covers. */
typedef struct {
    int shadow;       /* 0: draw (depth test, write colour, depth, id); 1: shadow decal */
    uint8_t rgb[3];   /* draw: the colour */
    uint8_t receiver; /* shadow: id of the surface it falls on */
    float factor;     /* shadow: colour multiplier */
} raster_op;

/* Screen-space triangle (sx, sy, 1/z), any winding: applies `op` to the pixels whose centre lies
 * inside. Drawing keeps the nearest surface; a shadow darkens pixels of the receiver whose 1/z
 * matches the triangle's (the triangle lies on the visible surface). */
static void raster_tri(bv_render_target *t, const float *s0, const float *s1, const float *s2, const raster_op *op) {
    double x0 = s0[0], y0 = s0[1], x1 = s1[0], y1 = s1[1], x2 = s2[0], y2 = s2[1];
    double area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0);
    if (area > -1e-12 && area < 1e-12) return;
    if (area < 0) { /* make it positive: swap vertices 1 and 2 */
        const float *tmp = s1;
        s1 = s2;
        s2 = tmp;
        x1 = s1[0], y1 = s1[1], x2 = s2[0], y2 = s2[1];
        area = -area;
    }
    double miny = y0 < y1 ? (y0 < y2 ? y0 : y2) : (y1 < y2 ? y1 : y2);
    double maxy = y0 > y1 ? (y0 > y2 ? y0 : y2) : (y1 > y2 ? y1 : y2);
    double minx = x0 < x1 ? (x0 < x2 ? x0 : x2) : (x1 < x2 ? x1 : x2);
    double maxx = x0 > x1 ? (x0 > x2 ? x0 : x2) : (x1 > x2 ? x1 : x2);
    if (!(maxx >= 0 && maxy >= 0 && minx <= t->w && miny <= t->h)) return; /* also NaN */
    int j0 = miny < 0 ? 0 : (int)miny, j1 = maxy > t->h - 1 ? t->h - 1 : (int)maxy;
    int ia = minx < 0 ? 0 : (int)minx, ib = maxx > t->w - 1 ? t->w - 1 : (int)maxx;
    /* edge k: E_k(x, y) = ex_k * x + ey_k * y + ec_k >= 0 inside; E_k is opposite vertex k */
    double vx[3] = {x0, x1, x2}, vy[3] = {y0, y1, y2};
    double ex[3], ey[3], ec[3], inv_ex[3];
    for (int k = 0; k < 3; k++) {
        int a = (k + 1) % 3, b = (k + 2) % 3;
        /* E(p) = (b - a) x (p - a) */
        ex[k] = -(vy[b] - vy[a]);
        ey[k] = vx[b] - vx[a];
        ec[k] = -(ex[k] * vx[a] + ey[k] * vy[a]);
        inv_ex[k] = ex[k] != 0 ? 1.0 / ex[k] : 0;
    }
    /* 1/z as a plane in screen space: iz = za * x + zb * y + zc */
    double iz[3] = {s0[2], s1[2], s2[2]}, inv_area = 1.0 / area;
    double za = 0, zb = 0, zc = 0;
    for (int k = 0; k < 3; k++) {
        za += ex[k] * iz[k] * inv_area;
        zb += ey[k] * iz[k] * inv_area;
        zc += ec[k] * iz[k] * inv_area;
    }
    const uint8_t r = op->rgb[0], g = op->rgb[1], b = op->rgb[2], id = t->id;
    for (int j = j0; j <= j1; j++) {
        double py = j + 0.5;
        /* the span of pixel centres px = i + 0.5 with every E_k >= 0 */
        double lo = ia, hi = ib;
        int empty = 0;
        for (int k = 0; k < 3; k++) {
            double e0 = ey[k] * py + ec[k]; /* E at px = 0 */
            if (ex[k] > 0) {
                /* i >= ceil(x), x clamped to the box first so the int conversion cannot overflow */
                double x = -e0 * inv_ex[k] - 0.5;
                x = x < lo - 1 ? lo - 1 : (x > hi + 1 ? hi + 1 : x);
                double c = (double)(int)x;
                if (c < x) c += 1;
                lo = c > lo ? c : lo;
            } else if (ex[k] < 0) {
                double x = -e0 * inv_ex[k] - 0.5; /* i <= floor(x) */
                x = x < lo - 1 ? lo - 1 : (x > hi + 1 ? hi + 1 : x);
                double f = (double)(int)x;
                if (f > x) f -= 1;
                hi = f < hi ? f : hi;
            } else if (e0 < 0) {
                empty = 1;
            }
        }
        if (empty || lo > hi) continue;
        int a = (int)lo, bnd = (int)hi;
        size_t row = (size_t)j * t->w;
        float *zrow = t->invz + row;
        uint8_t *crow = t->rgb + 3 * row;
        float z = (float)(za * (a + 0.5) + zb * py + zc), dz = (float)za;
        if (!op->shadow) {
            uint8_t *idrow = t->ids ? t->ids + row : NULL;
            for (int i = a; i <= bnd; i++, z += dz)
                if (z > zrow[i]) {
                    zrow[i] = z;
                    crow[3 * i] = r;
                    crow[3 * i + 1] = g;
                    crow[3 * i + 2] = b;
                    if (idrow) idrow[i] = id;
                }
        } else {
            const uint8_t *idrow = t->ids + row;
            uint8_t *done = t->shadowed + row;
            for (int i = a; i <= bnd; i++, z += dz)
                if (idrow[i] == op->receiver && !done[i] && fabsf(z - zrow[i]) <= 1e-3f * zrow[i]) {
                    done[i] = 1;
                    for (int k = 0; k < 3; k++) crow[3 * i + k] = (uint8_t)(crow[3 * i + k] * op->factor + 0.5f);
                }
        }
    }
}

/* Clip a world-space convex polygon (n <= 8 vertices) against the near plane, project it and
 * rasterize it as a fan. */
static void clip_raster_poly(bv_render_target *t, const bv_render_camera *c, float (*w)[3], int n,
                             const raster_op *op) {
    cvert in[8], out[9];
    for (int k = 0; k < n; k++) {
        float q[3];
        to_camera(c, w[k], q);
        in[k] = (cvert){q[0], q[1], q[2]};
    }
    int no = 0; /* Sutherland-Hodgman against z >= near */
    for (int k = 0; k < n; k++) {
        cvert a = in[k], b = in[(k + 1) % n];
        int ain = a.z >= c->near, bin = b.z >= c->near;
        if (ain) out[no++] = a;
        if (ain != bin) {
            float s = (c->near - a.z) / (b.z - a.z);
            out[no++] = (cvert){a.x + s * (b.x - a.x), a.y + s * (b.y - a.y), c->near};
        }
    }
    if (no < 3) return;
    float sv[9][3];
    for (int k = 0; k < no; k++) {
        float iz = 1.f / out[k].z;
        sv[k][0] = c->cx + c->f * out[k].x * iz;
        sv[k][1] = c->cy - c->f * out[k].y * iz;
        sv[k][2] = iz;
    }
    for (int k = 1; k + 1 < no; k++) raster_tri(t, sv[0], sv[k], sv[k + 1], op);
}

static void clip_raster(bv_render_target *t, const bv_render_camera *c, float w[3][3], const raster_op *op) {
    clip_raster_poly(t, c, w, 3, op);
}

/* Clip a convex polygon in the plane z = const to x or y (axis) >= lo (sign 1) or <= hi (sign -1). */
static int clip_axis(float (*in)[3], int n, float (*out)[3], int axis, float bound, float sign) {
    int no = 0;
    for (int k = 0; k < n; k++) {
        const float *a = in[k], *b = in[(k + 1) % n];
        float da = sign * (a[axis] - bound), db = sign * (b[axis] - bound);
        if (da >= 0) memcpy(out[no++], a, 3 * sizeof(float));
        if ((da >= 0) != (db >= 0)) {
            float s = da / (da - db);
            for (int r = 0; r < 3; r++) out[no][r] = a[r] + s * (b[r] - a[r]);
            no++;
        }
    }
    return no;
}

static void world_tri(const bv_render_mesh *m, const bv_render_xform *xf, int ti, float w[3][3], float n[3]) {
    const float *M = xf->m;
    for (int k = 0; k < 3; k++) {
        const float *v = m->v + 3 * m->tri[3 * ti + k];
        for (int r = 0; r < 3; r++)
            w[k][r] = M[4 * r] * v[0] + M[4 * r + 1] * v[1] + M[4 * r + 2] * v[2] + M[4 * r + 3];
    }
    float e1[3] = {w[1][0] - w[0][0], w[1][1] - w[0][1], w[1][2] - w[0][2]};
    float e2[3] = {w[2][0] - w[0][0], w[2][1] - w[0][1], w[2][2] - w[0][2]};
    cross3(e1, e2, n);
}

void bv_render_draw(bv_render_target *t, const bv_render_camera *c, const bv_render_light *light,
                    const bv_render_mesh *m, const bv_render_xform *xf, const float rgb[3]) {
    raster_op op = {0};
    for (int ti = 0; ti < m->nt; ti++) {
        float w[3][3], n[3];
        world_tri(m, xf, ti, w, n);
        float toeye[3] = {c->eye[0] - w[0][0], c->eye[1] - w[0][1], c->eye[2] - w[0][2]};
        if (dot3(n, toeye) <= 0) continue; /* back face */
        normalize3(n);
        float shade = light->ambient + light->diffuse * fmaxf(0.f, dot3(n, light->dir));
        for (int k = 0; k < 3; k++) op.rgb[k] = (uint8_t)lrintf(255.f * clamp01(rgb[k] * shade));
        clip_raster(t, c, w, &op);
    }
}

void bv_render_shadow_plane(bv_render_target *t, const bv_render_camera *c, const bv_render_light *light, float h,
                            const float *rect, uint8_t receiver, float factor, const bv_render_mesh *m,
                            const bv_render_xform *xf) {
    BV_ASSERT(t->ids && t->shadowed, "shadows need the target's id and shadow buffers");
    const float *L = light->dir;
    BV_ASSERT(L[2] > 0.05f, "light from below or grazing (dir z = %g)", (double)L[2]);
    raster_op op = {.shadow = 1, .receiver = receiver, .factor = factor};
    for (int ti = 0; ti < m->nt; ti++) {
        float w[3][3], n[3];
        world_tri(m, xf, ti, w, n);
        /* the lit faces of a closed mesh cover its shadow exactly once */
        if (dot3(n, L) <= 0) continue;
        int above = 0;
        for (int k = 0; k < 3; k++) {
            float dz = w[k][2] - h;
            if (dz > 0) above = 1;
            else dz = 0;
            w[k][0] -= dz / L[2] * L[0];
            w[k][1] -= dz / L[2] * L[1];
            w[k][2] = h;
        }
        if (!above) continue;
        if (!rect) {
            clip_raster(t, c, w, &op);
            continue;
        }
        /* keep the part over the receiver (a triangle clipped by 4 lines has at most 7 corners) */
        float a[8][3], b[8][3];
        int n_poly = 3;
        memcpy(a, w, sizeof w);
        n_poly = clip_axis(a, n_poly, b, 0, rect[0], 1.f);
        n_poly = clip_axis(b, n_poly, a, 1, rect[1], 1.f);
        n_poly = clip_axis(a, n_poly, b, 0, rect[2], -1.f);
        n_poly = clip_axis(b, n_poly, a, 1, rect[3], -1.f);
        if (n_poly >= 3) clip_raster_poly(t, c, a, n_poly, &op);
    }
}
