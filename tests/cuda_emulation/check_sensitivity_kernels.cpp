// Checks sb3_rtrl/rtrl/kernels/sensitivity.cu on CPU threads against naive loops (see cuda_host_emulation.h).
// Exit code 0 when every case agrees; prints one line per case.
#include "check_common.h"
#include "cuda_host_emulation.h"
#include SENSITIVITY_CU

#include <cmath>
#include <cstdio>
#include <random>

template <typename T> struct Case {
    int B, N, K, D, M;
};

template <typename T> bool run_case(const Case<T> &c, double tol, std::mt19937 &rng) {
    const int B = c.B, N = c.N, R = c.K * c.N, D = c.D, M = c.M;
    std::normal_distribution<double> normal;
    std::uniform_real_distribution<double> uniform;
    auto fill = [&](size_t n) { std::vector<T> v(n); for (auto &x : v) x = (T)normal(rng); return v; };
    std::vector<T> s0 = fill((size_t)B * R * D), p = fill((size_t)B * N), qa = fill((size_t)M * B * R),
                   v = fill((size_t)M * B * D), jac((size_t)M * B * N);
    for (auto &x : jac) x = uniform(rng) < 0.05 ? T(0) : (T)uniform(rng);  // resets zero the Jacobian
    const T nan = std::numeric_limits<T>::quiet_NaN();
    std::vector<T> out((size_t)B * R * D, nan), out_step((size_t)B * R * D, nan), grad((size_t)R * D, nan);
    std::vector<double> ref_seg(out.size()), ref_step(out.size()), ref_grad(grad.size());
    for (int b = 0; b < B; ++b)
        for (int r = 0; r < R; ++r)
            for (int d = 0; d < D; ++d) {
                const size_t i = ((size_t)b * R + r) * D + d;
                double seg = (double)p[b * N + r % N] * s0[i], step = s0[i];
                for (int t = 0; t < M; ++t) {
                    seg += (double)qa[((size_t)t * B + b) * R + r] * v[((size_t)t * B + b) * D + d];
                    step = (double)jac[((size_t)t * B + b) * N + r % N] * step +
                           (double)qa[((size_t)t * B + b) * R + r] * v[((size_t)t * B + b) * D + d];
                }
                ref_seg[i] = seg;
                ref_step[i] = step;
            }
    for (int r = 0; r < R; ++r)
        for (int d = 0; d < D; ++d) {
            double sum = 0;
            for (int b = 0; b < B; ++b) sum += (double)p[b * N + r % N] * s0[((size_t)b * R + r) * D + d];
            ref_grad[(size_t)r * D + d] = sum;
        }
    const dim3 grid{(unsigned)((D + TILE - 1) / TILE), (unsigned)((R + TILE - 1) / TILE), (unsigned)B};
    const dim3 block{THREADS, THREADS, 1};
    const bool f32 = sizeof(T) == 4;
    emulate_launch(grid, block, [&] {
        if constexpr (sizeof(T) == 4) segment_advance_f32(s0.data(), p.data(), qa.data(), v.data(), out.data(), B, R, N, D, M);
        else segment_advance_f64(s0.data(), p.data(), qa.data(), v.data(), out.data(), B, R, N, D, M);
    });
    emulate_launch(grid, block, [&] {
        if constexpr (sizeof(T) == 4) step_advance_f32(s0.data(), jac.data(), qa.data(), v.data(), out_step.data(), B, R, N, D, M);
        else step_advance_f64(s0.data(), jac.data(), qa.data(), v.data(), out_step.data(), B, R, N, D, M);
    });
    // A small grid, so that the grid-stride loop of inject is exercised too.
    emulate_launch(dim3{3, 1, 1}, dim3{64, 1, 1}, [&] {
        if constexpr (sizeof(T) == 4) inject_f32(s0.data(), p.data(), grad.data(), B, R, N, D);
        else inject_f64(s0.data(), p.data(), grad.data(), B, R, N, D);
    });
    const double e1 = rel_err(out, ref_seg), e2 = rel_err(out_step, ref_step), e3 = rel_err(grad, ref_grad);
    const bool ok = e1 <= tol && e2 <= tol && e3 <= tol;
    std::printf("%s %s B=%d N=%d K=%d D=%d M=%d segment %.2e step %.2e inject %.2e\n", ok ? "ok  " : "FAIL",
                f32 ? "f32" : "f64", B, N, c.K, D, M, e1, e2, e3);
    return ok;
}

int main() {
    std::mt19937 rng(0);
    bool ok = true;
    const int sizes[][5] = {{1, 5, 2, 3, 1}, {3, 37, 2, 70, 17}, {2, 64, 2, 64, 16}, {2, 33, 3, 129, 40}, {1, 1, 2, 1, 3}};
    for (auto &s : sizes) {
        ok &= run_case<double>({s[0], s[1], s[2], s[3], s[4]}, 1e-12, rng);
        ok &= run_case<float>({s[0], s[1], s[2], s[3], s[4]}, 1e-5, rng);
    }
    return ok ? 0 : 1;
}
