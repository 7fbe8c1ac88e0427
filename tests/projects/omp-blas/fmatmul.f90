! C = A*B with BLAS dgemm, called from C.
subroutine fmatmul(n, a, b, c) bind(c, name="fmatmul")
  use iso_c_binding, only: c_int, c_double
  implicit none
  integer(c_int), value :: n
  real(c_double), intent(in) :: a(n, n), b(n, n)
  real(c_double), intent(out) :: c(n, n)
  external :: dgemm
  call dgemm('N', 'N', n, n, n, 1.0d0, a, n, b, n, 0.0d0, c, n)
end subroutine fmatmul
