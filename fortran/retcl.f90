! retcl.f90 - the Fortran 2008 interface of RetCL (docs/fortran.md).
!
! Module `retcl`, over the public C API of include/retcl.h with
! iso_c_binding only:
!  - integer(c_int) parameters with the values of the C enums (status
!    codes, algorithms, forms, layouts, dtypes, storage types, norm kinds,
!    gates, activations, GEMM cases);
!  - bind(c) derived types laid out exactly as the C structs
!    (size_t -> integer(c_size_t), enums -> integer(c_int), pointers and
!    OpenCL handles -> type(c_ptr)); every component has a zero default,
!    so `type(retcl_retention_desc) :: d` starts as C's `= {0}`;
!  - interfaces with the C names and the C signatures exactly
!    (bind(c, name='retcl_...')): opaque handles (context, model, ...)
!    and pointers that may be NULL are type(c_ptr), structs are passed by
!    reference, retcl_buffer by value, host arrays that are never NULL as
!    assumed-size arrays;
!  - helpers ending in _f for what C takes as strings or nullable host
!    arrays: Fortran strings (trailing blanks trimmed, NUL appended;
!    absent = NULL), C strings returned as allocatable Fortran strings,
!    assumed-size token and logit arrays;
!  - retcl_buf / retcl_buf_typed / retcl_no_buf (static inline in C);
!  - retcl_cl_alloc / _write / _read / _release: the few OpenCL calls a
!    Fortran code without OpenCL bindings of its own needs to make and
!    fill device buffers on a context (a code with its own OpenCL objects,
!    from clfortran say, passes its cl_mem handles as type(c_ptr)).
!
! Array layouts: RetCL's row-major [B, T, H, D] is Fortran's column-major
! x(D, H, T, B): the same memory, no copy. Token ids are zero-based, as
! in C. Sizes are integer(c_size_t): write 8_c_size_t or int(n, c_size_t).
module retcl
  use, intrinsic :: iso_c_binding
  implicit none
  private :: c_strlen

  ! ---- version ------------------------------------------------------------
  integer(c_int), parameter :: RETCL_VERSION_MAJOR = 0
  integer(c_int), parameter :: RETCL_VERSION_MINOR = 1
  integer(c_int), parameter :: RETCL_VERSION_PATCH = 0
  ! RETCL_VERSION_NUMBER of the header this module was made from (Fortran
  ! names ignore case, so it cannot share retcl_version_number's name):
  ! compare with retcl_version_number() to detect a stale library.
  integer(c_int), parameter :: RETCL_MODULE_VERSION_NUMBER = &
      RETCL_VERSION_MAJOR * 10000 + RETCL_VERSION_MINOR * 100 + RETCL_VERSION_PATCH

  ! ---- retcl_status -------------------------------------------------------
  integer(c_int), parameter :: RETCL_SUCCESS = 0
  integer(c_int), parameter :: RETCL_ERROR_INVALID_ARGUMENT = 1
  integer(c_int), parameter :: RETCL_ERROR_INVALID_SIZE = 2
  integer(c_int), parameter :: RETCL_ERROR_BUFFER_TOO_SMALL = 3
  integer(c_int), parameter :: RETCL_ERROR_CONTEXT_MISMATCH = 4
  integer(c_int), parameter :: RETCL_ERROR_DEVICE_NOT_FOUND = 5
  integer(c_int), parameter :: RETCL_ERROR_UNSUPPORTED = 6
  integer(c_int), parameter :: RETCL_ERROR_BUILD_FAILED = 7
  integer(c_int), parameter :: RETCL_ERROR_OUT_OF_MEMORY = 8
  integer(c_int), parameter :: RETCL_ERROR_OPENCL = 9
  integer(c_int), parameter :: RETCL_ERROR_IO = 10
  integer(c_int), parameter :: RETCL_ERROR_FORMAT = 11

  ! ---- retcl_log_level ----------------------------------------------------
  integer(c_int), parameter :: RETCL_LOG_DEBUG = 0
  integer(c_int), parameter :: RETCL_LOG_INFO = 1
  integer(c_int), parameter :: RETCL_LOG_WARNING = 2
  integer(c_int), parameter :: RETCL_LOG_ERROR = 3

  ! ---- retcl_dtype --------------------------------------------------------
  integer(c_int), parameter :: RETCL_DTYPE_F32 = 0
  integer(c_int), parameter :: RETCL_DTYPE_F16 = 1
  integer(c_int), parameter :: RETCL_DTYPE_BF16 = 2

  ! ---- retcl_layout -------------------------------------------------------
  integer(c_int), parameter :: RETCL_LAYOUT_TOKEN_MAJOR = 0
  integer(c_int), parameter :: RETCL_LAYOUT_HEAD_MAJOR = 1

  ! ---- retcl_algorithm, retcl_retention_form ------------------------------
  integer(c_int), parameter :: RETCL_ALGO_PARALLEL = 0
  integer(c_int), parameter :: RETCL_ALGO_RECURRENT = 1
  integer(c_int), parameter :: RETCL_ALGO_CHUNKWISE = 2
  integer(c_int), parameter :: RETCL_FORM_RAW = 0
  integer(c_int), parameter :: RETCL_FORM_TORCHSCALE = 1

  ! ---- retcl_norm_kind, retcl_gate, retcl_activation ----------------------
  integer(c_int), parameter :: RETCL_NORM_RMS = 0
  integer(c_int), parameter :: RETCL_NORM_LAYER = 1
  integer(c_int), parameter :: RETCL_GATE_SWISH = 0
  integer(c_int), parameter :: RETCL_GATE_GELU = 1
  integer(c_int), parameter :: RETCL_GATE_NONE = 2
  integer(c_int), parameter :: RETCL_ACT_GELU = 0
  integer(c_int), parameter :: RETCL_ACT_SWISH = 1

  ! ---- retcl_gemm_case ----------------------------------------------------
  integer(c_int), parameter :: RETCL_GEMM_NT = 0
  integer(c_int), parameter :: RETCL_GEMM_NN = 1
  integer(c_int), parameter :: RETCL_GEMM_TN = 2

  ! ---- retcl_storage ------------------------------------------------------
  integer(c_int), parameter :: RETCL_STORAGE_F32 = 0
  integer(c_int), parameter :: RETCL_STORAGE_F16 = 1
  integer(c_int), parameter :: RETCL_STORAGE_BF16 = 2
  integer(c_int), parameter :: RETCL_STORAGE_KEEP = 3

  ! ---- OpenCL 1.2 values the helpers below use ---------------------------
  integer(c_int32_t), parameter :: CL_SUCCESS = 0
  integer(c_int64_t), parameter :: CL_MEM_READ_WRITE = 1_c_int64_t

  ! ---- structs (field order, types and padding as in retcl.h) ------------

  !> retcl_device_entry
  type, bind(c) :: retcl_device_entry
    integer(c_size_t) :: index = 0
    integer(c_int32_t) :: platform_index = 0 ! cl_uint
    type(c_ptr) :: platform = c_null_ptr      ! cl_platform_id
    type(c_ptr) :: device = c_null_ptr        ! cl_device_id
    integer(c_int64_t) :: type = 0            ! cl_device_type (cl_ulong bits)
  end type retcl_device_entry

  !> retcl_buffer: a cl_mem, an offset in elements of `type`, the type.
  type, bind(c) :: retcl_buffer
    type(c_ptr) :: mem = c_null_ptr
    integer(c_size_t) :: offset = 0
    integer(c_int) :: type = RETCL_DTYPE_F32
  end type retcl_buffer

  !> retcl_packing: count 0 is a rectangular batch. The pointers are host
  !> arrays (c_loc of size_t / int32 arrays with the target attribute).
  type, bind(c) :: retcl_packing
    integer(c_size_t) :: count = 0
    type(c_ptr) :: offsets = c_null_ptr      ! const size_t *
    type(c_ptr) :: positions = c_null_ptr    ! const size_t *
    type(c_ptr) :: state_slots = c_null_ptr  ! const int32_t *
  end type retcl_packing

  type, bind(c) :: retcl_rotation_desc
    integer(c_size_t) :: batch = 0, tokens = 0, heads = 0
    integer(c_int) :: layout = RETCL_LAYOUT_TOKEN_MAJOR
    integer(c_size_t) :: pos0 = 0
    integer(c_int) :: is_key = 0
    type(retcl_packing) :: packing
  end type retcl_rotation_desc

  type, bind(c) :: retcl_retention_desc
    integer(c_size_t) :: batch = 0, tokens = 0, heads = 0
    integer(c_size_t) :: key_dim = 0, value_dim = 0
    integer(c_int) :: layout = RETCL_LAYOUT_TOKEN_MAJOR
    integer(c_int) :: algorithm = RETCL_ALGO_PARALLEL
    integer(c_int) :: form = RETCL_FORM_RAW
    integer(c_size_t) :: chunk_size = 0
    real(c_float) :: scale = 0.0_c_float
    integer(c_size_t) :: position = 0
    type(retcl_packing) :: packing
  end type retcl_retention_desc

  type, bind(c) :: retcl_group_norm_desc
    integer(c_size_t) :: batch = 0, tokens = 0, heads = 0, head_dim = 0
    integer(c_int) :: layout = RETCL_LAYOUT_TOKEN_MAJOR
    integer(c_int) :: kind = RETCL_NORM_RMS
    integer(c_int) :: gate = RETCL_GATE_SWISH
    real(c_float) :: eps = 0.0_c_float
  end type retcl_group_norm_desc

  type, bind(c) :: retcl_projection
    type(retcl_buffer) :: w, y
    integer(c_size_t) :: n = 0
    real(c_float) :: alpha = 0.0_c_float
  end type retcl_projection

  type, bind(c) :: retcl_msr_weights
    type(retcl_buffer) :: q_proj, k_proj, v_proj, g_proj, out_proj
  end type retcl_msr_weights

  type, bind(c) :: retcl_msr_desc
    integer(c_size_t) :: batch = 0, tokens = 0
    integer(c_size_t) :: embed_dim = 0, value_embed_dim = 0, heads = 0
    integer(c_int) :: algorithm = RETCL_ALGO_PARALLEL
    integer(c_int) :: form = RETCL_FORM_RAW
    integer(c_size_t) :: chunk_size = 0
    integer(c_size_t) :: pos0 = 0
    real(c_float) :: norm_eps = 0.0_c_float
    type(retcl_packing) :: packing
  end type retcl_msr_desc

  !> retcl_model_config; retcl_model_config_default fills torchscale's
  !> defaults.
  type, bind(c) :: retcl_model_config
    integer(c_size_t) :: embed_dim = 0, value_embed_dim = 0, heads = 0
    integer(c_size_t) :: ffn_dim = 0, layers = 0, vocab_size = 0
    integer(c_int) :: activation = RETCL_ACT_GELU
    real(c_float) :: layernorm_eps = 0.0_c_float
    integer(c_int) :: no_scale_embedding = 0
    integer(c_int) :: layernorm_embedding = 0
    integer(c_int) :: deepnorm = 0
    integer(c_int) :: share_embed = 0
    integer(c_size_t) :: chunk_size = 0
  end type retcl_model_config

  type, bind(c) :: retcl_tensor_info
    type(c_ptr) :: name = c_null_ptr ! const char *
    integer(c_size_t) :: rows = 0, cols = 0, offset = 0
  end type retcl_tensor_info

  type, bind(c) :: retcl_train_options
    integer(c_int) :: algorithm = RETCL_ALGO_CHUNKWISE
    integer(c_size_t) :: chunk_size = 0
    integer(c_int) :: recompute = 0
    integer(c_int32_t) :: ignore_index = -1
  end type retcl_train_options

  type, bind(c) :: retcl_adamw
    real(c_float) :: lr = 0, beta1 = 0, beta2 = 0, eps = 0
    real(c_float) :: weight_decay = 0, clip_norm = 0
  end type retcl_adamw

  type, bind(c) :: retcl_sampler
    real(c_float) :: temperature = 0.0_c_float
    integer(c_size_t) :: top_k = 0
  end type retcl_sampler

  ! ---- the C API ----------------------------------------------------------
  interface
    ! strlen of the C library, for the string helpers.
    pure function c_strlen(s) bind(c, name='strlen') result(n)
      import :: c_ptr, c_size_t
      type(c_ptr), value :: s
      integer(c_size_t) :: n
    end function c_strlen

    ! -- version, status, errors --
    function retcl_version_number() bind(c, name='retcl_version_number')
      import :: c_int
      integer(c_int) :: retcl_version_number
    end function
    function retcl_version_string() bind(c, name='retcl_version_string')
      import :: c_ptr
      type(c_ptr) :: retcl_version_string
    end function
    function retcl_status_string(status) bind(c, name='retcl_status_string')
      import :: c_int, c_ptr
      integer(c_int), value :: status
      type(c_ptr) :: retcl_status_string
    end function
    function retcl_cl_error_name(err) bind(c, name='retcl_cl_error_name')
      import :: c_int32_t, c_ptr
      integer(c_int32_t), value :: err
      type(c_ptr) :: retcl_cl_error_name
    end function
    function retcl_last_error(ctx) bind(c, name='retcl_last_error')
      import :: c_ptr
      type(c_ptr), value :: ctx
      type(c_ptr) :: retcl_last_error
    end function
    function retcl_random_next(state) bind(c, name='retcl_random_next')
      import :: c_int64_t
      integer(c_int64_t), intent(inout) :: state ! uint64_t bits
      integer(c_int64_t) :: retcl_random_next
    end function
    function retcl_random_uniform(state) bind(c, name='retcl_random_uniform')
      import :: c_int64_t, c_double
      integer(c_int64_t), intent(inout) :: state
      real(c_double) :: retcl_random_uniform
    end function

    ! -- devices and contexts --
    function retcl_device_list(platform, out, cap, count) &
        bind(c, name='retcl_device_list')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: platform ! const char * or NULL
      type(c_ptr), value :: out      ! retcl_device_entry[cap] or NULL
      integer(c_size_t), value :: cap
      integer(c_size_t), intent(out) :: count
      integer(c_int) :: retcl_device_list
    end function
    function retcl_context_create(platform, device, out) &
        bind(c, name='retcl_context_create')
      import :: c_int, c_ptr
      type(c_ptr), value :: platform, device ! const char * or NULL
      type(c_ptr), intent(out) :: out
      integer(c_int) :: retcl_context_create
    end function
    function retcl_context_wrap(cl_ctx, device, queue, out) &
        bind(c, name='retcl_context_wrap')
      import :: c_int, c_ptr
      type(c_ptr), value :: cl_ctx, device, queue
      type(c_ptr), intent(out) :: out
      integer(c_int) :: retcl_context_wrap
    end function
    subroutine retcl_context_destroy(ctx) bind(c, name='retcl_context_destroy')
      import :: c_ptr
      type(c_ptr), value :: ctx
    end subroutine
    function retcl_context_cl_context(ctx) bind(c, name='retcl_context_cl_context')
      import :: c_ptr
      type(c_ptr), value :: ctx
      type(c_ptr) :: retcl_context_cl_context
    end function
    function retcl_context_device(ctx) bind(c, name='retcl_context_device')
      import :: c_ptr
      type(c_ptr), value :: ctx
      type(c_ptr) :: retcl_context_device
    end function
    function retcl_context_queue(ctx) bind(c, name='retcl_context_queue')
      import :: c_ptr
      type(c_ptr), value :: ctx
      type(c_ptr) :: retcl_context_queue
    end function
    function retcl_context_workspace_bytes(ctx) &
        bind(c, name='retcl_context_workspace_bytes')
      import :: c_ptr, c_size_t
      type(c_ptr), value :: ctx
      integer(c_size_t) :: retcl_context_workspace_bytes
    end function
    function retcl_context_prepare(ctx) bind(c, name='retcl_context_prepare')
      import :: c_int, c_ptr
      type(c_ptr), value :: ctx
      integer(c_int) :: retcl_context_prepare
    end function
    function retcl_context_vendor(ctx) bind(c, name='retcl_context_vendor')
      import :: c_ptr
      type(c_ptr), value :: ctx
      type(c_ptr) :: retcl_context_vendor
    end function
    function retcl_finish(ctx) bind(c, name='retcl_finish')
      import :: c_int, c_ptr
      type(c_ptr), value :: ctx
      integer(c_int) :: retcl_finish
    end function
    function retcl_default_log_decay(heads, log_decay) &
        bind(c, name='retcl_default_log_decay')
      import :: c_int, c_size_t, c_float
      integer(c_size_t), value :: heads
      real(c_float), intent(out) :: log_decay(*)
      integer(c_int) :: retcl_default_log_decay
    end function

    ! -- ops (events: num_events_in_wait_list 0, c_null_ptr, c_null_ptr
    !    when not used; an event is c_loc of a type(c_ptr) variable) --
    function retcl_rotation_create(ctx, head_dim, theta, xpos_scale_base, out) &
        bind(c, name='retcl_rotation_create')
      import :: c_int, c_ptr, c_size_t, c_float
      type(c_ptr), value :: ctx
      integer(c_size_t), value :: head_dim
      type(c_ptr), value :: theta ! const float[head_dim/2] or NULL
      real(c_float), value :: xpos_scale_base
      type(c_ptr), intent(out) :: out
      integer(c_int) :: retcl_rotation_create
    end function
    subroutine retcl_rotation_destroy(rot) bind(c, name='retcl_rotation_destroy')
      import :: c_ptr
      type(c_ptr), value :: rot
    end subroutine
    function retcl_rotate(ctx, rot, desc, in, out, num_events_in_wait_list, &
        event_wait_list, event) bind(c, name='retcl_rotate')
      import :: c_int, c_ptr, c_int32_t, retcl_rotation_desc, retcl_buffer
      type(c_ptr), value :: ctx, rot
      type(retcl_rotation_desc), intent(in) :: desc
      type(retcl_buffer), value :: in, out
      integer(c_int32_t), value :: num_events_in_wait_list
      type(c_ptr), value :: event_wait_list, event
      integer(c_int) :: retcl_rotate
    end function
    function retcl_retention(ctx, desc, q, k, v, log_decay, state_in, &
        state_out, out, num_events_in_wait_list, event_wait_list, event) &
        bind(c, name='retcl_retention')
      import :: c_int, c_ptr, c_int32_t, retcl_retention_desc, retcl_buffer
      type(c_ptr), value :: ctx
      type(retcl_retention_desc), intent(in) :: desc
      type(retcl_buffer), value :: q, k, v, log_decay, state_in, state_out, out
      integer(c_int32_t), value :: num_events_in_wait_list
      type(c_ptr), value :: event_wait_list, event
      integer(c_int) :: retcl_retention
    end function
    function retcl_group_norm_gate(ctx, desc, x, gate, weight, bias, out, &
        num_events_in_wait_list, event_wait_list, event) &
        bind(c, name='retcl_group_norm_gate')
      import :: c_int, c_ptr, c_int32_t, retcl_group_norm_desc, retcl_buffer
      type(c_ptr), value :: ctx
      type(retcl_group_norm_desc), intent(in) :: desc
      type(retcl_buffer), value :: x, gate, weight, bias, out
      integer(c_int32_t), value :: num_events_in_wait_list
      type(c_ptr), value :: event_wait_list, event
      integer(c_int) :: retcl_group_norm_gate
    end function
    function retcl_linear(ctx, M, N, K, alpha, x, w, beta, y, &
        num_events_in_wait_list, event_wait_list, event) &
        bind(c, name='retcl_linear')
      import :: c_int, c_ptr, c_int32_t, c_size_t, c_float, retcl_buffer
      type(c_ptr), value :: ctx
      integer(c_size_t), value :: M, N, K
      real(c_float), value :: alpha
      type(retcl_buffer), value :: x, w
      real(c_float), value :: beta
      type(retcl_buffer), value :: y
      integer(c_int32_t), value :: num_events_in_wait_list
      type(c_ptr), value :: event_wait_list, event
      integer(c_int) :: retcl_linear
    end function
    function retcl_gemm(ctx, op, M, N, K, alpha, a, lda, b, ldb, beta, c, &
        ldc, num_events_in_wait_list, event_wait_list, event) &
        bind(c, name='retcl_gemm')
      import :: c_int, c_ptr, c_int32_t, c_size_t, c_float, retcl_buffer
      type(c_ptr), value :: ctx
      integer(c_int), value :: op
      integer(c_size_t), value :: M, N, K
      real(c_float), value :: alpha
      type(retcl_buffer), value :: a
      integer(c_size_t), value :: lda
      type(retcl_buffer), value :: b
      integer(c_size_t), value :: ldb
      real(c_float), value :: beta
      type(retcl_buffer), value :: c
      integer(c_size_t), value :: ldc
      integer(c_int32_t), value :: num_events_in_wait_list
      type(c_ptr), value :: event_wait_list, event
      integer(c_int) :: retcl_gemm
    end function
    function retcl_linear_many(ctx, M, K, x, count, proj, &
        num_events_in_wait_list, event_wait_list, event) &
        bind(c, name='retcl_linear_many')
      import :: c_int, c_ptr, c_int32_t, c_size_t, retcl_buffer, retcl_projection
      type(c_ptr), value :: ctx
      integer(c_size_t), value :: M, K
      type(retcl_buffer), value :: x
      integer(c_size_t), value :: count
      type(retcl_projection), intent(in) :: proj(*)
      integer(c_int32_t), value :: num_events_in_wait_list
      type(c_ptr), value :: event_wait_list, event
      integer(c_int) :: retcl_linear_many
    end function
    function retcl_msr_forward(ctx, desc, weights, rot, log_decay, x, &
        state_in, state_out, y, num_events_in_wait_list, event_wait_list, &
        event) bind(c, name='retcl_msr_forward')
      import :: c_int, c_ptr, c_int32_t, retcl_msr_desc, retcl_msr_weights, &
                retcl_buffer
      type(c_ptr), value :: ctx
      type(retcl_msr_desc), intent(in) :: desc
      type(retcl_msr_weights), intent(in) :: weights
      type(c_ptr), value :: rot
      type(retcl_buffer), value :: log_decay, x, state_in, state_out, y
      integer(c_int32_t), value :: num_events_in_wait_list
      type(c_ptr), value :: event_wait_list, event
      integer(c_int) :: retcl_msr_forward
    end function

    ! -- models --
    subroutine retcl_model_config_default(cfg) &
        bind(c, name='retcl_model_config_default')
      import :: retcl_model_config
      type(retcl_model_config), intent(out) :: cfg
    end subroutine
    function retcl_checkpoint_write_random(cfg, seed, dtype, dir) &
        bind(c, name='retcl_checkpoint_write_random')
      import :: c_int, c_int64_t, c_ptr, retcl_model_config
      type(retcl_model_config), intent(in) :: cfg
      integer(c_int64_t), value :: seed
      integer(c_int), value :: dtype
      type(c_ptr), value :: dir
      integer(c_int) :: retcl_checkpoint_write_random
    end function
    function retcl_model_load(ctx, dir, out) bind(c, name='retcl_model_load')
      import :: c_int, c_ptr
      type(c_ptr), value :: ctx, dir
      type(c_ptr), intent(out) :: out
      integer(c_int) :: retcl_model_load
    end function
    function retcl_model_load_as(ctx, dir, storage, out) &
        bind(c, name='retcl_model_load_as')
      import :: c_int, c_ptr
      type(c_ptr), value :: ctx, dir
      integer(c_int), value :: storage
      type(c_ptr), intent(out) :: out
      integer(c_int) :: retcl_model_load_as
    end function
    subroutine retcl_model_destroy(model) bind(c, name='retcl_model_destroy')
      import :: c_ptr
      type(c_ptr), value :: model
    end subroutine
    function retcl_model_weight_type(model) bind(c, name='retcl_model_weight_type')
      import :: c_int, c_ptr
      type(c_ptr), value :: model
      integer(c_int) :: retcl_model_weight_type
    end function
    function retcl_model_get_config(model, cfg) bind(c, name='retcl_model_get_config')
      import :: c_int, c_ptr, retcl_model_config
      type(c_ptr), value :: model
      type(retcl_model_config), intent(out) :: cfg
      integer(c_int) :: retcl_model_get_config
    end function
    function retcl_model_weight_bytes(model) bind(c, name='retcl_model_weight_bytes')
      import :: c_ptr, c_size_t
      type(c_ptr), value :: model
      integer(c_size_t) :: retcl_model_weight_bytes
    end function
    function retcl_model_save(model, dir, dtype) bind(c, name='retcl_model_save')
      import :: c_int, c_ptr
      type(c_ptr), value :: model, dir
      integer(c_int), value :: dtype
      integer(c_int) :: retcl_model_save
    end function
    function retcl_decode_state_create(model, batch, out) &
        bind(c, name='retcl_decode_state_create')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: model
      integer(c_size_t), value :: batch
      type(c_ptr), intent(out) :: out
      integer(c_int) :: retcl_decode_state_create
    end function
    subroutine retcl_decode_state_destroy(state) &
        bind(c, name='retcl_decode_state_destroy')
      import :: c_ptr
      type(c_ptr), value :: state
    end subroutine
    function retcl_decode_state_position(state) &
        bind(c, name='retcl_decode_state_position')
      import :: c_ptr, c_size_t
      type(c_ptr), value :: state
      integer(c_size_t) :: retcl_decode_state_position
    end function
    !> Copy the heads `to` holds of `from` (e.g. a sequence-split prefill's
    !> state into a heads-split model's state), with the position.
    function retcl_decode_state_copy(from, to) &
        bind(c, name='retcl_decode_state_copy')
      import :: c_int, c_ptr
      type(c_ptr), value :: from, to
      integer(c_int) :: retcl_decode_state_copy
    end function
    function retcl_decode_state_bytes(state) bind(c, name='retcl_decode_state_bytes')
      import :: c_ptr, c_size_t
      type(c_ptr), value :: state
      integer(c_size_t) :: retcl_decode_state_bytes
    end function
    function retcl_model_forward(model, state, tokens, batch, tokens_len, &
        algorithm, chunk_size, logits) bind(c, name='retcl_model_forward')
      import :: c_int, c_ptr, c_int32_t, c_size_t
      type(c_ptr), value :: model, state ! state: NULL for stand-alone
      integer(c_int32_t), intent(in) :: tokens(*)
      integer(c_size_t), value :: batch, tokens_len
      integer(c_int), value :: algorithm
      integer(c_size_t), value :: chunk_size
      type(c_ptr), value :: logits ! float[batch*tokens_len*vocab] or NULL
      integer(c_int) :: retcl_model_forward
    end function
    function retcl_model_forward_last(model, state, tokens, batch, tokens_len, &
        algorithm, chunk_size, last_logits) bind(c, name='retcl_model_forward_last')
      import :: c_int, c_ptr, c_int32_t, c_size_t
      type(c_ptr), value :: model, state
      integer(c_int32_t), intent(in) :: tokens(*)
      integer(c_size_t), value :: batch, tokens_len
      integer(c_int), value :: algorithm
      integer(c_size_t), value :: chunk_size
      type(c_ptr), value :: last_logits ! float[batch*vocab] or NULL
      integer(c_int) :: retcl_model_forward_last
    end function

    ! -- serving: state pools, packed forward, decode step --
    function retcl_state_pool_create(model, slots, out) &
        bind(c, name='retcl_state_pool_create')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: model
      integer(c_size_t), value :: slots
      type(c_ptr), intent(out) :: out
      integer(c_int) :: retcl_state_pool_create
    end function
    subroutine retcl_state_pool_destroy(pool) bind(c, name='retcl_state_pool_destroy')
      import :: c_ptr
      type(c_ptr), value :: pool
    end subroutine
    function retcl_state_pool_slots(pool) bind(c, name='retcl_state_pool_slots')
      import :: c_ptr, c_size_t
      type(c_ptr), value :: pool
      integer(c_size_t) :: retcl_state_pool_slots
    end function
    function retcl_state_pool_bytes(pool) bind(c, name='retcl_state_pool_bytes')
      import :: c_ptr, c_size_t
      type(c_ptr), value :: pool
      integer(c_size_t) :: retcl_state_pool_bytes
    end function
    function retcl_state_pool_position(pool, slot) &
        bind(c, name='retcl_state_pool_position')
      import :: c_ptr, c_size_t
      type(c_ptr), value :: pool
      integer(c_size_t), value :: slot
      integer(c_size_t) :: retcl_state_pool_position
    end function
    function retcl_state_pool_reset(pool, slot) bind(c, name='retcl_state_pool_reset')
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: pool
      integer(c_size_t), value :: slot
      integer(c_int) :: retcl_state_pool_reset
    end function
    function retcl_model_forward_packed(model, pool, slots, tokens, offsets, &
        sequences, algorithm, chunk_size, last_only, logits) &
        bind(c, name='retcl_model_forward_packed')
      import :: c_int, c_ptr, c_int32_t, c_size_t
      type(c_ptr), value :: model, pool
      type(c_ptr), value :: slots ! const int32_t[sequences] or NULL
      integer(c_int32_t), intent(in) :: tokens(*)
      integer(c_size_t), intent(in) :: offsets(*)
      integer(c_size_t), value :: sequences
      integer(c_int), value :: algorithm
      integer(c_size_t), value :: chunk_size
      integer(c_int), value :: last_only
      type(c_ptr), value :: logits ! float[...] or NULL
      integer(c_int) :: retcl_model_forward_packed
    end function
    function retcl_model_decode_step(model, pool, slots, tokens, rows, logits) &
        bind(c, name='retcl_model_decode_step')
      import :: c_int, c_ptr, c_int32_t, c_size_t, c_float
      type(c_ptr), value :: model, pool
      integer(c_int32_t), intent(in) :: slots(*), tokens(*)
      integer(c_size_t), value :: rows
      real(c_float), intent(inout) :: logits(*)
      integer(c_int) :: retcl_model_decode_step
    end function
    function retcl_sample(logits, vocab, sampler, rng_state, token) &
        bind(c, name='retcl_sample')
      import :: c_int, c_size_t, c_float, c_int64_t, c_int32_t, retcl_sampler
      real(c_float), intent(in) :: logits(*)
      integer(c_size_t), value :: vocab
      type(retcl_sampler), intent(in) :: sampler
      integer(c_int64_t), intent(inout) :: rng_state
      integer(c_int32_t), intent(out) :: token
      integer(c_int) :: retcl_sample
    end function

    ! -- the OpenCL 1.2 calls behind retcl_cl_* (libOpenCL) --
    function clCreateBuffer(context, flags, size, host_ptr, errcode_ret) &
        bind(c, name='clCreateBuffer')
      import :: c_ptr, c_int64_t, c_size_t, c_int32_t
      type(c_ptr), value :: context
      integer(c_int64_t), value :: flags
      integer(c_size_t), value :: size
      type(c_ptr), value :: host_ptr
      integer(c_int32_t), intent(out) :: errcode_ret
      type(c_ptr) :: clCreateBuffer
    end function
    function clReleaseMemObject(mem) bind(c, name='clReleaseMemObject')
      import :: c_ptr, c_int32_t
      type(c_ptr), value :: mem
      integer(c_int32_t) :: clReleaseMemObject
    end function
    function clEnqueueWriteBuffer(queue, mem, blocking, offset, size, ptr, &
        nwait, wait_list, event) bind(c, name='clEnqueueWriteBuffer')
      import :: c_ptr, c_int32_t, c_size_t
      type(c_ptr), value :: queue, mem
      integer(c_int32_t), value :: blocking
      integer(c_size_t), value :: offset, size
      type(c_ptr), value :: ptr
      integer(c_int32_t), value :: nwait
      type(c_ptr), value :: wait_list, event
      integer(c_int32_t) :: clEnqueueWriteBuffer
    end function
    function clEnqueueReadBuffer(queue, mem, blocking, offset, size, ptr, &
        nwait, wait_list, event) bind(c, name='clEnqueueReadBuffer')
      import :: c_ptr, c_int32_t, c_size_t
      type(c_ptr), value :: queue, mem
      integer(c_int32_t), value :: blocking
      integer(c_size_t), value :: offset, size
      type(c_ptr), value :: ptr
      integer(c_int32_t), value :: nwait
      type(c_ptr), value :: wait_list, event
      integer(c_int32_t) :: clEnqueueReadBuffer
    end function
  end interface

contains

  ! ---- buffers (static inline in C) --------------------------------------

  !> retcl_buf(mem [, offset]): an fp32 buffer, offset in floats (0).
  pure function retcl_buf(mem, offset) result(b)
    type(c_ptr), intent(in) :: mem
    integer(c_size_t), intent(in), optional :: offset
    type(retcl_buffer) :: b
    b%mem = mem
    b%offset = 0
    if (present(offset)) b%offset = offset
    b%type = RETCL_DTYPE_F32
  end function retcl_buf

  !> A buffer of `type` (RETCL_DTYPE_*) elements, offset in elements.
  pure function retcl_buf_typed(mem, offset, type) result(b)
    type(c_ptr), intent(in) :: mem
    integer(c_size_t), intent(in) :: offset
    integer(c_int), intent(in) :: type
    type(retcl_buffer) :: b
    b%mem = mem
    b%offset = offset
    b%type = type
  end function retcl_buf_typed

  !> The absent optional buffer (mem NULL).
  pure function retcl_no_buf() result(b)
    type(retcl_buffer) :: b
    b%mem = c_null_ptr
    b%offset = 0
    b%type = RETCL_DTYPE_F32
  end function retcl_no_buf

  ! ---- strings -----------------------------------------------------------

  !> A copy of the NUL-terminated C string p ("" for NULL).
  function retcl_c_string(p) result(s)
    type(c_ptr), intent(in) :: p
    character(len=:), allocatable :: s
    character(kind=c_char), pointer :: chars(:)
    integer(c_size_t) :: n, i
    if (.not. c_associated(p)) then
      s = ''
      return
    end if
    n = c_strlen(p)
    call c_f_pointer(p, chars, [n])
    allocate(character(len=n) :: s)
    do i = 1, n
      s(i:i) = chars(i)
    end do
  end function retcl_c_string

  !> s without trailing blanks, NUL-terminated, for a const char * argument.
  pure function retcl_c_chars(s) result(c)
    character(len=*), intent(in) :: s
    character(kind=c_char, len=len_trim(s) + 1) :: c
    c = trim(s) // c_null_char
  end function retcl_c_chars

  function retcl_version_string_f() result(s)
    character(len=:), allocatable :: s
    s = retcl_c_string(retcl_version_string())
  end function

  !> retcl_status_string as a Fortran string.
  function retcl_status_string_f(status) result(s)
    integer(c_int), intent(in) :: status
    character(len=:), allocatable :: s
    s = retcl_c_string(retcl_status_string(status))
  end function

  !> retcl_last_error(ctx) as a Fortran string; ctx absent or c_null_ptr:
  !> the calling thread's last context-free failure.
  function retcl_last_error_f(ctx) result(s)
    type(c_ptr), intent(in), optional :: ctx
    character(len=:), allocatable :: s
    if (present(ctx)) then
      s = retcl_c_string(retcl_last_error(ctx))
    else
      s = retcl_c_string(retcl_last_error(c_null_ptr))
    end if
  end function

  function retcl_context_vendor_f(ctx) result(s)
    type(c_ptr), intent(in) :: ctx
    character(len=:), allocatable :: s
    s = retcl_c_string(retcl_context_vendor(ctx))
  end function

  ! ---- wrappers taking Fortran strings (absent = NULL) -------------------

  !> retcl_context_create: platform, device as retcl_context_create takes
  !> them (an index "1" or a name substring); absent reads RETCL_PLATFORM /
  !> RETCL_DEVICE.
  function retcl_context_create_f(ctx, platform, device) result(status)
    type(c_ptr), intent(out) :: ctx
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
    status = retcl_context_create(pp, dp, ctx)
  end function retcl_context_create_f

  !> retcl_device_list: the devices `platform` selects (absent: all);
  !> devices is allocated to their number.
  function retcl_device_list_f(devices, platform) result(status)
    type(retcl_device_entry), allocatable, target, intent(out) :: devices(:)
    character(len=*), intent(in), optional :: platform
    integer(c_int) :: status
    character(kind=c_char, len=:), allocatable, target :: p
    type(c_ptr) :: pp
    integer(c_size_t) :: count, count2
    pp = c_null_ptr
    if (present(platform)) then
      p = retcl_c_chars(platform)
      pp = c_loc(p)
    end if
    status = retcl_device_list(pp, c_null_ptr, 0_c_size_t, count)
    if (status /= RETCL_SUCCESS) then
      allocate(devices(0))
      return
    end if
    allocate(devices(max(count, 1_c_size_t)))
    status = retcl_device_list(pp, c_loc(devices(1)), count, count2)
    if (status == RETCL_SUCCESS) devices = devices(1:min(count, count2))
  end function retcl_device_list_f

  function retcl_checkpoint_write_random_f(cfg, seed, dtype, dir) result(status)
    type(retcl_model_config), intent(in) :: cfg
    integer(c_int64_t), intent(in) :: seed
    integer(c_int), intent(in) :: dtype
    character(len=*), intent(in) :: dir
    integer(c_int) :: status
    character(kind=c_char, len=:), allocatable, target :: d
    d = retcl_c_chars(dir)
    status = retcl_checkpoint_write_random(cfg, seed, dtype, c_loc(d))
  end function

  function retcl_model_load_f(ctx, dir, model) result(status)
    type(c_ptr), intent(in) :: ctx
    character(len=*), intent(in) :: dir
    type(c_ptr), intent(out) :: model
    integer(c_int) :: status
    character(kind=c_char, len=:), allocatable, target :: d
    d = retcl_c_chars(dir)
    status = retcl_model_load(ctx, c_loc(d), model)
  end function

  function retcl_model_load_as_f(ctx, dir, storage, model) result(status)
    type(c_ptr), intent(in) :: ctx
    character(len=*), intent(in) :: dir
    integer(c_int), intent(in) :: storage
    type(c_ptr), intent(out) :: model
    integer(c_int) :: status
    character(kind=c_char, len=:), allocatable, target :: d
    d = retcl_c_chars(dir)
    status = retcl_model_load_as(ctx, c_loc(d), storage, model)
  end function

  function retcl_model_save_f(model, dir, dtype) result(status)
    type(c_ptr), intent(in) :: model
    character(len=*), intent(in) :: dir
    integer(c_int), intent(in) :: dtype
    integer(c_int) :: status
    character(kind=c_char, len=:), allocatable, target :: d
    d = retcl_c_chars(dir)
    status = retcl_model_save(model, c_loc(d), dtype)
  end function

  ! ---- wrappers taking Fortran arrays ------------------------------------

  !> retcl_model_forward on tokens(1 : batch*tokens_len) (row-major [B,T]
  !> in C: Fortran tokens(T, B)); logits (optional) receives
  !> batch*tokens_len*vocab floats, Fortran logits(V, T, B). state: a
  !> decode state or c_null_ptr.
  function retcl_model_forward_f(model, state, tokens, batch, tokens_len, &
      algorithm, chunk_size, logits) result(status)
    type(c_ptr), intent(in) :: model, state
    integer(c_int32_t), intent(in) :: tokens(*)
    integer(c_size_t), intent(in) :: batch, tokens_len
    integer(c_int), intent(in) :: algorithm
    integer(c_size_t), intent(in) :: chunk_size
    real(c_float), intent(inout), target, optional :: logits(*)
    integer(c_int) :: status
    type(c_ptr) :: lp
    lp = c_null_ptr
    if (present(logits)) lp = c_loc(logits(1))
    status = retcl_model_forward(model, state, tokens, batch, tokens_len, &
                                 algorithm, chunk_size, lp)
  end function retcl_model_forward_f

  !> retcl_model_forward_last; last_logits (optional): batch*vocab floats.
  function retcl_model_forward_last_f(model, state, tokens, batch, tokens_len, &
      algorithm, chunk_size, last_logits) result(status)
    type(c_ptr), intent(in) :: model, state
    integer(c_int32_t), intent(in) :: tokens(*)
    integer(c_size_t), intent(in) :: batch, tokens_len
    integer(c_int), intent(in) :: algorithm
    integer(c_size_t), intent(in) :: chunk_size
    real(c_float), intent(inout), target, optional :: last_logits(*)
    integer(c_int) :: status
    type(c_ptr) :: lp
    lp = c_null_ptr
    if (present(last_logits)) lp = c_loc(last_logits(1))
    status = retcl_model_forward_last(model, state, tokens, batch, tokens_len, &
                                      algorithm, chunk_size, lp)
  end function retcl_model_forward_last_f

  !> retcl_model_forward_packed: sequence i (1-based here) is tokens
  !> offsets(i)+1 .. offsets(i+1) (offsets are C's zero-based values,
  !> `sequences` + 1 of them); slots (optional; -1 = none) index pool.
  function retcl_model_forward_packed_f(model, pool, tokens, offsets, &
      sequences, algorithm, chunk_size, last_only, logits, slots) result(status)
    type(c_ptr), intent(in) :: model, pool
    integer(c_int32_t), intent(in) :: tokens(*)
    integer(c_size_t), intent(in) :: offsets(*)
    integer(c_size_t), intent(in) :: sequences
    integer(c_int), intent(in) :: algorithm
    integer(c_size_t), intent(in) :: chunk_size
    logical, intent(in) :: last_only
    real(c_float), intent(inout), target, optional :: logits(*)
    integer(c_int32_t), intent(in), target, optional :: slots(*)
    integer(c_int) :: status
    type(c_ptr) :: lp, sp
    integer(c_int) :: lo
    lp = c_null_ptr
    sp = c_null_ptr
    if (present(logits)) lp = c_loc(logits(1))
    if (present(slots)) sp = c_loc(slots(1))
    lo = 0
    if (last_only) lo = 1
    status = retcl_model_forward_packed(model, pool, sp, tokens, offsets, &
                                        sequences, algorithm, chunk_size, lo, lp)
  end function retcl_model_forward_packed_f

  ! ---- device buffers through OpenCL (for codes without OpenCL bindings) -

  !> A new read-write cl_mem of n floats on ctx's OpenCL context. Returns
  !> the OpenCL error code (CL_SUCCESS = 0); mem is c_null_ptr on failure.
  function retcl_cl_alloc(ctx, n, mem) result(err)
    type(c_ptr), intent(in) :: ctx
    integer(c_size_t), intent(in) :: n
    type(c_ptr), intent(out) :: mem
    integer(c_int32_t) :: err
    mem = clCreateBuffer(retcl_context_cl_context(ctx), CL_MEM_READ_WRITE, &
                         4_c_size_t * max(n, 1_c_size_t), c_null_ptr, err)
  end function retcl_cl_alloc

  !> Blocking write of x(:) to mem from float `offset` (default 0), on the
  !> context's queue (after everything enqueued before it). OpenCL error.
  function retcl_cl_write(ctx, mem, x, offset) result(err)
    type(c_ptr), intent(in) :: ctx, mem
    real(c_float), intent(in), target, contiguous :: x(:)
    integer(c_size_t), intent(in), optional :: offset
    integer(c_int32_t) :: err
    integer(c_size_t) :: off
    off = 0
    if (present(offset)) off = offset
    err = CL_SUCCESS
    if (size(x) == 0) return
    err = clEnqueueWriteBuffer(retcl_context_queue(ctx), mem, 1_c_int32_t, &
                               4_c_size_t * off, 4_c_size_t * size(x, kind=c_size_t), &
                               c_loc(x(1)), 0_c_int32_t, c_null_ptr, c_null_ptr)
  end function retcl_cl_write

  !> Blocking read of size(x) floats from mem at float `offset` into x(:),
  !> after everything enqueued before it on the context's queue.
  function retcl_cl_read(ctx, mem, x, offset) result(err)
    type(c_ptr), intent(in) :: ctx, mem
    real(c_float), intent(inout), target, contiguous :: x(:)
    integer(c_size_t), intent(in), optional :: offset
    integer(c_int32_t) :: err
    integer(c_size_t) :: off
    off = 0
    if (present(offset)) off = offset
    err = CL_SUCCESS
    if (size(x) == 0) return
    err = clEnqueueReadBuffer(retcl_context_queue(ctx), mem, 1_c_int32_t, &
                              4_c_size_t * off, 4_c_size_t * size(x, kind=c_size_t), &
                              c_loc(x(1)), 0_c_int32_t, c_null_ptr, c_null_ptr)
  end function retcl_cl_read

  !> Release a cl_mem made by retcl_cl_alloc (c_null_ptr: no-op).
  subroutine retcl_cl_release(mem)
    type(c_ptr), intent(inout) :: mem
    integer(c_int32_t) :: err
    if (c_associated(mem)) err = clReleaseMemObject(mem)
    mem = c_null_ptr
  end subroutine retcl_cl_release

end module retcl
