! retcl_mpi.f90 - the Fortran module `retcl_mpi` over include/retcl_mpi.h
! (docs/fortran.md, docs/hpc.md): one RetCL context per rank on a Fortran
! communicator (mpi_f08's type(MPI_Comm)), and sequence-parallel retention.
! The communicator crosses to C through fortran/retcl_mpi_f.c
! (MPI_Comm_f2c). Every "Collective" rule of retcl_mpi.h holds as written.
module retcl_mpi
  use, intrinsic :: iso_c_binding
  use mpi_f08, only: MPI_Comm
  use retcl
  implicit none

  ! retcl_mpi_scan
  integer(c_int), parameter :: RETCL_MPI_SCAN_EXSCAN = 0
  integer(c_int), parameter :: RETCL_MPI_SCAN_RING = 1

  !> retcl_mpi_stats: bytes moved and seconds of one retcl_mpi_retention.
  type, bind(c) :: retcl_mpi_stats
    integer(c_size_t) :: pair_bytes = 0
    integer(c_size_t) :: bytes_sent = 0, bytes_received = 0
    integer(c_size_t) :: control_bytes = 0
    real(c_double) :: seconds_local = 0, seconds_exchange = 0, seconds_finish = 0
  end type retcl_mpi_stats

  interface
    function c_create_f(comm, platform, device, out) bind(c, name='retcl_mpi_create_f')
      import :: c_int, c_ptr
      integer(c_int), value :: comm ! MPI_Fint
      type(c_ptr), value :: platform, device
      type(c_ptr), intent(out) :: out
      integer(c_int) :: c_create_f
    end function
    function c_wrap_f(comm, ctx, out) bind(c, name='retcl_mpi_wrap_f')
      import :: c_int, c_ptr
      integer(c_int), value :: comm
      type(c_ptr), value :: ctx
      type(c_ptr), intent(out) :: out
      integer(c_int) :: c_wrap_f
    end function
    function c_comm_f(h) bind(c, name='retcl_mpi_comm_f')
      import :: c_int, c_ptr
      type(c_ptr), value :: h
      integer(c_int) :: c_comm_f
    end function

    !> Free the handle (collective). c_null_ptr is a no-op.
    subroutine retcl_mpi_destroy(h) bind(c, name='retcl_mpi_destroy')
      import :: c_ptr
      type(c_ptr), value :: h
    end subroutine
    !> The rank's RetCL context, for buffers and the ops of module retcl.
    function retcl_mpi_context(h) bind(c, name='retcl_mpi_context')
      import :: c_ptr
      type(c_ptr), value :: h
      type(c_ptr) :: retcl_mpi_context
    end function
    function retcl_mpi_rank(h) bind(c, name='retcl_mpi_rank')
      import :: c_int, c_ptr
      type(c_ptr), value :: h
      integer(c_int) :: retcl_mpi_rank
    end function
    function retcl_mpi_size(h) bind(c, name='retcl_mpi_size')
      import :: c_int, c_ptr
      type(c_ptr), value :: h
      integer(c_int) :: retcl_mpi_size
    end function
    function retcl_mpi_last_error(h) bind(c, name='retcl_mpi_last_error')
      import :: c_ptr
      type(c_ptr), value :: h
      type(c_ptr) :: retcl_mpi_last_error
    end function
    !> Sequence-parallel retention (collective): each rank passes its
    !> slice; see retcl_mpi.h. stats: c_loc of a retcl_mpi_stats, or
    !> c_null_ptr.
    function retcl_mpi_retention(h, desc, scan, q, k, v, log_decay, state_in, &
        state_out, out, stats) bind(c, name='retcl_mpi_retention')
      import :: c_int, c_ptr, retcl_retention_desc, retcl_buffer
      type(c_ptr), value :: h
      type(retcl_retention_desc), intent(in) :: desc
      integer(c_int), value :: scan
      type(retcl_buffer), value :: q, k, v, log_decay, state_in, state_out, out
      type(c_ptr), value :: stats
      integer(c_int) :: retcl_mpi_retention
    end function
    function c_model_load(h, dir, split, storage, out) &
        bind(c, name='retcl_mpi_model_load')
      import :: c_int, c_ptr
      type(c_ptr), value :: h, dir
      integer(c_int), value :: split, storage
      type(c_ptr), intent(out) :: out
      integer(c_int) :: c_model_load
    end function
  end interface

  !> retcl_mpi_split
  integer(c_int), parameter :: RETCL_MPI_SPLIT_SEQUENCE = 0
  integer(c_int), parameter :: RETCL_MPI_SPLIT_HEADS = 1

contains

  !> retcl_mpi_model_load (collective): the checkpoint in dir split over
  !> the handle's ranks by heads or by sequence (retcl_mpi.h); storage
  !> absent: RETCL_STORAGE_F32. The model's forwards are then collective.
  function retcl_mpi_model_load_f(h, dir, split, model, storage) &
      result(status)
    type(c_ptr), intent(in) :: h
    character(len=*), intent(in) :: dir
    integer(c_int), intent(in) :: split
    type(c_ptr), intent(out) :: model
    integer(c_int), intent(in), optional :: storage
    integer(c_int) :: status, st
    character(kind=c_char, len=:), allocatable, target :: d
    d = retcl_c_chars(dir)
    st = RETCL_STORAGE_F32
    if (present(storage)) st = storage
    status = c_model_load(h, c_loc(d), split, st, model)
  end function retcl_mpi_model_load_f

  !> retcl_mpi_create on a Fortran communicator (collective); platform and
  !> device as retcl_context_create_f (absent: by node-local rank).
  function retcl_mpi_create_f(comm, h, platform, device) result(status)
    type(MPI_Comm), intent(in) :: comm
    type(c_ptr), intent(out) :: h
    character(len=*), intent(in), optional :: platform, device
    integer(c_int) :: status
    character(kind=c_char, len=:), allocatable, target :: p, d
    type(c_ptr) :: pp, dp
    pp = c_null_ptr
    dp = c_null_ptr
    if (present(platform)) then
      p = retcl_c_chars(platform)
      pp = c_loc(p)
    end if
    if (present(device)) then
      d = retcl_c_chars(device)
      dp = c_loc(d)
    end if
    status = c_create_f(int(comm%MPI_VAL, c_int), pp, dp, h)
  end function retcl_mpi_create_f

  !> retcl_mpi_wrap around the caller's context ctx (collective).
  function retcl_mpi_wrap_f(comm, ctx, h) result(status)
    type(MPI_Comm), intent(in) :: comm
    type(c_ptr), intent(in) :: ctx
    type(c_ptr), intent(out) :: h
    integer(c_int) :: status
    status = c_wrap_f(int(comm%MPI_VAL, c_int), ctx, h)
  end function retcl_mpi_wrap_f

  !> The handle's duplicate communicator, as an mpi_f08 handle.
  function retcl_mpi_comm_f(h) result(comm)
    type(c_ptr), intent(in) :: h
    type(MPI_Comm) :: comm
    comm%MPI_VAL = c_comm_f(h)
  end function retcl_mpi_comm_f

  !> retcl_mpi_last_error as a Fortran string (h absent: the last failed
  !> create/wrap of this thread).
  function retcl_mpi_last_error_f(h) result(s)
    type(c_ptr), intent(in), optional :: h
    character(len=:), allocatable :: s
    if (present(h)) then
      s = retcl_c_string(retcl_mpi_last_error(h))
    else
      s = retcl_c_string(retcl_mpi_last_error(c_null_ptr))
    end if
  end function retcl_mpi_last_error_f

end module retcl_mpi
