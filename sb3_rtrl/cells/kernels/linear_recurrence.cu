// The diagonal linear recurrence of the RTU and the gated linear units over a training segment, and its adjoint
// (sb3_rtrl).
//
// Each column (one unit of one sequence) depends only on its own past, so one thread runs one column through all T
// steps, where torch runs a log-depth scan of about 4 log2(T) operations. All tensors are contiguous, row-major
// (T, width): a, b, y. With is_complex != 0 each of the width elements is a complex number stored as a (real, imaginary)
// pair, so the arrays hold 2 * width reals a step.
//
// linear_recurrence (adjoint = 0): y(t) = a(t) y(t-1) + b(t), from y(-1) = 0.
// linear_recurrence (adjoint = 1): y(t) = b(t) + a(t+1) y(t+1), from y(T) = 0 (a(0) is not read). Given as b the
//   gradient at the forward recurrence's y, this is the gradient at its b (for a complex one, a given conjugated).
// Any T and width (bounds are checked); a grid-stride loop covers the width with any grid.

template <typename T>
__device__ __forceinline__ void linear_recurrence_impl(const T *__restrict__ a, const T *__restrict__ b,
                                                       T *__restrict__ y, int steps, int width, int is_complex,
                                                       int adjoint) {
    const long long stride = is_complex ? 2LL * width : (long long)width;  // reals a step
    for (long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x; col < width;
         col += (long long)gridDim.x * blockDim.x) {
        const long long k = is_complex ? 2 * col : col;
        T re = T(0), im = T(0);
        for (int s = 0; s < steps; ++s) {
            const int t = adjoint ? steps - 1 - s : s;
            // The factor on the carried value: a(t) forward, a(t+1) in the adjoint (none at the first step taken).
            const int ta = adjoint ? t + 1 : t;
            const bool first = s == 0;
            const long long at = (long long)ta * stride + k, bt = (long long)t * stride + k;
            if (is_complex) {
                T next_re = b[bt], next_im = b[bt + 1];
                if (!first) {
                    const T a_re = a[at], a_im = a[at + 1];
                    next_re += a_re * re - a_im * im;
                    next_im += a_re * im + a_im * re;
                }
                re = next_re;
                im = next_im;
                y[bt] = re;
                y[bt + 1] = im;
            } else {
                re = first ? b[bt] : a[at] * re + b[bt];
                y[bt] = re;
            }
        }
    }
}

#define SB3_RTRL_RECURRENCE_KERNELS(T, SUFFIX)                                                                  \
    extern "C" __global__ void linear_recurrence_##SUFFIX(const T *a, const T *b, T *y, int steps, int width,     \
                                                          int is_complex, int adjoint) {                          \
        linear_recurrence_impl<T>(a, b, y, steps, width, is_complex, adjoint);                                    \
    }

SB3_RTRL_RECURRENCE_KERNELS(float, f32)
SB3_RTRL_RECURRENCE_KERNELS(double, f64)
