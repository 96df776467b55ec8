! test_fortran.f90 - the Fortran module `retcl` (fortran/retcl.f90) against
! the C library it wraps:
!  (a) every bind(c) type has the C struct's size and field offsets, and
!      every enum parameter the C value (tests/fortran/layout.c reports
!      what the C compiler made of retcl.h);
!  (b) raw retention (recurrent, chunkwise, parallel; token-major, and
!      head-major chunkwise) of random q, k, v uploaded from Fortran arrays,
!      outputs poisoned with NaN first, against a double-precision
!      recurrence written here, S = gamma S + k^T v, o = scale q S, with its
!      final state;
!  (c) a random checkpoint written, loaded and run from Fortran: prefill
!      (forward_last into a decode state) and recurrent decoding give the
!      full parallel forward's logits, and so do a packed prefill into a
!      state pool and a pool decode step (a skipped row left untouched);
!  (d) error paths: a bad desc returns INVALID_SIZE with retcl_last_error's
!      message (naming desc->heads) reaching Fortran and the output still
!      NaN; a missing checkpoint folder IO; an unknown device
!      DEVICE_NOT_FOUND with the context-free message.
! Exit status 1 on any failure; the seed is printed (RETCL_TEST_SEED
! repeats a run).
module ft_layout
  use, intrinsic :: iso_c_binding
  implicit none
  interface
    function retcl_ft_sizeof(type) bind(c, name='retcl_ft_sizeof')
      import :: c_int, c_size_t
      integer(c_int), value :: type
      integer(c_size_t) :: retcl_ft_sizeof
    end function
    function retcl_ft_offsetof(type, field) bind(c, name='retcl_ft_offsetof')
      import :: c_int, c_size_t
      integer(c_int), value :: type, field
      integer(c_size_t) :: retcl_ft_offsetof
    end function
    function retcl_ft_enum(which) bind(c, name='retcl_ft_enum')
      import :: c_int
      integer(c_int), value :: which
      integer(c_int) :: retcl_ft_enum
    end function
  end interface
end module ft_layout

program test_fortran
  use, intrinsic :: iso_c_binding
  use, intrinsic :: ieee_arithmetic, only: ieee_value, ieee_quiet_nan, ieee_is_nan
  use retcl
  use ft_layout
  implicit none

  integer :: failures = 0
  integer(c_int64_t) :: seed, rng
  type(c_ptr) :: ctx
  integer(c_int) :: st
  character(len=64) :: env
  integer :: env_len, env_stat
  integer(c_int64_t) :: clock

  call get_environment_variable('RETCL_TEST_SEED', env, env_len, env_stat)
  if (env_stat == 0 .and. env_len > 0) then
    read (env(1:env_len), *) seed
  else
    call system_clock(clock)
    seed = clock
  end if
  rng = seed

  call test_layouts()

  st = retcl_context_create_f(ctx)
  if (st /= RETCL_SUCCESS) then
    print '(a)', 'FAIL: retcl_context_create: ' // retcl_status_string_f(st) // &
                 ': ' // retcl_last_error_f()
    stop 1
  end if
  print '(a)', 'retcl ' // retcl_version_string_f() // ' on vendor ' // &
               retcl_context_vendor_f(ctx)
  call expect(retcl_version_number() == RETCL_MODULE_VERSION_NUMBER, &
              'retcl_version_number() == RETCL_MODULE_VERSION_NUMBER')

  call test_retention(RETCL_ALGO_RECURRENT, RETCL_LAYOUT_TOKEN_MAJOR, 'recurrent')
  call test_retention(RETCL_ALGO_CHUNKWISE, RETCL_LAYOUT_TOKEN_MAJOR, 'chunkwise')
  call test_retention(RETCL_ALGO_PARALLEL, RETCL_LAYOUT_TOKEN_MAJOR, 'parallel')
  call test_retention(RETCL_ALGO_CHUNKWISE, RETCL_LAYOUT_HEAD_MAJOR, &
                      'chunkwise head-major')
  call test_errors()
  call test_model()

  call retcl_context_destroy(ctx)
  if (failures > 0) then
    print '(a,i0,a,i0)', 'test_fortran: ', failures, ' failure(s); seed ', seed
    stop 1
  end if
  print '(a,i0,a)', 'test_fortran: all passed (seed ', seed, ')'

contains

  subroutine expect(ok, what)
    logical, intent(in) :: ok
    character(len=*), intent(in) :: what
    if (.not. ok) then
      failures = failures + 1
      print '(a)', 'FAIL: ' // what
    end if
  end subroutine expect

  real(c_double) function uniform(lo, hi)
    real(c_double), intent(in) :: lo, hi
    uniform = lo + (hi - lo) * retcl_random_uniform(rng)
  end function uniform

  function nan_array(n) result(x)
    integer, intent(in) :: n
    real(c_float) :: x(n)
    x = ieee_value(0.0_c_float, ieee_quiet_nan)
  end function nan_array

  function itoa(i) result(s)
    integer, intent(in) :: i
    character(len=:), allocatable :: s
    character(len=32) :: buf
    write (buf, '(i0)') i
    s = trim(buf)
  end function itoa

  ! ---- (a) layouts -------------------------------------------------------

  integer(c_size_t) function addr(p)
    type(c_ptr), intent(in) :: p
    addr = transfer(p, 0_c_size_t)
  end function addr

  subroutine check_type(id, name, fsize, offs)
    integer(c_int), intent(in) :: id
    character(len=*), intent(in) :: name
    integer(c_size_t), intent(in) :: fsize, offs(:)
    integer :: f
    call expect(retcl_ft_sizeof(id) == fsize, 'c_sizeof(' // name // ') = ' // &
                itoa(int(fsize)) // ', C sizeof = ' // itoa(int(retcl_ft_sizeof(id))))
    do f = 1, size(offs)
      call expect(retcl_ft_offsetof(id, int(f, c_int)) == offs(f), &
                  name // ' field ' // itoa(f) // ' at ' // itoa(int(offs(f))) // &
                  ', C offset ' // itoa(int(retcl_ft_offsetof(id, int(f, c_int)))))
    end do
    ! One field past the end is unknown to the C side too: the lists match.
    call expect(retcl_ft_offsetof(id, int(size(offs) + 1, c_int)) == &
                huge(0_c_size_t) .or. retcl_ft_offsetof(id, int(size(offs) + 1, c_int)) &
                == -1_c_size_t, name // ': the C side has more fields')
  end subroutine check_type

  subroutine test_layouts()
    type(retcl_buffer), target :: b
    type(retcl_packing), target :: p
    type(retcl_rotation_desc), target :: r
    type(retcl_retention_desc), target :: d
    type(retcl_group_norm_desc), target :: g
    type(retcl_projection), target :: pr
    type(retcl_msr_weights), target :: w
    type(retcl_msr_desc), target :: m
    type(retcl_model_config), target :: c
    type(retcl_device_entry), target :: de
    type(retcl_tensor_info), target :: ti
    type(retcl_train_options), target :: to
    type(retcl_adamw), target :: aw
    type(retcl_sampler), target :: sa
    integer(c_int) :: want(43)
    integer :: i
    integer(c_size_t) :: o

    o = addr(c_loc(b))
    call check_type(1_c_int, 'retcl_buffer', c_sizeof(b), &
      [addr(c_loc(b%mem)), addr(c_loc(b%offset)), addr(c_loc(b%type))] - o)
    o = addr(c_loc(p))
    call check_type(2_c_int, 'retcl_packing', c_sizeof(p), &
      [addr(c_loc(p%count)), addr(c_loc(p%offsets)), addr(c_loc(p%positions)), &
       addr(c_loc(p%state_slots))] - o)
    o = addr(c_loc(r))
    call check_type(3_c_int, 'retcl_rotation_desc', c_sizeof(r), &
      [addr(c_loc(r%batch)), addr(c_loc(r%tokens)), addr(c_loc(r%heads)), &
       addr(c_loc(r%layout)), addr(c_loc(r%pos0)), addr(c_loc(r%is_key)), &
       addr(c_loc(r%packing))] - o)
    o = addr(c_loc(d))
    call check_type(4_c_int, 'retcl_retention_desc', c_sizeof(d), &
      [addr(c_loc(d%batch)), addr(c_loc(d%tokens)), addr(c_loc(d%heads)), &
       addr(c_loc(d%key_dim)), addr(c_loc(d%value_dim)), addr(c_loc(d%layout)), &
       addr(c_loc(d%algorithm)), addr(c_loc(d%form)), addr(c_loc(d%chunk_size)), &
       addr(c_loc(d%scale)), addr(c_loc(d%position)), addr(c_loc(d%packing))] - o)
    o = addr(c_loc(g))
    call check_type(5_c_int, 'retcl_group_norm_desc', c_sizeof(g), &
      [addr(c_loc(g%batch)), addr(c_loc(g%tokens)), addr(c_loc(g%heads)), &
       addr(c_loc(g%head_dim)), addr(c_loc(g%layout)), addr(c_loc(g%kind)), &
       addr(c_loc(g%gate)), addr(c_loc(g%eps))] - o)
    o = addr(c_loc(pr))
    call check_type(6_c_int, 'retcl_projection', c_sizeof(pr), &
      [addr(c_loc(pr%w)), addr(c_loc(pr%y)), addr(c_loc(pr%n)), &
       addr(c_loc(pr%alpha))] - o)
    o = addr(c_loc(w))
    call check_type(7_c_int, 'retcl_msr_weights', c_sizeof(w), &
      [addr(c_loc(w%q_proj)), addr(c_loc(w%k_proj)), addr(c_loc(w%v_proj)), &
       addr(c_loc(w%g_proj)), addr(c_loc(w%out_proj))] - o)
    o = addr(c_loc(m))
    call check_type(8_c_int, 'retcl_msr_desc', c_sizeof(m), &
      [addr(c_loc(m%batch)), addr(c_loc(m%tokens)), addr(c_loc(m%embed_dim)), &
       addr(c_loc(m%value_embed_dim)), addr(c_loc(m%heads)), &
       addr(c_loc(m%algorithm)), addr(c_loc(m%form)), addr(c_loc(m%chunk_size)), &
       addr(c_loc(m%pos0)), addr(c_loc(m%norm_eps)), addr(c_loc(m%packing))] - o)
    o = addr(c_loc(c))
    call check_type(9_c_int, 'retcl_model_config', c_sizeof(c), &
      [addr(c_loc(c%embed_dim)), addr(c_loc(c%value_embed_dim)), &
       addr(c_loc(c%heads)), addr(c_loc(c%ffn_dim)), addr(c_loc(c%layers)), &
       addr(c_loc(c%vocab_size)), addr(c_loc(c%activation)), &
       addr(c_loc(c%layernorm_eps)), addr(c_loc(c%no_scale_embedding)), &
       addr(c_loc(c%layernorm_embedding)), addr(c_loc(c%deepnorm)), &
       addr(c_loc(c%share_embed)), addr(c_loc(c%chunk_size))] - o)
    o = addr(c_loc(de))
    call check_type(10_c_int, 'retcl_device_entry', c_sizeof(de), &
      [addr(c_loc(de%index)), addr(c_loc(de%platform_index)), &
       addr(c_loc(de%platform)), addr(c_loc(de%device)), addr(c_loc(de%type))] - o)
    o = addr(c_loc(ti))
    call check_type(11_c_int, 'retcl_tensor_info', c_sizeof(ti), &
      [addr(c_loc(ti%name)), addr(c_loc(ti%rows)), addr(c_loc(ti%cols)), &
       addr(c_loc(ti%offset))] - o)
    o = addr(c_loc(to))
    call check_type(12_c_int, 'retcl_train_options', c_sizeof(to), &
      [addr(c_loc(to%algorithm)), addr(c_loc(to%chunk_size)), &
       addr(c_loc(to%recompute)), addr(c_loc(to%ignore_index))] - o)
    o = addr(c_loc(aw))
    call check_type(13_c_int, 'retcl_adamw', c_sizeof(aw), &
      [addr(c_loc(aw%lr)), addr(c_loc(aw%beta1)), addr(c_loc(aw%beta2)), &
       addr(c_loc(aw%eps)), addr(c_loc(aw%weight_decay)), &
       addr(c_loc(aw%clip_norm))] - o)
    o = addr(c_loc(sa))
    call check_type(14_c_int, 'retcl_sampler', c_sizeof(sa), &
      [addr(c_loc(sa%temperature)), addr(c_loc(sa%top_k))] - o)

    ! The enum parameters, in layout.c's order.
    want = [RETCL_SUCCESS, RETCL_ERROR_INVALID_ARGUMENT, RETCL_ERROR_INVALID_SIZE, &
      RETCL_ERROR_BUFFER_TOO_SMALL, RETCL_ERROR_CONTEXT_MISMATCH, &
      RETCL_ERROR_DEVICE_NOT_FOUND, RETCL_ERROR_UNSUPPORTED, &
      RETCL_ERROR_BUILD_FAILED, RETCL_ERROR_OUT_OF_MEMORY, RETCL_ERROR_OPENCL, &
      RETCL_ERROR_IO, RETCL_ERROR_FORMAT, &
      RETCL_DTYPE_F32, RETCL_DTYPE_F16, RETCL_DTYPE_BF16, &
      RETCL_LAYOUT_TOKEN_MAJOR, RETCL_LAYOUT_HEAD_MAJOR, &
      RETCL_ALGO_PARALLEL, RETCL_ALGO_RECURRENT, RETCL_ALGO_CHUNKWISE, &
      RETCL_FORM_RAW, RETCL_FORM_TORCHSCALE, &
      RETCL_NORM_RMS, RETCL_NORM_LAYER, &
      RETCL_GATE_SWISH, RETCL_GATE_GELU, RETCL_GATE_NONE, &
      RETCL_ACT_GELU, RETCL_ACT_SWISH, &
      RETCL_GEMM_NT, RETCL_GEMM_NN, RETCL_GEMM_TN, &
      RETCL_STORAGE_F32, RETCL_STORAGE_F16, RETCL_STORAGE_BF16, RETCL_STORAGE_KEEP, &
      RETCL_LOG_DEBUG, RETCL_LOG_INFO, RETCL_LOG_WARNING, RETCL_LOG_ERROR, &
      RETCL_MODULE_VERSION_NUMBER, int(CL_MEM_READ_WRITE, c_int), int(CL_SUCCESS, c_int)]
    do i = 1, size(want)
      call expect(retcl_ft_enum(int(i, c_int)) == want(i), 'enum value ' // itoa(i) // &
                  ': Fortran ' // itoa(int(want(i))) // ', C ' // &
                  itoa(int(retcl_ft_enum(int(i, c_int)))))
    end do
    call expect(retcl_ft_enum(int(size(want) + 1, c_int)) == -1000, &
                'layout.c lists more enum values than the test')
  end subroutine test_layouts

  ! ---- (b) retention -----------------------------------------------------

  subroutine test_retention(algorithm, layout, label)
    integer(c_int), intent(in) :: algorithm, layout
    character(len=*), intent(in) :: label
    integer, parameter :: B = 2, T = 13, H = 3, DK = 4, DV = 3
    ! Token-major data as Fortran sees it: x(D, H, T, B) (C's [B,T,H,D]).
    real(c_float) :: q(DK, H, T, B), k(DK, H, T, B), v(DV, H, T, B)
    real(c_float) :: o(DV, H, T, B), s(DV, DK, H, B), ld(H)
    real(c_float), allocatable :: dev(:), devs(:)
    real(c_double) :: ref(DV, H, T, B), mag(DV, H, T, B)
    real(c_double) :: sref(DV, DK, H, B), smag(DV, DK, H, B)
    real(c_double) :: S2(DK, DV), A2(DK, DV), gam, bound, err, worst, u
    real(c_float), parameter :: scale = 0.75_c_float
    type(c_ptr) :: mq, mk, mv, mo, md, ms
    type(retcl_retention_desc) :: d
    integer :: bb, hh, tt, i, j, n
    integer(c_int32_t) :: e

    do bb = 1, B
      do tt = 1, T
        do hh = 1, H
          do i = 1, DK
            q(i, hh, tt, bb) = real(uniform(-1d0, 1d0), c_float)
            k(i, hh, tt, bb) = real(uniform(-1d0, 1d0), c_float)
          end do
          do j = 1, DV
            v(j, hh, tt, bb) = real(uniform(-1d0, 1d0), c_float)
          end do
        end do
      end do
    end do
    do hh = 1, H
      ld(hh) = real(log(uniform(0.5d0, 0.99d0)), c_float)
    end do

    ! The reference (double): per (b, h), S = gamma S + k v^T over the
    ! tokens, o = scale q S; mag the same sums of absolute values.
    do bb = 1, B
      do hh = 1, H
        gam = exp(real(ld(hh), c_double))
        S2 = 0
        A2 = 0
        do tt = 1, T
          do i = 1, DK
            do j = 1, DV
              S2(i, j) = gam * S2(i, j) + real(k(i, hh, tt, bb), c_double) * v(j, hh, tt, bb)
              A2(i, j) = gam * A2(i, j) + abs(real(k(i, hh, tt, bb), c_double) * v(j, hh, tt, bb))
            end do
          end do
          do j = 1, DV
            ref(j, hh, tt, bb) = scale * sum(real(q(:, hh, tt, bb), c_double) * S2(:, j))
            mag(j, hh, tt, bb) = scale * sum(abs(real(q(:, hh, tt, bb), c_double)) * A2(:, j))
          end do
        end do
        sref(:, :, hh, bb) = transpose(S2) ! C's [B,H,Dk,Dv] is Fortran (Dv,Dk,H,B)
        smag(:, :, hh, bb) = transpose(A2)
      end do
    end do

    n = DK * H * T * B
    e = retcl_cl_alloc(ctx, int(n, c_size_t), mq)
    e = ior(e, retcl_cl_alloc(ctx, int(n, c_size_t), mk))
    e = ior(e, retcl_cl_alloc(ctx, int(DV * H * T * B, c_size_t), mv))
    e = ior(e, retcl_cl_alloc(ctx, int(DV * H * T * B, c_size_t), mo))
    e = ior(e, retcl_cl_alloc(ctx, int(H, c_size_t), md))
    e = ior(e, retcl_cl_alloc(ctx, int(DV * DK * H * B, c_size_t), ms))
    call expect(e == CL_SUCCESS, label // ': clCreateBuffer')
    if (layout == RETCL_LAYOUT_TOKEN_MAJOR) then
      e = retcl_cl_write(ctx, mq, reshape(q, [n]))
      e = ior(e, retcl_cl_write(ctx, mk, reshape(k, [n])))
      e = ior(e, retcl_cl_write(ctx, mv, reshape(v, [DV * H * T * B])))
    else ! head-major: C's [B,H,T,D], Fortran x(D, T, H, B)
      e = retcl_cl_write(ctx, mq, reshape(reshape(q, [DK, T, H, B], order=[1, 3, 2, 4]), [n]))
      e = ior(e, retcl_cl_write(ctx, mk, reshape(reshape(k, [DK, T, H, B], order=[1, 3, 2, 4]), [n])))
      e = ior(e, retcl_cl_write(ctx, mv, reshape(reshape(v, [DV, T, H, B], &
                                                         order=[1, 3, 2, 4]), [DV * H * T * B])))
    end if
    e = ior(e, retcl_cl_write(ctx, md, ld))
    e = ior(e, retcl_cl_write(ctx, mo, nan_array(DV * H * T * B)))
    e = ior(e, retcl_cl_write(ctx, ms, nan_array(DV * DK * H * B)))
    call expect(e == CL_SUCCESS, label // ': clEnqueueWriteBuffer')

    d%batch = B
    d%tokens = T
    d%heads = H
    d%key_dim = DK
    d%value_dim = DV
    d%layout = layout
    d%algorithm = algorithm
    d%form = RETCL_FORM_RAW
    d%chunk_size = 4 ! T = 13: three full chunks and one of a single token
    d%scale = scale
    st = retcl_retention(ctx, d, retcl_buf(mq), retcl_buf(mk), retcl_buf(mv), &
                         retcl_buf(md), retcl_no_buf(), retcl_buf(ms), retcl_buf(mo), &
                         0_c_int32_t, c_null_ptr, c_null_ptr)
    call expect(st == RETCL_SUCCESS, label // ': retcl_retention: ' // &
                retcl_status_string_f(st) // ': ' // retcl_last_error_f(ctx))
    allocate(dev(DV * H * T * B), devs(DV * DK * H * B))
    e = retcl_cl_read(ctx, mo, dev)
    e = ior(e, retcl_cl_read(ctx, ms, devs))
    call expect(e == CL_SUCCESS, label // ': clEnqueueReadBuffer')
    if (layout == RETCL_LAYOUT_TOKEN_MAJOR) then
      o = reshape(dev, [DV, H, T, B])
    else
      o = reshape(reshape(dev, [DV, T, H, B]), [DV, H, T, B], order=[1, 3, 2, 4])
    end if
    s = reshape(devs, [DV, DK, H, B])

    ! Bound: an output is scale times a sum of T*Dk products q k v gamma^n;
    ! fp32 accumulation in any order is within (terms) u of the sum of
    ! their magnitudes (mag), and each decay factor gamma^n = exp(n log
    ! gamma) within ~(2 + n |log gamma|) u relative (|log gamma| < 0.7
    ! here). With u = 2^-24, c = T*Dk + 2T + 16 covers both with margin
    ! (6.1e-6 relative to mag); a wrong layout, decay or chunk boundary
    ! gives errors of order mag itself.
    u = 2d0**(-24)
    worst = 0
    do bb = 1, B
      do tt = 1, T
        do hh = 1, H
          do j = 1, DV
            bound = (T * DK + 2 * T + 16) * u * mag(j, hh, tt, bb) + 1d-30
            err = abs(o(j, hh, tt, bb) - ref(j, hh, tt, bb))
            if (.not. (err <= bound)) then
              call expect(.false., label // ': out(b=' // itoa(bb - 1) // ',t=' // &
                          itoa(tt - 1) // ',h=' // itoa(hh - 1) // ',j=' // itoa(j - 1) // ')')
              print '(a,es12.4,a,es12.4,a,es12.4)', '  got ', o(j, hh, tt, bb), &
                ' want ', ref(j, hh, tt, bb), ' bound ', bound
            end if
            worst = max(worst, err / bound)
          end do
        end do
      end do
    end do
    do bb = 1, B
      do hh = 1, H
        do i = 1, DK
          do j = 1, DV
            bound = (T * DK + 2 * T + 16) * u * smag(j, i, hh, bb) + 1d-30
            err = abs(s(j, i, hh, bb) - sref(j, i, hh, bb))
            if (.not. (err <= bound)) call expect(.false., label // ': state_out(b=' // &
                itoa(bb - 1) // ',h=' // itoa(hh - 1) // ',i=' // itoa(i - 1) // ',j=' // &
                itoa(j - 1) // ')')
            worst = max(worst, err / bound)
          end do
        end do
      end do
    end do
    print '(a,a,es10.3)', label, ': worst error / bound ', worst

    call retcl_cl_release(mq)
    call retcl_cl_release(mk)
    call retcl_cl_release(mv)
    call retcl_cl_release(mo)
    call retcl_cl_release(md)
    call retcl_cl_release(ms)
  end subroutine test_retention

  ! ---- (d) error paths ---------------------------------------------------

  subroutine test_errors()
    type(retcl_retention_desc) :: d
    type(c_ptr) :: m, other, model
    real(c_float) :: back(16)
    integer(c_int32_t) :: e
    character(len=:), allocatable :: msg

    e = retcl_cl_alloc(ctx, 16_c_size_t, m)
    e = ior(e, retcl_cl_write(ctx, m, nan_array(16)))
    call expect(e == CL_SUCCESS, 'errors: buffer')
    d%batch = 1
    d%tokens = 2
    d%heads = 0 ! the bad argument
    d%key_dim = 2
    d%value_dim = 2
    d%algorithm = RETCL_ALGO_RECURRENT
    st = retcl_retention(ctx, d, retcl_buf(m), retcl_buf(m, 4_c_size_t), &
                         retcl_buf(m, 8_c_size_t), retcl_buf(m, 12_c_size_t), &
                         retcl_no_buf(), retcl_no_buf(), retcl_buf(m), &
                         0_c_int32_t, c_null_ptr, c_null_ptr)
    msg = retcl_last_error_f(ctx)
    call expect(st == RETCL_ERROR_INVALID_SIZE, 'heads 0: status ' // itoa(int(st)) // &
                ' (' // retcl_status_string_f(st) // '), want INVALID_SIZE')
    call expect(index(msg, 'desc->heads') > 0 .and. index(msg, 'retcl_retention') > 0, &
                'heads 0: message "' // msg // '" names retcl_retention and desc->heads')
    call expect(retcl_status_string_f(RETCL_ERROR_INVALID_SIZE) == &
                'invalid or unsupported size', 'retcl_status_string_f')
    e = retcl_cl_read(ctx, m, back)
    call expect(all(ieee_is_nan(back)), 'heads 0: the buffer was written')
    print '(a)', 'rejected call: "' // msg // '"'
    call retcl_cl_release(m)

    st = retcl_model_load_f(ctx, '/nonexistent/retcl-fortran-test   ', model)
    msg = retcl_last_error_f(ctx)
    call expect(st == RETCL_ERROR_IO, 'model_load of a missing folder: status ' // &
                itoa(int(st)) // ', want IO')
    call expect(index(msg, '/nonexistent/retcl-fortran-test') > 0, &
                'model_load: message "' // msg // '" names the folder (trimmed)')
    call expect(.not. c_associated(model), 'model_load: model not NULL on failure')

    st = retcl_context_create_f(other, device='no such device 1f2e3d')
    msg = retcl_last_error_f()
    call expect(st == RETCL_ERROR_DEVICE_NOT_FOUND, 'context on an unknown device: ' // &
                itoa(int(st)))
    call expect(len(msg) > 0 .and. index(msg, 'no such device 1f2e3d') > 0, &
                'context-free message "' // msg // '" names the device')
    call expect(.not. c_associated(other), 'context_create: ctx not NULL on failure')
  end subroutine test_errors

  ! ---- (c) a model from Fortran ------------------------------------------

  subroutine close_logits(label, got, want, tol, worst)
    character(len=*), intent(in) :: label
    real(c_float), intent(in) :: got(:), want(:)
    real(c_double), intent(in) :: tol
    real(c_double), intent(inout) :: worst
    real(c_double) :: scale_, err
    scale_ = max(1d0, maxval(abs(real(want, c_double))))
    err = maxval(abs(real(got, c_double) - want)) / scale_
    if (any(ieee_is_nan(got))) err = huge(1d0)
    worst = max(worst, err)
    call expect(err <= tol, label)
    if (.not. (err <= tol)) print '(a,es12.4)', '  relative error ', err
  end subroutine close_logits

  subroutine test_model()
    integer, parameter :: B = 2, T = 9, V = 41, P = 5
    type(retcl_model_config) :: cfg, got
    type(c_ptr) :: model, state, pool
    integer(c_int32_t) :: tokens(T, B), prompt(P, B), step(1, B), slots(3), row_tokens(3)
    integer(c_int32_t), target :: pslots(2)
    integer(c_int32_t) :: packed(P + 3)
    integer(c_size_t) :: offsets(3)
    real(c_float) :: full(V, T, B), last(V, B), one(V, 1, B), rows(V, 3), plast(V, 2)
    character(len=64) :: dir
    real(c_double) :: worst
    ! Relative to the largest logit. A parallel prefill repeats the full
    ! forward's arithmetic on fewer tokens; recurrent decoding sums in
    ! another order and rescales its state per token (docs/design.md §1.4):
    ! measured <= 8e-6 over 45 seeds after two layers, so 4e-5 (a chunkwise
    ! prefill, whose per-chunk normalisation is not the parallel form's,
    ! already gives 1e-4..3e-4; a wrong token, position or state gives
    ! errors of order 1).
    real(c_double), parameter :: tol = 4d-5
    integer :: bb, tt

    call retcl_model_config_default(cfg)
    cfg%embed_dim = 16
    cfg%value_embed_dim = 24
    cfg%heads = 2
    cfg%ffn_dim = 32
    cfg%layers = 2
    cfg%vocab_size = V
    cfg%chunk_size = 4
    write (dir, '(a,i0)') 'retcl_fortran_ckpt_', abs(seed)
    st = retcl_checkpoint_write_random_f(cfg, seed, RETCL_DTYPE_F32, trim(dir))
    call expect(st == RETCL_SUCCESS, 'checkpoint_write_random: ' // retcl_last_error_f())
    st = retcl_model_load_f(ctx, trim(dir), model)
    call expect(st == RETCL_SUCCESS, 'model_load: ' // retcl_last_error_f(ctx))
    call execute_command_line('rm -rf ' // trim(dir))
    if (st /= RETCL_SUCCESS) return
    st = retcl_model_get_config(model, got)
    call expect(st == RETCL_SUCCESS .and. got%embed_dim == 16 .and. got%value_embed_dim == 24 &
                .and. got%heads == 2 .and. got%ffn_dim == 32 .and. got%layers == 2 .and. &
                got%vocab_size == V .and. got%chunk_size == 4 .and. &
                got%activation == cfg%activation, 'model_get_config round trip')
    call expect(retcl_model_weight_bytes(model) > 0, 'model_weight_bytes')
    call expect(retcl_model_weight_type(model) == RETCL_DTYPE_F32, 'model_weight_type')

    do bb = 1, B
      do tt = 1, T
        tokens(tt, bb) = int(uniform(0d0, V - 1d-9), c_int32_t)
      end do
    end do
    worst = 0

    ! The whole sequence at once, parallel form: logits(V, T, B).
    full = reshape(nan_array(V * T * B), [V, T, B])
    st = retcl_model_forward_f(model, c_null_ptr, tokens, int(B, c_size_t), &
                               int(T, c_size_t), RETCL_ALGO_PARALLEL, 0_c_size_t, full)
    call expect(st == RETCL_SUCCESS, 'model_forward: ' // retcl_last_error_f(ctx))

    ! Prefill P tokens into a decode state (parallel, as the full forward:
    ! torchscale's chunkwise form normalises per chunk, so its logits are
    ! not the parallel form's), then decode the rest one token at a time.
    st = retcl_decode_state_create(model, int(B, c_size_t), state)
    call expect(st == RETCL_SUCCESS, 'decode_state_create')
    prompt = tokens(1:P, :)
    last = reshape(nan_array(V * B), [V, B])
    st = retcl_model_forward_last_f(model, state, prompt, int(B, c_size_t), &
                                    int(P, c_size_t), RETCL_ALGO_PARALLEL, 0_c_size_t, last)
    call expect(st == RETCL_SUCCESS, 'forward_last: ' // retcl_last_error_f(ctx))
    do bb = 1, B
      call close_logits('prefill logits, sequence ' // itoa(bb - 1), last(:, bb), &
                        full(:, P, bb), tol, worst)
    end do
    call expect(retcl_decode_state_position(state) == P, 'decode state position after prefill')
    do tt = P + 1, T
      step(1, :) = tokens(tt, :)
      one = reshape(nan_array(V * B), [V, 1, B])
      st = retcl_model_forward_f(model, state, step, int(B, c_size_t), 1_c_size_t, &
                                 RETCL_ALGO_RECURRENT, 0_c_size_t, one)
      call expect(st == RETCL_SUCCESS, 'decode step: ' // retcl_last_error_f(ctx))
      do bb = 1, B
        call close_logits('decode logits, t=' // itoa(tt - 1) // ' sequence ' // itoa(bb - 1), &
                          one(:, 1, bb), full(:, tt, bb), tol, worst)
      end do
    end do
    call expect(retcl_decode_state_position(state) == T, 'decode state position at the end')
    call retcl_decode_state_destroy(state)

    ! Serving: sequence 0's first P tokens into slot 2 and sequence 1's
    ! first 3 into slot 0 of a 3-slot pool, packed; then one decode step
    ! with rows (slot 2, skipped, slot 0).
    st = retcl_state_pool_create(model, 3_c_size_t, pool)
    call expect(st == RETCL_SUCCESS .and. retcl_state_pool_slots(pool) == 3, &
                'state_pool_create')
    packed(1:P) = tokens(1:P, 1)
    packed(P + 1:P + 3) = tokens(1:3, 2)
    offsets = [0_c_size_t, int(P, c_size_t), int(P + 3, c_size_t)]
    pslots = [2, 0]
    plast = reshape(nan_array(V * 2), [V, 2])
    st = retcl_model_forward_packed_f(model, pool, packed, offsets, 2_c_size_t, &
                                      RETCL_ALGO_PARALLEL, 0_c_size_t, .true., plast, pslots)
    call expect(st == RETCL_SUCCESS, 'forward_packed: ' // retcl_last_error_f(ctx))
    call close_logits('packed prefill, sequence 0', plast(:, 1), full(:, P, 1), tol, worst)
    call close_logits('packed prefill, sequence 1', plast(:, 2), full(:, 3, 2), tol, worst)
    call expect(retcl_state_pool_position(pool, 2_c_size_t) == P .and. &
                retcl_state_pool_position(pool, 0_c_size_t) == 3 .and. &
                retcl_state_pool_position(pool, 1_c_size_t) == 0, 'pool positions')
    slots = [2, -1, 0]
    row_tokens = [tokens(P + 1, 1), -7, tokens(4, 2)]
    rows = reshape(nan_array(V * 3), [V, 3])
    st = retcl_model_decode_step(model, pool, slots, row_tokens, 3_c_size_t, rows)
    call expect(st == RETCL_SUCCESS, 'decode_step: ' // retcl_last_error_f(ctx))
    call close_logits('pool decode, row 0', rows(:, 1), full(:, P + 1, 1), tol, worst)
    call close_logits('pool decode, row 2', rows(:, 3), full(:, 4, 2), tol, worst)
    call expect(all(ieee_is_nan(rows(:, 2))), 'pool decode: the skipped row was written')

    ! A bad slot: rejected, nothing changes.
    slots = [2, 2, -1]
    st = retcl_model_decode_step(model, pool, slots, row_tokens, 3_c_size_t, rows)
    call expect(st == RETCL_ERROR_INVALID_ARGUMENT, 'decode_step with a slot twice: ' // &
                itoa(int(st)))
    call expect(retcl_state_pool_position(pool, 2_c_size_t) == P + 1, &
                'pool position after a rejected step')
    call retcl_state_pool_destroy(pool)
    call retcl_model_destroy(model)
    print '(a,es10.3,a,es8.1,a)', 'model: worst relative logit error ', worst, &
          ' (tolerance ', tol, ')'
  end subroutine test_model

end program test_fortran
