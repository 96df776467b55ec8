! test_fortran_mpi.f90 - the Fortran module retcl_mpi under mpirun: a
! handle on MPI_COMM_WORLD from Fortran (rank, size, its communicator back
! as an mpi_f08 handle), and sequence-parallel raw chunkwise retention of
! one random sequence split across the ranks (rank r holds a slice of
! 2 + 3r tokens), outputs poisoned first, each rank's slice and the last
! rank's final state against a double recurrence over the whole sequence.
! Bound as in test_fortran.f90: (T*Dk + 2T + 16) u times the sum of
! magnitudes. Exit status 1 on any rank's failure.
program test_fortran_mpi
  use, intrinsic :: iso_c_binding
  use, intrinsic :: ieee_arithmetic, only: ieee_value, ieee_quiet_nan
  use mpi_f08
  use retcl
  use retcl_mpi
  implicit none
  integer, parameter :: H = 2, DK = 3, DV = 2
  integer :: rank, nranks, size2, t0, tn, total, tt, hh, i, j, bad, allbad
  type(c_ptr) :: hdl, ctx, mq, mk, mv, mo, md, ms
  type(retcl_retention_desc) :: d
  type(retcl_mpi_stats), target :: stats
  integer(c_int) :: st
  integer(c_int32_t) :: e
  integer(c_int64_t) :: rng
  real(c_float), allocatable :: q(:, :, :), k(:, :, :), v(:, :, :), o(:, :, :)
  real(c_float) :: ld(H), s(DV, DK, H)
  real(c_double), allocatable :: ref(:, :, :), mag(:, :, :)
  real(c_double) :: S2(DK, DV), A2(DK, DV), gam, bound, worst

  call MPI_Init()
  call MPI_Comm_rank(MPI_COMM_WORLD, rank)
  call MPI_Comm_size(MPI_COMM_WORLD, nranks)
  bad = 0
  st = retcl_mpi_create_f(MPI_COMM_WORLD, hdl)
  if (st /= RETCL_SUCCESS) then
    print '(a)', 'FAIL: retcl_mpi_create: ' // retcl_mpi_last_error_f()
    call MPI_Abort(MPI_COMM_WORLD, 1)
  end if
  if (retcl_mpi_rank(hdl) /= rank .or. retcl_mpi_size(hdl) /= nranks) bad = bad + 1
  call MPI_Comm_size(retcl_mpi_comm_f(hdl), size2)
  if (size2 /= nranks) bad = bad + 1
  ctx = retcl_mpi_context(hdl)

  ! Every rank draws the whole sequence from the same seed.
  total = 0
  do i = 0, nranks - 1
    if (i == rank) t0 = total
    total = total + 2 + 3 * i
  end do
  tn = 2 + 3 * rank
  allocate(q(DK, H, total), k(DK, H, total), v(DV, H, total), o(DV, H, tn))
  allocate(ref(DV, H, total), mag(DV, H, total))
  rng = 12345
  do tt = 1, total
    do hh = 1, H
      do i = 1, DK
        q(i, hh, tt) = real(2 * retcl_random_uniform(rng) - 1, c_float)
        k(i, hh, tt) = real(2 * retcl_random_uniform(rng) - 1, c_float)
      end do
      do j = 1, DV
        v(j, hh, tt) = real(2 * retcl_random_uniform(rng) - 1, c_float)
      end do
    end do
  end do
  ld = [log(0.9_c_float), log(0.6_c_float)]
  do hh = 1, H
    gam = exp(real(ld(hh), c_double))
    S2 = 0
    A2 = 0
    do tt = 1, total
      do i = 1, DK
        do j = 1, DV
          S2(i, j) = gam * S2(i, j) + real(k(i, hh, tt), c_double) * v(j, hh, tt)
          A2(i, j) = gam * A2(i, j) + abs(real(k(i, hh, tt), c_double) * v(j, hh, tt))
        end do
      end do
      do j = 1, DV
        ref(j, hh, tt) = sum(real(q(:, hh, tt), c_double) * S2(:, j))
        mag(j, hh, tt) = sum(abs(real(q(:, hh, tt), c_double)) * A2(:, j))
      end do
    end do
  end do

  e = retcl_cl_alloc(ctx, int(DK * H * tn, c_size_t), mq)
  e = ior(e, retcl_cl_alloc(ctx, int(DK * H * tn, c_size_t), mk))
  e = ior(e, retcl_cl_alloc(ctx, int(DV * H * tn, c_size_t), mv))
  e = ior(e, retcl_cl_alloc(ctx, int(DV * H * tn, c_size_t), mo))
  e = ior(e, retcl_cl_alloc(ctx, int(H, c_size_t), md))
  e = ior(e, retcl_cl_alloc(ctx, int(DV * DK * H, c_size_t), ms))
  e = ior(e, retcl_cl_write(ctx, mq, reshape(q(:, :, t0 + 1:t0 + tn), [DK * H * tn])))
  e = ior(e, retcl_cl_write(ctx, mk, reshape(k(:, :, t0 + 1:t0 + tn), [DK * H * tn])))
  e = ior(e, retcl_cl_write(ctx, mv, reshape(v(:, :, t0 + 1:t0 + tn), [DV * H * tn])))
  e = ior(e, retcl_cl_write(ctx, md, ld))
  o = ieee_value(0.0_c_float, ieee_quiet_nan)
  s = ieee_value(0.0_c_float, ieee_quiet_nan)
  e = ior(e, retcl_cl_write(ctx, mo, reshape(o, [DV * H * tn])))
  e = ior(e, retcl_cl_write(ctx, ms, reshape(s, [DV * DK * H])))
  if (e /= CL_SUCCESS) bad = bad + 1

  d%batch = 1
  d%tokens = tn
  d%heads = H
  d%key_dim = DK
  d%value_dim = DV
  d%algorithm = RETCL_ALGO_CHUNKWISE
  d%chunk_size = 2
  st = retcl_mpi_retention(hdl, d, RETCL_MPI_SCAN_RING, retcl_buf(mq), retcl_buf(mk), &
                           retcl_buf(mv), retcl_buf(md), retcl_no_buf(), retcl_buf(ms), &
                           retcl_buf(mo), c_loc(stats))
  if (st /= RETCL_SUCCESS) then
    print '(a)', 'FAIL: retcl_mpi_retention: ' // retcl_mpi_last_error_f(hdl)
    bad = bad + 1
  end if
  block
    real(c_float) :: flat(DV * H * tn), fs(DV * DK * H)
    e = retcl_cl_read(ctx, mo, flat)
    e = ior(e, retcl_cl_read(ctx, ms, fs))
    o = reshape(flat, [DV, H, tn])
    s = reshape(fs, [DV, DK, H])
  end block
  worst = 0
  do tt = 1, tn
    do hh = 1, H
      do j = 1, DV
        bound = (total * DK + 2 * total + 16) * 2d0**(-24) * mag(j, hh, t0 + tt) + 1d-30
        if (.not. (abs(o(j, hh, tt) - ref(j, hh, t0 + tt)) <= bound)) bad = bad + 1
        worst = max(worst, abs(o(j, hh, tt) - ref(j, hh, t0 + tt)) / bound)
      end do
    end do
  end do
  if (rank == nranks - 1) then
    ! The last rank's state: the whole sequence's, C's [H,Dk,Dv] = s(Dv,Dk,H).
    do hh = 1, H
      gam = exp(real(ld(hh), c_double))
      S2 = 0
      do tt = 1, total
        do i = 1, DK
          S2(i, :) = gam * S2(i, :) + real(k(i, hh, tt), c_double) * v(:, hh, tt)
        end do
      end do
      if (maxval(abs(transpose(S2) - s(:, :, hh))) > 1d-5 * max(1d0, maxval(abs(S2)))) &
        bad = bad + 1
    end do
  end if
  print '(a,i0,a,i0,a,i0,a,es10.3,a,i0)', 'rank ', rank, ': tokens ', t0, '..', &
        t0 + tn - 1, ', worst error / bound ', worst, ', pair bytes ', stats%pair_bytes

  call retcl_cl_release(mq)
  call retcl_cl_release(mk)
  call retcl_cl_release(mv)
  call retcl_cl_release(mo)
  call retcl_cl_release(md)
  call retcl_cl_release(ms)
  call check_split_model()
  call retcl_mpi_destroy(hdl)
  call MPI_Allreduce(bad, allbad, 1, MPI_INTEGER, MPI_SUM, MPI_COMM_WORLD)
  call MPI_Finalize()
  if (allbad > 0) then
    if (rank == 0) print '(a,i0,a)', 'test_fortran_mpi: ', allbad, ' failure(s)'
    stop 1
  end if
  if (rank == 0) print '(a)', 'test_fortran_mpi: all passed'
contains

  ! retcl_mpi_model_load from Fortran: a heads-split model (rank r holds
  ! heads and FFN units [n r/P, n (r+1)/P)) gives on every rank the logits
  ! of the whole model loaded on the rank's own context, within 1e-5 of
  ! their largest magnitude (the sums over ranks add the heads' parts in
  ! another order; measured ~1e-6).
  subroutine check_split_model()
    integer, parameter :: VOC = 40, T = 7
    type(retcl_model_config) :: cfg
    type(c_ptr) :: whole, split
    character(len=64) :: dir
    integer(c_int32_t) :: tokens(T)
    real(c_float) :: a(VOC, T), b(VOC, T)
    integer :: ierr
    call retcl_model_config_default(cfg)
    cfg%embed_dim = 24
    cfg%value_embed_dim = 24
    cfg%heads = 3
    cfg%ffn_dim = 37
    cfg%layers = 2
    cfg%vocab_size = VOC
    cfg%chunk_size = 4
    write (dir, '(a,i0)') 'retcl_fortran_mpi_ckpt_', nranks
    if (rank == 0) then
      st = retcl_checkpoint_write_random_f(cfg, 77_c_int64_t, RETCL_DTYPE_F32, trim(dir))
      if (st /= RETCL_SUCCESS) then
        print '(a)', 'FAIL: checkpoint_write_random: ' // retcl_last_error_f()
        bad = bad + 1
      end if
    end if
    call MPI_Barrier(MPI_COMM_WORLD, ierr)
    st = retcl_model_load_f(ctx, trim(dir), whole)
    if (st /= RETCL_SUCCESS) bad = bad + 1
    st = retcl_mpi_model_load_f(hdl, trim(dir), RETCL_MPI_SPLIT_HEADS, split)
    if (st /= RETCL_SUCCESS) then
      print '(a)', 'FAIL: retcl_mpi_model_load: ' // retcl_mpi_last_error_f(hdl)
      bad = bad + 1
    end if
    call MPI_Barrier(MPI_COMM_WORLD, ierr)
    if (rank == 0) call execute_command_line('rm -rf ' // trim(dir))
    if (bad > 0) return
    do i = 1, T
      tokens(i) = int(mod(7 * i + 5, VOC), c_int32_t)
    end do
    a = ieee_value(0.0_c_float, ieee_quiet_nan)
    b = a
    st = retcl_model_forward_f(whole, c_null_ptr, tokens, 1_c_size_t, int(T, c_size_t), &
                               RETCL_ALGO_CHUNKWISE, 0_c_size_t, a)
    if (st /= RETCL_SUCCESS) bad = bad + 1
    st = retcl_model_forward_f(split, c_null_ptr, tokens, 1_c_size_t, int(T, c_size_t), &
                               RETCL_ALGO_CHUNKWISE, 0_c_size_t, b)
    if (st /= RETCL_SUCCESS) bad = bad + 1
    if (.not. (maxval(abs(a - b)) <= 1e-5 * maxval(abs(a)))) then
      print '(a,i0,a,es10.3)', 'FAIL: rank ', rank, ': heads-split logits differ by ', &
            maxval(abs(a - b))
      bad = bad + 1
    end if
    print '(a,i0,a,es10.3)', 'rank ', rank, ': heads-split model vs whole ', maxval(abs(a - b))
    call retcl_model_destroy(split)
    call retcl_model_destroy(whole)
  end subroutine check_split_model

end program test_fortran_mpi
