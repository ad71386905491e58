// Sensitivity kernels for the matrix parameters of element-wise recurrent cells (sb3_rtrl).
//
// A matrix sensitivity S has shape (B, R, D), R = K * N: row r of sequence b holds d c[r % N] / d W[r, :].
// All tensors are contiguous, row-major:
//   s0, out: (B, R, D)   p, g: (B, N)   jac: (M, B, N)   qa, a: (M, B, R)   v: (M, B, D)   grad: (R, D)
//
// segment_advance: out = p[b, r % N] * s0 + sum_t qa[t, b, r] * v[t, b, d]
//   (the design's segment formula: S(M) = P * S(0) + sum_s (Q(s) * a(s)) (outer) v(s))
// step_advance:    out = s0; for t: out = jac[t, b, r % N] * out + a[t, b, r] * v[t, b, d]
//   (the paper's per-step recursion, all M steps in registers)
// inject:          grad[r, d] = sum_b g[b, r % N] * s0[b, r, d]
//
// Both advances read each element of s0 once and write each element of out once; the sum over the M
// steps runs in registers, with qa / a / jac and v staged in shared memory TK steps at a time.
// Any B, R, N, D, M (bounds are checked); one block computes a TILE x TILE tile of one sequence.

#define TILE 64    // rows and columns of the output tile of one block
#define THREADS 16 // threads per block along each dimension (each thread owns PER x PER outputs)
#define PER 4      // TILE / THREADS
#define TK 16      // time steps staged in shared memory at once

template <typename T>
__device__ __forceinline__ void load_rows(T (*dst)[TILE], const T *src, int t0, int M, int B, int b, int rows,
                                          int row0, int width, int n_mod) {
    // dst[k][i] = src[(t0 + k), b, (row0 + i) % n_mod] with src of shape (M, B, width); 0 outside.
    const int tid = threadIdx.y * THREADS + threadIdx.x;
    for (int idx = tid; idx < TK * TILE; idx += THREADS * THREADS) {
        const int k = idx / TILE, i = idx % TILE;
        const int t = t0 + k, row = row0 + i;
        T val = T(0);
        if (t < M && row < rows) {
            const int col = n_mod > 0 ? row % n_mod : row;
            val = src[((long long)t * B + b) * width + col];
        }
        dst[k][i] = val;
    }
}

template <typename T>
__device__ __forceinline__ void segment_advance_impl(const T *__restrict__ s0, const T *__restrict__ p,
                                                     const T *__restrict__ qa, const T *__restrict__ v,
                                                     T *__restrict__ out, int B, int R, int N, int D, int M) {
    __shared__ T qa_s[TK][TILE];
    __shared__ T v_s[TK][TILE];
    const int b = blockIdx.z;
    const int row0 = blockIdx.y * TILE, col0 = blockIdx.x * TILE;
    const int tx = threadIdx.x, ty = threadIdx.y;
    T acc[PER][PER];
#pragma unroll
    for (int i = 0; i < PER; ++i)
#pragma unroll
        for (int j = 0; j < PER; ++j) acc[i][j] = T(0);

    for (int t0 = 0; t0 < M; t0 += TK) {
        load_rows(qa_s, qa, t0, M, B, b, R, row0, R, 0);
        load_rows(v_s, v, t0, M, B, b, D, col0, D, 0);
        __syncthreads();
#pragma unroll
        for (int k = 0; k < TK; ++k) {
            T a_reg[PER], v_reg[PER];
#pragma unroll
            for (int i = 0; i < PER; ++i) a_reg[i] = qa_s[k][ty + THREADS * i];
#pragma unroll
            for (int j = 0; j < PER; ++j) v_reg[j] = v_s[k][tx + THREADS * j];
#pragma unroll
            for (int i = 0; i < PER; ++i)
#pragma unroll
                for (int j = 0; j < PER; ++j) acc[i][j] += a_reg[i] * v_reg[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < PER; ++i) {
        const int row = row0 + ty + THREADS * i;
        if (row >= R) continue;
        const T decay = p[(long long)b * N + row % N];
        const long long base = ((long long)b * R + row) * D;
#pragma unroll
        for (int j = 0; j < PER; ++j) {
            const int col = col0 + tx + THREADS * j;
            if (col < D) out[base + col] = acc[i][j] + decay * s0[base + col];
        }
    }
}

template <typename T>
__device__ __forceinline__ void step_advance_impl(const T *__restrict__ s0, const T *__restrict__ jac,
                                                  const T *__restrict__ a, const T *__restrict__ v,
                                                  T *__restrict__ out, int B, int R, int N, int D, int M) {
    __shared__ T j_s[TK][TILE];
    __shared__ T a_s[TK][TILE];
    __shared__ T v_s[TK][TILE];
    const int b = blockIdx.z;
    const int row0 = blockIdx.y * TILE, col0 = blockIdx.x * TILE;
    const int tx = threadIdx.x, ty = threadIdx.y;
    T acc[PER][PER];
#pragma unroll
    for (int i = 0; i < PER; ++i) {
        const int row = row0 + ty + THREADS * i;
#pragma unroll
        for (int j = 0; j < PER; ++j) {
            const int col = col0 + tx + THREADS * j;
            acc[i][j] = (row < R && col < D) ? s0[((long long)b * R + row) * D + col] : T(0);
        }
    }
    for (int t0 = 0; t0 < M; t0 += TK) {
        load_rows(j_s, jac, t0, M, B, b, R, row0, N, N);
        load_rows(a_s, a, t0, M, B, b, R, row0, R, 0);
        load_rows(v_s, v, t0, M, B, b, D, col0, D, 0);
        __syncthreads();
        const int steps = min(TK, M - t0);
        for (int k = 0; k < steps; ++k) {
            T j_reg[PER], a_reg[PER], v_reg[PER];
#pragma unroll
            for (int i = 0; i < PER; ++i) {
                j_reg[i] = j_s[k][ty + THREADS * i];
                a_reg[i] = a_s[k][ty + THREADS * i];
            }
#pragma unroll
            for (int j = 0; j < PER; ++j) v_reg[j] = v_s[k][tx + THREADS * j];
#pragma unroll
            for (int i = 0; i < PER; ++i)
#pragma unroll
                for (int j = 0; j < PER; ++j) acc[i][j] = j_reg[i] * acc[i][j] + a_reg[i] * v_reg[j];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < PER; ++i) {
        const int row = row0 + ty + THREADS * i;
        if (row >= R) continue;
        const long long base = ((long long)b * R + row) * D;
#pragma unroll
        for (int j = 0; j < PER; ++j) {
            const int col = col0 + tx + THREADS * j;
            if (col < D) out[base + col] = acc[i][j];
        }
    }
}

template <typename T>
__device__ __forceinline__ void inject_impl(const T *__restrict__ s0, const T *__restrict__ g, T *__restrict__ grad,
                                            int B, int R, int N, int D) {
    // One thread per (r, d), grid-stride; consecutive threads read consecutive d: coalesced.
    const long long total = (long long)R * D;
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (long long)gridDim.x * blockDim.x) {
        const int row = (int)(idx / D);
        const int n = row % N;
        T sum = T(0);
        for (int b = 0; b < B; ++b) sum += g[(long long)b * N + n] * s0[(long long)b * total + idx];
        grad[idx] = sum;
    }
}

#define SB3_RTRL_KERNELS(T, SUFFIX)                                                                                \
    extern "C" __global__ void __launch_bounds__(THREADS *THREADS)                                                  \
        segment_advance_##SUFFIX(const T *s0, const T *p, const T *qa, const T *v, T *out, int B, int R, int N,    \
                                 int D, int M) {                                                                     \
        segment_advance_impl<T>(s0, p, qa, v, out, B, R, N, D, M);                                                 \
    }                                                                                                                \
    extern "C" __global__ void __launch_bounds__(THREADS *THREADS)                                                  \
        step_advance_##SUFFIX(const T *s0, const T *jac, const T *a, const T *v, T *out, int B, int R, int N, int D, \
                              int M) {                                                                               \
        step_advance_impl<T>(s0, jac, a, v, out, B, R, N, D, M);                                                   \
    }                                                                                                                \
    extern "C" __global__ void inject_##SUFFIX(const T *s0, const T *g, T *grad, int B, int R, int N, int D) {      \
        inject_impl<T>(s0, g, grad, B, R, N, D);                                                                   \
    }

SB3_RTRL_KERNELS(float, f32)
SB3_RTRL_KERNELS(double, f64)
