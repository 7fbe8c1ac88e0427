double tb_dot(int n, const double *x, const double *y);
void tb_scale(int n, double a, double *x);
