/* render.h - a small software rasterizer for the built-in tabletop task (data/synth_env.h).
 *
 * Flat-shaded triangle meshes with a depth buffer, a pinhole camera, near-plane clipping, one
 * directional light (Lambert + ambient) and u8 RGB output, row-major (H, W, 3) with row 0 at the
 * top of the image. World units are metres. Meshes are unit primitives (box, cylinder, sphere,
 * disc) drawn with a 3x4 affine transform, so a scene is a handful of draw calls per frame.
 *
 * Owns: a target owns its colour and depth buffers (bv_render_target_init / _free); a mesh owns
 * its vertex and index arrays (bv_render_mesh_free).
 * Must not: know about the task (objects, robot, shadows of particular things live in synth_env.c);
 * allocate while drawing.
 *
 * Conventions: camera space is (right, up, forward) with forward = viewing direction; a point at
 * camera depth z projects to column cx + f*x/z, row cy - f*y/z (pixel centres at +0.5). The depth
 * buffer stores 1/z (0 = nothing drawn), which is affine in screen space and so interpolates
 * exactly; bv_render_unproject turns a pixel and its stored 1/z back into a world point.
 *
 * Shadows are planar: bv_render_shadow_plane projects a mesh along the light onto a horizontal
 * plane and darkens the pixels where that plane is the visible surface of a given draw id (the
 * table, a plate, the top of a box). Cheap (only the shadow's own area is rasterized) and exact
 * for flat receivers, which is all a tabletop has.
 * Meshes are wound counter-clockwise seen from outside; back faces are culled.
 */
#ifndef BV_DATA_RENDER_H
#define BV_DATA_RENDER_H

#include <stdint.h>

#include "src/common.h"

typedef struct {
    int w, h;
    uint8_t *rgb;      /* (h, w, 3) */
    float *invz;       /* (h, w): 1/depth of the nearest surface, 0 where only background */
    uint8_t *ids;      /* (h, w): `id` of the draw that wrote each pixel, or NULL to keep none */
    uint8_t id;        /* written to ids by the following draws */
    uint8_t *shadowed; /* (h, w): 1 where a shadow already darkened the pixel, or NULL */
} bv_render_target;

typedef struct {
    float eye[3];
    float right[3], up[3], fwd[3]; /* orthonormal, world coordinates */
    float f;                       /* focal length in pixels (set for a given target height) */
    float cx, cy;                  /* principal point in pixels */
    float near;                    /* near clipping distance (metres) */
} bv_render_camera;

typedef struct {
    float dir[3];  /* unit vector pointing TOWARD the light */
    float ambient; /* colour factor of faces turned away from the light */
    float diffuse; /* added factor times max(0, n . dir) */
} bv_render_light;

typedef struct {
    int nv, nt;
    float *v; /* (nv, 3) */
    int *tri; /* (nt, 3) vertex indices, counter-clockwise seen from outside */
} bv_render_mesh;

/* Allocate colour and depth buffers (no id or shadow buffers). */
void bv_render_target_init(bv_render_target *t, int w, int h);
void bv_render_target_free(bv_render_target *t);
/* Fill the colour buffer with a vertical gradient from `top` to `bottom` (RGB 0..1), reset the
 * depth buffer and the shadow flags. */
void bv_render_clear(bv_render_target *t, const float top[3], const float bottom[3]);

/* Camera at `eye` looking at `at`, image-up as close to `up_hint` as possible, vertical field of
 * view fov_y (radians), for a target of w x h pixels. */
void bv_render_camera_look_at(bv_render_camera *c, const float eye[3], const float at[3], const float up_hint[3],
                              float fov_y, int w, int h, float near);
/* Camera from an explicit basis (fwd = viewing direction, up = image up; both unit, orthogonal). */
void bv_render_camera_basis(bv_render_camera *c, const float eye[3], const float fwd[3], const float up[3], float fov_y,
                            int w, int h, float near);
/* World point -> pixel coordinates (column, row) and depth; returns 0 when behind the near plane. */
int bv_render_project(const bv_render_camera *c, const float p[3], float *px, float *py, float *depth);
/* Pixel (column i, row j) with its stored 1/z -> world point. */
void bv_render_unproject(const bv_render_camera *c, int i, int j, float invz, float p[3]);

/* Unit primitives, all centred at the origin: box [-0.5, 0.5]^3; cylinder of radius 0.5 along z
 * from -0.5 to 0.5 with `seg` sides; sphere of radius 0.5 with `rings` x `seg` facets; disc of
 * radius 0.5 in the plane z = 0 facing +z. */
void bv_render_mesh_box(bv_render_mesh *m);
void bv_render_mesh_cylinder(bv_render_mesh *m, int seg);
void bv_render_mesh_sphere(bv_render_mesh *m, int rings, int seg);
void bv_render_mesh_disc(bv_render_mesh *m, int seg);
void bv_render_mesh_free(bv_render_mesh *m);

/* A 3x4 affine transform, row-major: world = M[:, :3] * local + M[:, 3]. */
typedef struct {
    float m[12];
} bv_render_xform;
/* Translate to `pos`, rotate by yaw about z, scale the unit primitive by (sx, sy, sz). */
bv_render_xform bv_render_xform_trs(const float pos[3], float yaw, float sx, float sy, float sz);
/* Columns from a 3x3 rotation (row-major) times per-axis scale, plus translation. */
bv_render_xform bv_render_xform_rs(const float pos[3], const double rot[9], float sx, float sy, float sz);
/* A box of cross-section (wx, wy) stretched between points a and b (its local z runs a -> b). */
bv_render_xform bv_render_xform_segment(const float a[3], const float b[3], float wx, float wy);

/* Draw a mesh with transform `xf` in colour `rgb` (0..1), flat shaded by `light`. */
void bv_render_draw(bv_render_target *t, const bv_render_camera *c, const bv_render_light *light,
                    const bv_render_mesh *m, const bv_render_xform *xf, const float rgb[3]);

/* The shadow the mesh casts along light->dir onto the plane z = h: multiplies by `factor` the
 * colour of every pixel whose visible surface has id `receiver` and lies on that plane (1/z within
 * a relative 1e-3), once per pixel however many shadows cover it (the target's `shadowed` flags,
 * which must be set). Only the part of the plane inside `rect` (xmin, ymin, xmax, ymax; NULL for
 * all of it) is considered, which keeps the work to the receiver's own area. Parts of the mesh
 * below the plane cast nothing. */
void bv_render_shadow_plane(bv_render_target *t, const bv_render_camera *c, const bv_render_light *light, float h,
                            const float *rect, uint8_t receiver, float factor, const bv_render_mesh *m,
                            const bv_render_xform *xf);

#endif
