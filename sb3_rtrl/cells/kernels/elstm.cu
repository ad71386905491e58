// The eLSTM's element-wise recurrence over a training segment, forward and backward (sb3_rtrl).
//
// Each unit of each sequence depends only on its own past, so one thread runs one (b, i) through all T steps,
// where torch would launch a few small operations per step. All tensors are contiguous, row-major:
//   u: (T, B, 2N) input pre-activations [Z x + b_z; F x + b_f]   w: (2N,) recurrent weights [w_z; w_f]
//   c0, grad_c0: (B, N)   not_start: (T, B), 0 where an episode starts, else 1
//   c_all, c_tilde, jac, grad_c: (T, B, N)   a, grad_u: (T, B, 2N)
//
// elstm_forward: c~ = c(t-1) * not_start(t); z = tanh(u_z + w_z c~); f = sigmoid(u_f + w_f c~);
//   c(t) = z + f (c~ - z). With terms != 0 it also writes the RTRL terms a = [zh; fh],
//   zh = (1 - f)(1 - z^2), fh = (c~ - z) f (1 - f), and the masked Jacobian (f + w_z zh + w_f fh) not_start(t).
// elstm_backward: carry = 0; for t from T-1 down: carry += grad_c(t); grad_u(t) = a(t) carry; carry *= jac(t);
//   grad_c0 = carry.
// Any T, B, N (bounds are checked); a grid-stride loop covers B * N with any grid.

template <typename T> __device__ __forceinline__ T tanh_of(T x);
template <> __device__ __forceinline__ float tanh_of<float>(float x) { return tanhf(x); }
template <> __device__ __forceinline__ double tanh_of<double>(double x) { return tanh(x); }
template <typename T> __device__ __forceinline__ T exp_of(T x);
template <> __device__ __forceinline__ float exp_of<float>(float x) { return expf(x); }
template <> __device__ __forceinline__ double exp_of<double>(double x) { return exp(x); }

template <typename T>
__device__ __forceinline__ void elstm_forward_impl(const T *__restrict__ u, const T *__restrict__ w,
                                                   const T *__restrict__ c0, const T *__restrict__ not_start,
                                                   T *__restrict__ c_all, T *__restrict__ c_tilde, T *__restrict__ a,
                                                   T *__restrict__ jac, int steps, int B, int N, int terms) {
    const long long units = (long long)B * N;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < units;
         idx += (long long)gridDim.x * blockDim.x) {
        const int b = (int)(idx / N), i = (int)(idx % N);
        const T w_z = w[i], w_f = w[N + i];
        T c = c0[idx];
        for (int t = 0; t < steps; ++t) {
            const long long row = (long long)t * B + b;  // (t, b)
            const T keep = not_start[row];
            const T ct = c * keep;
            const T z = tanh_of<T>(u[row * 2 * N + i] + w_z * ct);
            const T f = T(1) / (T(1) + exp_of<T>(-(u[row * 2 * N + N + i] + w_f * ct)));
            c = z + f * (ct - z);
            c_all[row * N + i] = c;
            c_tilde[row * N + i] = ct;
            if (terms) {
                const T one_minus_f = T(1) - f;
                const T zh = one_minus_f * (T(1) - z * z);
                const T fh = (ct - z) * f * one_minus_f;
                a[row * 2 * N + i] = zh;
                a[row * 2 * N + N + i] = fh;
                jac[row * N + i] = (f + w_z * zh + w_f * fh) * keep;
            }
        }
    }
}

template <typename T>
__device__ __forceinline__ void elstm_backward_impl(const T *__restrict__ a, const T *__restrict__ jac,
                                                    const T *__restrict__ grad_c, T *__restrict__ grad_u,
                                                    T *__restrict__ grad_c0, int steps, int B, int N) {
    const long long units = (long long)B * N;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < units;
         idx += (long long)gridDim.x * blockDim.x) {
        const int b = (int)(idx / N), i = (int)(idx % N);
        T carry = T(0);
        for (int t = steps - 1; t >= 0; --t) {
            const long long row = (long long)t * B + b;
            carry += grad_c[row * N + i];
            grad_u[row * 2 * N + i] = a[row * 2 * N + i] * carry;
            grad_u[row * 2 * N + N + i] = a[row * 2 * N + N + i] * carry;
            carry *= jac[row * N + i];
        }
        grad_c0[idx] = carry;
    }
}

#define SB3_RTRL_ELSTM_KERNELS(T, SUFFIX)                                                                          \
    extern "C" __global__ void elstm_forward_##SUFFIX(const T *u, const T *w, const T *c0, const T *not_start,     \
                                                      T *c_all, T *c_tilde, T *a, T *jac, int steps, int B, int N, \
                                                      int terms) {                                                 \
        elstm_forward_impl<T>(u, w, c0, not_start, c_all, c_tilde, a, jac, steps, B, N, terms);                    \
    }                                                                                                                \
    extern "C" __global__ void elstm_backward_##SUFFIX(const T *a, const T *jac, const T *grad_c, T *grad_u,        \
                                                       T *grad_c0, int steps, int B, int N) {                       \
        elstm_backward_impl<T>(a, jac, grad_c, grad_u, grad_c0, steps, B, N);                                      \
    }

SB3_RTRL_ELSTM_KERNELS(float, f32)
SB3_RTRL_ELSTM_KERNELS(double, f64)
