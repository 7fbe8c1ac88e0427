! One MPI job from Fortran through the `use mpi` module (which only the Fortran compiler that
! built the MPI can read): every rank checks the job's size (the first argument), its OpenMP
! threads (OMP_NUM_THREADS when built with OpenMP) and a dgemm.
program hybrid_f
  use mpi
  !$ use omp_lib
  implicit none
  integer :: ierr, rank, nranks, want, threads, want_threads, ok, all
  character(len=32) :: arg
  double precision :: a(2, 2), b(2, 2), c(2, 2)
  external :: dgemm

  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Comm_size(MPI_COMM_WORLD, nranks, ierr)
  want = nranks
  if (command_argument_count() >= 1) then
    call get_command_argument(1, arg)
    read (arg, *) want
  end if
  threads = 1
  want_threads = 1
  !$ threads = omp_get_max_threads()
  !$ call get_environment_variable('OMP_NUM_THREADS', arg)
  !$ read (arg, *) want_threads
  a = reshape([1d0, 2d0, 3d0, 4d0], [2, 2])
  b = reshape([1d0, 0d0, 0d0, 1d0], [2, 2])
  c = 0
  call dgemm('N', 'N', 2, 2, 2, 1d0, a, 2, b, 2, 0d0, c, 2)
  print '(A,I0,A,I0,A,I0)', 'hybrid_f rank ', rank, ' of ', nranks, ': threads ', threads
  ok = 1
  if (nranks /= want .or. threads /= want_threads .or. any(c /= a)) ok = 0
  call MPI_Allreduce(ok, all, 1, MPI_INTEGER, MPI_MIN, MPI_COMM_WORLD, ierr)
  call MPI_Finalize(ierr)
  if (all /= 1) stop 1
end program hybrid_f
