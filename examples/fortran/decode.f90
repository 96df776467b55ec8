! decode.f90 - RetCL from Fortran: write a small random-weight checkpoint,
! load it, prefill a prompt into a decode state and decode greedily.
!
!   retcl_fortran_decode [folder [new_tokens]]
!
! folder: where the checkpoint goes (default retcl-fortran-demo, created);
! new_tokens: how many tokens to generate (default 16). The device is
! RETCL_PLATFORM / RETCL_DEVICE's choice (first GPU, else the first device);
! with PoCL: POCL_DEVICES=pthread ./retcl_fortran_decode.
program decode
  use, intrinsic :: iso_c_binding
  use retcl
  implicit none

  integer, parameter :: PROMPT_LEN = 6
  type(c_ptr) :: ctx, model, state
  type(retcl_model_config) :: cfg
  type(retcl_sampler) :: greedy
  integer(c_int) :: st
  integer(c_int32_t) :: prompt(PROMPT_LEN), next(1)
  integer(c_int64_t) :: rng
  real(c_float), allocatable :: logits(:)
  character(len=256) :: dir, arg
  integer :: new_tokens, i

  dir = 'retcl-fortran-demo'
  new_tokens = 16
  if (command_argument_count() >= 1) call get_command_argument(1, dir)
  if (command_argument_count() >= 2) then
    call get_command_argument(2, arg)
    read (arg, *) new_tokens
  end if

  ! A context on the default device.
  st = retcl_context_create_f(ctx)
  call check(st, 'retcl_context_create', c_null_ptr)
  print '(a)', 'RetCL ' // retcl_version_string_f() // ', device vendor ' // &
               retcl_context_vendor_f(ctx)

  ! A small model: torchscale's defaults, shrunk.
  call retcl_model_config_default(cfg)
  cfg%embed_dim = 64
  cfg%value_embed_dim = 128
  cfg%heads = 4
  cfg%ffn_dim = 128
  cfg%layers = 2
  cfg%vocab_size = 100
  cfg%chunk_size = 16
  st = retcl_checkpoint_write_random_f(cfg, 2024_c_int64_t, RETCL_DTYPE_F32, trim(dir))
  call check(st, 'retcl_checkpoint_write_random', c_null_ptr)
  st = retcl_model_load_f(ctx, trim(dir), model)
  call check(st, 'retcl_model_load', ctx)
  print '(a,i0,a)', 'loaded ' // trim(dir) // ': ', retcl_model_weight_bytes(model), &
                    ' bytes of weights'

  ! Prefill: the prompt's last-token logits, and its state for decoding.
  prompt = [1, 7, 42, 3, 99, 5]
  allocate(logits(cfg%vocab_size))
  st = retcl_decode_state_create(model, 1_c_size_t, state)
  call check(st, 'retcl_decode_state_create', ctx)
  st = retcl_model_forward_last_f(model, state, prompt, 1_c_size_t, &
                                  int(PROMPT_LEN, c_size_t), RETCL_ALGO_CHUNKWISE, &
                                  0_c_size_t, logits)
  call check(st, 'retcl_model_forward_last', ctx)

  ! Greedy decoding: one token per step, constant memory.
  greedy%temperature = 0
  greedy%top_k = 0
  rng = 1
  write (*, '(a)', advance='no') 'generated:'
  do i = 1, new_tokens
    st = retcl_sample(logits, cfg%vocab_size, greedy, rng, next(1))
    call check(st, 'retcl_sample', c_null_ptr)
    write (*, '(1x,i0)', advance='no') next(1)
    st = retcl_model_forward_f(model, state, next, 1_c_size_t, 1_c_size_t, &
                               RETCL_ALGO_RECURRENT, 0_c_size_t, logits)
    call check(st, 'retcl_model_forward', ctx)
  end do
  write (*, '(a)') ''
  print '(a,i0,a,i0,a)', 'state: ', retcl_decode_state_position(state), ' tokens in ', &
                         retcl_decode_state_bytes(state), ' bytes'

  call retcl_decode_state_destroy(state)
  call retcl_model_destroy(model)
  call retcl_context_destroy(ctx)

contains

  subroutine check(status, what, on)
    integer(c_int), intent(in) :: status
    character(len=*), intent(in) :: what
    type(c_ptr), intent(in) :: on
    if (status == RETCL_SUCCESS) return
    print '(a)', what // ' failed: ' // retcl_status_string_f(status) // ': ' // &
                 retcl_last_error_f(on)
    stop 1
  end subroutine check

end program decode
