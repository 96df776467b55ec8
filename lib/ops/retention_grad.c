/* retention_grad.c - retcl_retention_backward: checks and dispatch of the
 * backward of every retention algorithm and form (kernels in
 * cl/retention_grad.cl, docs/design.md §1.7). */
#include "ops/retention_grad.h"

#include "ops/limits.h"
#include "runtime/context.h"
#include "runtime/launch.h"
#include "runtime/status.h"
#include "runtime/validate.h"

static const char *OP = "retcl_retention_backward";

/* a + b, saturating (SIZE_MAX stays SIZE_MAX). */
static size_t add_sat(size_t a, size_t b) {
  return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* Reserve n floats of the workspace at *top, returning its offset. */
static size_t region(size_t *top, size_t n) {
  const size_t off = *top;
  *top = add_sat(*top, n);
  return off;
}

retcl_status retcl__retention_grad_plan(retcl_context *ctx, const char *op,
                                        const retcl_retention_desc *d,
                                        int has_state_in, int has_d_state_out,
                                        int has_d_state_in,
                                        retcl_retention_grad_plan *plan) {
  retcl_retention_grad_plan p = {0};
  if (d->packing.count)
    return retcl__fail(ctx, RETCL_ERROR_UNSUPPORTED,
                       "%s: packed sequences (desc->packing) have no backward "
                       "yet; run each sequence as a call of its own",
                       op);
  retcl_status st = retcl__retention_plan(ctx, op, d, has_state_in,
                                          has_d_state_out, &p.f);
  if (st) return st;
  if (has_d_state_in && !has_state_in)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                       "%s: d_state_in is given but state_in is not (the "
                       "forward started from zero; there is no initial "
                       "state to differentiate)",
                       op);
  p.has_state_in = has_state_in;
  p.has_d_state_out = has_d_state_out;
  p.has_d_state_in = has_d_state_in;
  p.ts = d->form == RETCL_FORM_TORCHSCALE;
  p.cpu = retcl__cpu_access(ctx, RETCL_P_RETENTION_GRAD_ACCESS);
  p.vw = (size_t)retcl__param(ctx, RETCL_P_RETENTION_GRAD_VW);
  p.rb = (size_t)retcl__param(ctx, RETCL_P_RETENTION_GRAD_RB);
  p.kt = p.vw * (size_t)retcl__param(ctx, RETCL_P_RETENTION_GRAD_NJ);
  p.kb = (size_t)retcl__param(ctx, RETCL_P_RETENTION_GRAD_KB);
  p.rkb = (size_t)retcl__param(ctx, RETCL_P_RETENTION_GRAD_RKB);
  p.gx = (size_t)retcl__param(ctx, RETCL_P_RETENTION_GRAD_GX);
  p.gy = (size_t)retcl__param(ctx, RETCL_P_RETENTION_GRAD_GY);
  const size_t bh = retcl__mul(d->batch, d->heads);
  const size_t bht = retcl__mul(bh, d->tokens);
  const size_t dkdv = d->key_dim * d->value_dim;
  size_t top = 0;
  if (p.ts) p.off_F = region(&top, bht);
  if (d->algorithm == RETCL_ALGO_RECURRENT) {
    /* State and state gradient rows, and one partial dv per row block
     * when the rows are split. */
    p.n_parts = (d->key_dim + p.rkb - 1) / p.rkb;
    p.off_S = region(&top, retcl__mul(bh, dkdv));
    p.off_G = region(&top, retcl__mul(bh, dkdv));
    if (p.n_parts > 1) p.off_P = region(&top, retcl__mul(p.n_parts, p.f.vo));
  } else {
    const int chunked = d->algorithm == RETCL_ALGO_CHUNKWISE;
    p.n_seg = p.f.chunks;
    p.seg = p.f.chunk;
    p.ntile = (p.seg + p.kt - 1) / p.kt;
    p.need_U = chunked && p.n_seg > 1;
    p.has_R = p.need_U || has_state_in;
    p.need_W = (chunked && p.n_seg > 1) || has_d_state_in;
    p.has_dR = (chunked && p.n_seg > 1) || has_d_state_out;
    p.run_states_bwd = p.has_dR || has_d_state_in;
    const size_t tiles = retcl__mul(retcl__mul(bh, p.n_seg), p.ntile * p.kt);
    const size_t states = retcl__mul(retcl__mul(bh, p.n_seg), dkdv);
    /* Each panel region ends in rb floats of padding: a block of rows
     * near a tile's end reads (and never uses) a few floats past it. */
    const size_t qk_tiles = add_sat(retcl__mul(tiles, d->key_dim), p.rb);
    const size_t vo_tiles = add_sat(retcl__mul(tiles, d->value_dim), p.rb);
    p.off_Qt = region(&top, qk_tiles);
    p.off_Kt = region(&top, qk_tiles);
    p.off_Vt = region(&top, vo_tiles);
    p.off_Ot = region(&top, vo_tiles);
    if (p.has_R) p.off_R = region(&top, states);
    if (p.run_states_bwd) {
      p.off_dR = region(&top, states);
      p.off_dRt = region(&top, states);
    }
  }
  p.scratch = top;
  if (p.scratch > RETCL_MAX_INDEX)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_SIZE,
                       "%s: the call needs %zu floats of scratch (transposed "
                       "tiles of q, v and d_out, and a state per chunk); the "
                       "limit is %zu%s",
                       op, p.scratch, RETCL_MAX_INDEX,
                       d->algorithm == RETCL_ALGO_CHUNKWISE
                           ? ": use a larger chunk_size or fewer tokens"
                           : "");
  *plan = p;
  return RETCL_SUCCESS;
}

/* One tensor argument as the kernels take it: buffer, offset, strides. */
typedef struct tensor_arg {
  cl_mem mem;
  cl_uint off;
  retcl_strides s;
} tensor_arg;

/* A tensor's five arguments: K, k_off, k_sb, k_st, k_sh (say). */
#define TENSOR_ARGS(t, up, lo)                                              \
  RETCL_KARG(#up, (t).mem), RETCL_KARG(#lo "_off", (t).off),                \
      RETCL_KARG(#lo "_sb", (t).s.batch), RETCL_KARG(#lo "_st", (t).s.token), \
      RETCL_KARG(#lo "_sh", (t).s.head)

/* What every launch of one call shares. */
typedef struct launch {
  retcl_context *ctx;
  const retcl_retention_grad_plan *p;
  tensor_arg q, k, v, o, dq, dk, dv;
  cl_mem log_decay, work;
  cl_uint ld_off;
  cl_uint T, H, Dk, Dv;
  cl_int has_F;      /* torchscale: row weights in the F region */
  cl_float w_scale;  /* raw: the scale */
  cl_int ts_state;   /* torchscale: α, β of the states */
  cl_float position;
  cl_uint f_off;
  int cpu_device;  /* the device is a CPU */
  cl_uint wait_n; /* consumed by the first enqueue */
  const cl_event *wait;
  cl_event *event; /* set by the last enqueue */
} launch;

static retcl_status go(launch *l, retcl_kernel_id id, const retcl_karg *args,
                       size_t nargs, const retcl_grid *grid, int is_last) {
  retcl_status st = retcl__launch(l->ctx, id, args, nargs, grid, l->wait_n,
                                  l->wait, is_last ? l->event : NULL);
  l->wait_n = 0;
  l->wait = NULL;
  return st;
}

/* Kernels whose work-items do not cooperate: one work-item per group on
 * the CPU access pattern, and on any CPU device (where PoCL, left to
 * choose, compiles one more variant of a kernel for every group shape it
 * picks: a test's many shapes cost minutes); the driver's choice on a
 * GPU. */
static retcl_grid grid3(const launch *l, size_t g0, size_t g1, size_t g2) {
  return retcl__grid(l->p->cpu || l->cpu_device, 3, g0, g1, g2);
}

static size_t blocks(size_t n, size_t w) { return (n + w - 1) / w; }

/* X's transposed tiles into the panel region at off (weighted: dO'). */
static retcl_status run_panels(launch *l, const tensor_arg *x, cl_uint D,
                               size_t off, int weighted) {
  const retcl_retention_grad_plan *p = l->p;
  const cl_uint p_off = (cl_uint)off, C = (cl_uint)p->seg,
                n_seg = (cl_uint)p->n_seg;
  const cl_int has_F = weighted ? l->has_F : 0;
  const cl_float w_scale = weighted ? l->w_scale : 1.0f;
  const retcl_karg args[] = {
      TENSOR_ARGS(*x, X, x),       RETCL_KARG("work", l->work),
      RETCL_KARG("p_off", p_off),  RETCL_KARG("f_off", l->f_off),
      RETCL_KARG("has_F", has_F),  RETCL_KARG("w_scale", w_scale),
      RETCL_KARG("T", l->T),       RETCL_KARG("H", l->H),
      RETCL_KARG("D", D),          RETCL_KARG("C", C),
      RETCL_KARG("n_seg", n_seg)};
  const size_t bhs = p->f.d.batch * p->f.d.heads * p->n_seg;
  const retcl_grid g = p->cpu ? grid3(l, p->ntile, 1, bhs)
                              : grid3(l, p->kt, D, p->ntile * bhs);
  return go(l, RETCL_KERNEL_RETENTION_GRAD_PANELS, args, RETCL_NARGS(args), &g,
            0);
}

/* torchscale's row weights into the F region. */
static retcl_status run_row_factor(launch *l, cl_int mode, size_t C,
                                   size_t n_seg) {
  const retcl_retention_grad_plan *p = l->p;
  const cl_uint qt_off = (cl_uint)p->off_Qt, r_off = (cl_uint)p->off_R;
  const cl_int has_R = p->has_R;
  const cl_uint Cu = (cl_uint)C, Ns = (cl_uint)n_seg;
  const retcl_karg args[] = {
      TENSOR_ARGS(l->k, K, k),
      RETCL_KARG("log_decay", l->log_decay), RETCL_KARG("ld_off", l->ld_off),
      RETCL_KARG("work", l->work),     RETCL_KARG("f_off", l->f_off),
      RETCL_KARG("qt_off", qt_off),    RETCL_KARG("r_off", r_off),
      RETCL_KARG("has_R", has_R),      RETCL_KARG("T", l->T),
      RETCL_KARG("H", l->H),           RETCL_KARG("Dk", l->Dk),
      RETCL_KARG("Dv", l->Dv),         RETCL_KARG("C", Cu),
      RETCL_KARG("n_seg", Ns),         RETCL_KARG("mode", mode),
      RETCL_KARG("position", l->position)};
  const size_t bhs = p->f.d.batch * p->f.d.heads * n_seg;
  const retcl_grid g = grid3(l, p->cpu ? blocks(C, p->kt) : C, 1, bhs);
  return go(l, RETCL_KERNEL_RETENTION_GRAD_ROW_FACTOR, args, RETCL_NARGS(args),
            &g, 0);
}

/* Every chunk's state in one sweep (kernel states): mode 0 the transposed
 * raw states before each chunk (Rᵀ, from α S_0) into the R region; mode 1
 * the state gradients after each chunk (dR and dRᵀ, from β dS_T), and
 * d_state_in. add: whether the chunks' own terms are summed. */
static retcl_status run_states(launch *l, cl_int mode, cl_int add,
                               retcl_buffer start, retcl_buffer d_state_in) {
  const retcl_retention_grad_plan *p = l->p;
  const tensor_arg *x = mode ? &l->q : &l->v, *y = mode ? &l->o : &l->k;
  const cl_uint Dx = mode ? l->Dk : l->Dv, Dy = mode ? l->Dv : l->Dk;
  const cl_uint s_off = (cl_uint)(mode ? p->off_dR : p->off_R),
                st_off = (cl_uint)(mode ? p->off_dRt : 0);
  const cl_int has_s0 = start.mem != NULL, has_in = d_state_in.mem != NULL;
  const cl_mem s0 = has_s0 ? start.mem : l->work;
  const cl_mem ds_in = has_in ? d_state_in.mem : l->work;
  const cl_uint s0_off = (cl_uint)start.offset,
                ds_in_off = (cl_uint)d_state_in.offset;
  const cl_uint C = (cl_uint)p->seg, Nc = (cl_uint)p->n_seg;
  /* cpu: an item takes every row and as many pairs of column blocks as
   * leave four items per compute unit (K and V then stream through few
   * items); gpu: kb rows and one pair per item, for more items. */
  const cl_uint x_rows = p->cpu ? Dx : (cl_uint)p->kb;
  const size_t n_pairs = blocks(Dy, 2 * p->vw), bh = p->f.d.batch * p->f.d.heads;
  const size_t groups = p->cpu ? retcl__cpu_split(l->ctx, bh, n_pairs) : n_pairs;
  const cl_uint pairs = (cl_uint)blocks(n_pairs, groups);
  const retcl_karg args[] = {
      TENSOR_ARGS(*x, X, x),           TENSOR_ARGS(*y, Y, y),
      RETCL_KARG("log_decay", l->log_decay), RETCL_KARG("ld_off", l->ld_off),
      RETCL_KARG("work", l->work),     RETCL_KARG("s_off", s_off),
      RETCL_KARG("st_off", st_off),    RETCL_KARG("f_off", l->f_off),
      RETCL_KARG("has_F", l->has_F),   RETCL_KARG("w_scale", l->w_scale),
      RETCL_KARG("S0", s0),            RETCL_KARG("s0_off", s0_off),
      RETCL_KARG("has_s0", has_s0),    RETCL_KARG("dS_in", ds_in),
      RETCL_KARG("ds_in_off", ds_in_off),
      RETCL_KARG("has_d_state_in", has_in), RETCL_KARG("T", l->T),
      RETCL_KARG("H", l->H),           RETCL_KARG("Dx", Dx),
      RETCL_KARG("Dy", Dy),            RETCL_KARG("C", C),
      RETCL_KARG("n_chunks", Nc),      RETCL_KARG("x_rows", x_rows),
      RETCL_KARG("pairs", pairs),      RETCL_KARG("mode", mode),
      RETCL_KARG("add", add),
      RETCL_KARG("ts_state", l->ts_state),
      RETCL_KARG("position", l->position)};
  const retcl_grid g =
      grid3(l, blocks(n_pairs, pairs), blocks(Dx, x_rows), bh);
  return go(l, RETCL_KERNEL_RETENTION_GRAD_STATES, args, RETCL_NARGS(args),
            &g, 0);
}

/* The dq and dkdv grid: cpu, RB rows per item; gpu, groups of gx x gy
 * (within the device's group and local memory limits). */
static retcl_grid rows_grid(const launch *l, size_t local_floats_per_row) {
  const retcl_retention_grad_plan *p = l->p;
  const size_t bhs = p->f.d.batch * p->f.d.heads * p->n_seg;
  /* cpu: a tile of kt rows per item (in blocks of rb) */
  if (p->cpu) return grid3(l, 1, p->ntile, bhs);
  size_t limit = retcl__group_limit(l->ctx, RETCL_KERNEL_RETENTION_GRAD_DQ);
  const size_t l2 = retcl__group_limit(l->ctx, RETCL_KERNEL_RETENTION_GRAD_DKDV);
  if (l2 < limit) limit = l2;
  size_t gy = p->gy < limit ? p->gy : limit;
  const size_t local = retcl__local_mem_limit(l->ctx);
  while (gy > 1 && local &&
         gy * local_floats_per_row * sizeof(float) > local)
    gy /= 2;
  size_t gx = p->gx < limit / gy ? p->gx : limit / gy;
  if (gx < 1) gx = 1;
  const retcl_grid g = {3, {gx, retcl__round_up(p->seg, gy), bhs}, {gx, gy, 1}};
  return g;
}

static retcl_status run_dq(launch *l) {
  const retcl_retention_grad_plan *p = l->p;
  const cl_uint vt_off = (cl_uint)p->off_Vt, ot_off = (cl_uint)p->off_Ot,
                r_off = (cl_uint)p->off_R;
  const cl_int has_R = p->has_R;
  const cl_uint C = (cl_uint)p->seg, Ns = (cl_uint)p->n_seg;
  /* dkdv's local tiles are the larger (two per row): one shape for both. */
  const retcl_grid g = rows_grid(l, 2 * p->kt);
  const size_t tile = p->cpu ? sizeof(float) : g.local[1] * p->kt * sizeof(float);
  const retcl_karg args[] = {
      TENSOR_ARGS(l->k, K, k),         TENSOR_ARGS(l->o, dO, o),
      TENSOR_ARGS(l->dq, dQ, q),
      RETCL_KARG("log_decay", l->log_decay), RETCL_KARG("ld_off", l->ld_off),
      RETCL_KARG("work", l->work),     RETCL_KARG("f_off", l->f_off),
      RETCL_KARG("has_F", l->has_F),   RETCL_KARG("w_scale", l->w_scale),
      RETCL_KARG("vt_off", vt_off),    RETCL_KARG("ot_off", ot_off),
      RETCL_KARG("r_off", r_off),
      RETCL_KARG("has_R", has_R),      RETCL_KARG("T", l->T),
      RETCL_KARG("H", l->H),           RETCL_KARG("Dk", l->Dk),
      RETCL_KARG("Dv", l->Dv),         RETCL_KARG("C", C),
      RETCL_KARG("n_seg", Ns),         RETCL_KLOCAL("tile", tile)};
  return go(l, RETCL_KERNEL_RETENTION_GRAD_DQ, args, RETCL_NARGS(args), &g, 0);
}

static retcl_status run_dkdv(launch *l) {
  const retcl_retention_grad_plan *p = l->p;
  const cl_uint qt_off = (cl_uint)p->off_Qt, kt_off = (cl_uint)p->off_Kt,
                vt_off = (cl_uint)p->off_Vt, ot_off = (cl_uint)p->off_Ot,
                dr_off = (cl_uint)p->off_dR, drt_off = (cl_uint)p->off_dRt;
  const cl_int has_dR = p->has_dR;
  const cl_uint C = (cl_uint)p->seg, Ns = (cl_uint)p->n_seg;
  const retcl_grid g = rows_grid(l, 2 * p->kt);
  const size_t tile =
      p->cpu ? sizeof(float) : 2 * g.local[1] * p->kt * sizeof(float);
  const retcl_karg args[] = {
      TENSOR_ARGS(l->q, Q, q),         TENSOR_ARGS(l->k, K, k),
      TENSOR_ARGS(l->v, V, v),         TENSOR_ARGS(l->o, dO, o),
      TENSOR_ARGS(l->dk, dK, dk),      TENSOR_ARGS(l->dv, dV, dv),
      RETCL_KARG("log_decay", l->log_decay), RETCL_KARG("ld_off", l->ld_off),
      RETCL_KARG("work", l->work),     RETCL_KARG("f_off", l->f_off),
      RETCL_KARG("has_F", l->has_F),   RETCL_KARG("w_scale", l->w_scale),
      RETCL_KARG("qt_off", qt_off),    RETCL_KARG("kt_off", kt_off),
      RETCL_KARG("vt_off", vt_off),    RETCL_KARG("ot_off", ot_off),
      RETCL_KARG("dr_off", dr_off),    RETCL_KARG("drt_off", drt_off),
      RETCL_KARG("has_dR", has_dR),    RETCL_KARG("T", l->T),
      RETCL_KARG("H", l->H),           RETCL_KARG("Dk", l->Dk),
      RETCL_KARG("Dv", l->Dv),         RETCL_KARG("C", C),
      RETCL_KARG("n_seg", Ns),         RETCL_KLOCAL("tile", tile)};
  return go(l, RETCL_KERNEL_RETENTION_GRAD_DKDV, args, RETCL_NARGS(args), &g,
            1);
}

/* The recurrent algorithm: forward sweep (dq), reverse sweep (dk, dv,
 * dS_0), and the sum of the dv partials when the state rows are split. */
static retcl_status run_recurrent(launch *l, retcl_buffer state_in,
                                  retcl_buffer d_state_out,
                                  retcl_buffer d_state_in) {
  const retcl_retention_grad_plan *p = l->p;
  const retcl_retention_desc *d = &p->f.d;
  const size_t bh = d->batch * d->heads;
  const cl_uint rkb = (cl_uint)p->rkb;
  retcl_status st;
  if (l->has_F &&
      (st = run_row_factor(l, 3, d->tokens, 1)))
    return st;
  {
    const cl_uint s_off = (cl_uint)p->off_S, s_in_off = (cl_uint)state_in.offset;
    const cl_int has_in = state_in.mem != NULL;
    const cl_mem s_in = has_in ? state_in.mem : l->work;
    const retcl_karg args[] = {
        TENSOR_ARGS(l->k, K, k),       TENSOR_ARGS(l->v, V, v),
        TENSOR_ARGS(l->o, dO, o),      TENSOR_ARGS(l->dq, dQ, q),
        RETCL_KARG("log_decay", l->log_decay), RETCL_KARG("ld_off", l->ld_off),
        RETCL_KARG("work", l->work),   RETCL_KARG("s_off", s_off),
        RETCL_KARG("f_off", l->f_off), RETCL_KARG("has_F", l->has_F),
        RETCL_KARG("w_scale", l->w_scale), RETCL_KARG("S_in", s_in),
        RETCL_KARG("s_in_off", s_in_off), RETCL_KARG("has_state_in", has_in),
        RETCL_KARG("T", l->T),         RETCL_KARG("H", l->H),
        RETCL_KARG("Dk", l->Dk),       RETCL_KARG("Dv", l->Dv),
        RETCL_KARG("rkb", rkb),        RETCL_KARG("ts_state", l->ts_state),
        RETCL_KARG("position", l->position)};
    const retcl_grid g = grid3(l, p->n_parts, 1, bh);
    if ((st = go(l, RETCL_KERNEL_RETENTION_GRAD_REC_DQ, args,
                 RETCL_NARGS(args), &g, 0)))
      return st;
  }
  /* dv: straight into the output, or token-major partials in scratch. */
  const int split = p->n_parts > 1;
  const tensor_arg part = {
      l->work, (cl_uint)p->off_P,
      retcl__strides(RETCL_LAYOUT_TOKEN_MAJOR, d->tokens, d->heads,
                     d->value_dim)};
  const tensor_arg *dvt = split ? &part : &l->dv;
  const cl_uint part_stride = split ? (cl_uint)p->f.vo : 0;
  {
    const cl_uint g_off = (cl_uint)p->off_G;
    const cl_int has_out = d_state_out.mem != NULL,
                 has_in = d_state_in.mem != NULL;
    const cl_mem ds_out = has_out ? d_state_out.mem : l->work;
    const cl_mem ds_in = has_in ? d_state_in.mem : l->work;
    const cl_uint ds_out_off = (cl_uint)d_state_out.offset,
                  ds_in_off = (cl_uint)d_state_in.offset;
    const retcl_karg args[] = {
        TENSOR_ARGS(l->q, Q, q),       TENSOR_ARGS(l->k, K, k),
        TENSOR_ARGS(l->v, V, v),       TENSOR_ARGS(l->o, dO, o),
        TENSOR_ARGS(l->dk, dK, dk),    TENSOR_ARGS(*dvt, dV, dv),
        RETCL_KARG("part_stride", part_stride),
        RETCL_KARG("log_decay", l->log_decay), RETCL_KARG("ld_off", l->ld_off),
        RETCL_KARG("work", l->work),   RETCL_KARG("g_off", g_off),
        RETCL_KARG("f_off", l->f_off), RETCL_KARG("has_F", l->has_F),
        RETCL_KARG("w_scale", l->w_scale), RETCL_KARG("dS_out", ds_out),
        RETCL_KARG("ds_out_off", ds_out_off),
        RETCL_KARG("has_d_state_out", has_out), RETCL_KARG("dS_in", ds_in),
        RETCL_KARG("ds_in_off", ds_in_off),
        RETCL_KARG("has_d_state_in", has_in), RETCL_KARG("T", l->T),
        RETCL_KARG("H", l->H),         RETCL_KARG("Dk", l->Dk),
        RETCL_KARG("Dv", l->Dv),       RETCL_KARG("rkb", rkb),
        RETCL_KARG("ts_state", l->ts_state),
        RETCL_KARG("position", l->position)};
    const retcl_grid g = grid3(l, p->n_parts, 1, bh);
    if ((st = go(l, RETCL_KERNEL_RETENTION_GRAD_REC_DKDV, args,
                 RETCL_NARGS(args), &g, !split)))
      return st;
  }
  if (!split) return RETCL_SUCCESS;
  const cl_uint p_off = (cl_uint)p->off_P, n_parts = (cl_uint)p->n_parts;
  const retcl_karg args[] = {
      RETCL_KARG("work", l->work),     RETCL_KARG("p_off", p_off),
      RETCL_KARG("part_stride", part_stride), RETCL_KARG("n_parts", n_parts),
      TENSOR_ARGS(l->dv, dV, dv),      RETCL_KARG("T", l->T),
      RETCL_KARG("H", l->H),           RETCL_KARG("Dv", l->Dv)};
  const retcl_grid g = grid3(l, blocks(l->Dv, p->vw), d->tokens, bh);
  return go(l, RETCL_KERNEL_RETENTION_GRAD_REDUCE, args, RETCL_NARGS(args), &g,
            1);
}

retcl_status retcl__retention_grad_enqueue(
    retcl_context *ctx, const retcl_retention_grad_plan *p, retcl_buffer q,
    retcl_buffer k, retcl_buffer v, retcl_buffer log_decay,
    retcl_buffer state_in, retcl_buffer d_out, retcl_buffer d_state_out,
    retcl_buffer dq, retcl_buffer dk, retcl_buffer dv, retcl_buffer d_state_in,
    cl_mem work, cl_uint num_wait, const cl_event *wait, cl_event *event) {
  const retcl_retention_desc *d = &p->f.d;
  launch l;
  l.ctx = ctx;
  l.p = p;
  const retcl_strides sk =
      retcl__strides(d->layout, d->tokens, d->heads, d->key_dim);
  const retcl_strides sv =
      retcl__strides(d->layout, d->tokens, d->heads, d->value_dim);
  l.q = (tensor_arg){q.mem, (cl_uint)q.offset, sk};
  l.k = (tensor_arg){k.mem, (cl_uint)k.offset, sk};
  l.v = (tensor_arg){v.mem, (cl_uint)v.offset, sv};
  l.o = (tensor_arg){d_out.mem, (cl_uint)d_out.offset, sv};
  l.dq = (tensor_arg){dq.mem, (cl_uint)dq.offset, sk};
  l.dk = (tensor_arg){dk.mem, (cl_uint)dk.offset, sk};
  l.dv = (tensor_arg){dv.mem, (cl_uint)dv.offset, sv};
  l.log_decay = log_decay.mem;
  l.ld_off = (cl_uint)log_decay.offset;
  l.work = work;
  l.T = (cl_uint)d->tokens;
  l.H = (cl_uint)d->heads;
  l.Dk = (cl_uint)d->key_dim;
  l.Dv = (cl_uint)d->value_dim;
  l.has_F = p->ts;
  l.w_scale = p->ts ? 1.0f : (d->scale != 0.0f ? d->scale : 1.0f);
  l.ts_state = p->ts;
  l.position = (cl_float)d->position;
  l.f_off = (cl_uint)p->off_F;
  l.cpu_device = (ctx->identity.type & CL_DEVICE_TYPE_CPU) != 0;
  l.wait_n = num_wait;
  l.wait = wait;
  l.event = event;

  if (d->algorithm == RETCL_ALGO_RECURRENT)
    return run_recurrent(&l, state_in, d_state_out, d_state_in);

  retcl_status st;
  if ((st = run_panels(&l, &l.q, l.Dk, p->off_Qt, 0)) ||
      (st = run_panels(&l, &l.k, l.Dk, p->off_Kt, 0)) ||
      (st = run_panels(&l, &l.v, l.Dv, p->off_Vt, 0)))
    return st;
  /* The raw states before each segment (Rᵀ), then torchscale's weights
   * (the chunkwise ones read R), then dO' and the state gradients. */
  if (p->has_R && (st = run_states(&l, 0, p->need_U, state_in, retcl_no_buf())))
    return st;
  if (p->ts &&
      (st = run_row_factor(&l, d->algorithm == RETCL_ALGO_PARALLEL ? 1 : 2,
                           p->seg, p->n_seg)))
    return st;
  if ((st = run_panels(&l, &l.o, l.Dv, p->off_Ot, 1))) return st;
  if (p->run_states_bwd &&
      (st = run_states(&l, 1, p->need_W, d_state_out, d_state_in)))
    return st;
  if ((st = run_dq(&l))) return st;
  return run_dkdv(&l);
}

static retcl_status check_buffers(retcl_context *ctx,
                                  const retcl_retention_grad_plan *e,
                                  const retcl_buffer *in,
                                  const retcl_buffer *out) {
  const size_t qk = e->f.qk, vo = e->f.vo, state = e->f.state,
               heads = e->f.d.heads;
  /* Inputs: q, k, v, log_decay, state_in, d_out, d_state_out. Outputs:
   * dq, dk, dv, d_state_in. */
  static const char *const in_names[7] = {"q",     "k",        "v",
                                          "log_decay", "state_in", "d_out",
                                          "d_state_out"};
  static const char *const out_names[4] = {"dq", "dk", "dv", "d_state_in"};
  const size_t in_n[7] = {qk, qk, vo, heads, state, vo, state};
  const size_t out_n[4] = {qk, qk, vo, state};
  const int in_optional[7] = {0, 0, 0, 0, 1, 0, 1};
  const int out_optional[4] = {0, 0, 0, 1};
  retcl_status st;
  for (int i = 0; i < 7; ++i)
    if ((st = in_optional[i]
                  ? retcl__check_optional_buffer(ctx, OP, in_names[i], in[i],
                                                 in_n[i])
                  : retcl__check_buffer(ctx, OP, in_names[i], in[i], in_n[i])))
      return st;
  for (int o = 0; o < 4; ++o)
    if ((st = out_optional[o]
                  ? retcl__check_optional_buffer(ctx, OP, out_names[o],
                                                 out[o], out_n[o])
                  : retcl__check_buffer(ctx, OP, out_names[o], out[o],
                                        out_n[o])))
      return st;
  for (int o = 0; o < 4; ++o) {
    for (int i = 0; i < 7; ++i) {
      /* d_state_in may be d_state_out exactly: updated in place. */
      if (o == 3 && i == 6 && out[o].mem == in[i].mem &&
          out[o].offset == in[i].offset)
        continue;
      if (retcl__overlaps(out[o], out_n[o], in[i], in_n[i]))
        return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                           "%s: %s overlaps %s%s", OP, out_names[o],
                           in_names[i],
                           o == 3 && i == 6
                               ? " (only the exact same range is allowed)"
                               : "");
    }
    for (int o2 = 0; o2 < o; ++o2)
      if (retcl__overlaps(out[o], out_n[o], out[o2], out_n[o2]))
        return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT,
                           "%s: %s overlaps %s", OP, out_names[o],
                           out_names[o2]);
  }
  return RETCL_SUCCESS;
}

retcl_status retcl_retention_backward(
    retcl_context *ctx, const retcl_retention_desc *desc, retcl_buffer q,
    retcl_buffer k, retcl_buffer v, retcl_buffer log_decay,
    retcl_buffer state_in, retcl_buffer d_out, retcl_buffer d_state_out,
    retcl_buffer dq, retcl_buffer dk, retcl_buffer dv,
    retcl_buffer d_state_in, cl_uint num_events_in_wait_list,
    const cl_event *event_wait_list, cl_event *event) {
  retcl_status st = retcl__check_ctx(ctx);
  if (st) return st;
  if (!desc)
    return retcl__fail(ctx, RETCL_ERROR_INVALID_ARGUMENT, "%s: desc is NULL",
                       OP);
  retcl_retention_grad_plan plan;
  cl_mem work = NULL;
  const retcl_buffer in[7] = {q, k, v, log_decay, state_in, d_out,
                              d_state_out};
  const retcl_buffer out[4] = {dq, dk, dv, d_state_in};
  if ((st = retcl__retention_grad_plan(ctx, OP, desc, state_in.mem != NULL,
                                       d_state_out.mem != NULL,
                                       d_state_in.mem != NULL, &plan)) ||
      (st = retcl__check_wait_list(ctx, OP, num_events_in_wait_list,
                                   event_wait_list)) ||
      (st = check_buffers(ctx, &plan, in, out)) ||
      (st = retcl__prepare(ctx,
                           RETCL_FAMILY_BIT(RETCL_FAMILY_RETENTION_GRAD))) ||
      (st = retcl__workspace(ctx, RETCL_WORKSPACE_RETENTION_GRAD,
                             plan.scratch * sizeof(float), &work)))
    return st;
  return retcl__retention_grad_enqueue(ctx, &plan, q, k, v, log_decay,
                                       state_in, d_out, d_state_out, dq, dk,
                                       dv, d_state_in, work,
                                       num_events_in_wait_list,
                                       event_wait_list, event);
}
