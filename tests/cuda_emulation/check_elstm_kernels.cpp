// Checks sb3_rtrl/cells/kernels/elstm.cu on CPU threads against naive loops in double (see cuda_host_emulation.h).
// Exit code 0 when every case agrees; prints one line per case.
#include <cmath>
#include <math.h>

#include "check_common.h"
#include "cuda_host_emulation.h"
#include ELSTM_CU

#include <cstdio>
#include <limits>
#include <random>

// grid and block sizes small enough that the grid-stride loop runs more than once where B * N is large
template <typename T> bool run_case(int steps, int B, int N, unsigned blocks, unsigned threads, double tol, std::mt19937 &rng) {
    std::normal_distribution<double> normal;
    std::uniform_real_distribution<double> uniform;
    auto fill = [&](size_t n, double scale) { std::vector<T> v(n); for (auto &x : v) x = (T)(scale * normal(rng)); return v; };
    std::vector<T> u = fill((size_t)steps * B * 2 * N, 1.0), w = fill(2 * N, 0.5), c0 = fill((size_t)B * N, 1.0),
                   grad_c = fill((size_t)steps * B * N, 1.0), keep((size_t)steps * B);
    for (auto &x : keep) x = uniform(rng) < 0.1 ? T(0) : T(1);  // episode starts
    const T nan = std::numeric_limits<T>::quiet_NaN();
    const size_t cells = (size_t)steps * B * N;
    std::vector<T> c_all(cells, nan), c_tilde(cells, nan), a(2 * cells, nan), jac(cells, nan);
    std::vector<T> c_all2(cells, nan), c_tilde2(cells, nan), grad_u(2 * cells, nan), grad_c0((size_t)B * N, nan);
    std::vector<double> r_c(cells), r_ct(cells), r_a(2 * cells), r_jac(cells), r_gu(2 * cells), r_g0((size_t)B * N);
    for (int b = 0; b < B; ++b)
        for (int i = 0; i < N; ++i) {
            double c = c0[(size_t)b * N + i];
            for (int t = 0; t < steps; ++t) {
                const size_t row = (size_t)t * B + b;
                const double ct = c * keep[row];
                const double z = std::tanh((double)u[row * 2 * N + i] + (double)w[i] * ct);
                const double f = 1.0 / (1.0 + std::exp(-((double)u[row * 2 * N + N + i] + (double)w[N + i] * ct)));
                c = f * ct + (1.0 - f) * z;
                const double zh = (1 - f) * (1 - z * z), fh = (ct - z) * f * (1 - f);
                r_c[row * N + i] = c;
                r_ct[row * N + i] = ct;
                r_a[row * 2 * N + i] = zh;
                r_a[row * 2 * N + N + i] = fh;
                r_jac[row * N + i] = (f + w[i] * zh + w[N + i] * fh) * keep[row];
            }
            double carry = 0;
            for (int t = steps - 1; t >= 0; --t) {
                const size_t row = (size_t)t * B + b;
                carry += grad_c[row * N + i];
                r_gu[row * 2 * N + i] = r_a[row * 2 * N + i] * carry;
                r_gu[row * 2 * N + N + i] = r_a[row * 2 * N + N + i] * carry;
                carry *= r_jac[row * N + i];
            }
            r_g0[(size_t)b * N + i] = carry;
        }
    const dim3 grid{blocks, 1, 1}, block{threads, 1, 1};
    emulate_launch(grid, block, [&] {
        if constexpr (sizeof(T) == 4) {
            elstm_forward_f32(u.data(), w.data(), c0.data(), keep.data(), c_all.data(), c_tilde.data(), a.data(), jac.data(), steps, B, N, 1);
            elstm_forward_f32(u.data(), w.data(), c0.data(), keep.data(), c_all2.data(), c_tilde2.data(), nullptr, nullptr, steps, B, N, 0);
        } else {
            elstm_forward_f64(u.data(), w.data(), c0.data(), keep.data(), c_all.data(), c_tilde.data(), a.data(), jac.data(), steps, B, N, 1);
            elstm_forward_f64(u.data(), w.data(), c0.data(), keep.data(), c_all2.data(), c_tilde2.data(), nullptr, nullptr, steps, B, N, 0);
        }
    });
    // The backward from the reference terms, so that its own error is measured.
    std::vector<T> a_in(2 * cells), jac_in(cells);
    for (size_t k = 0; k < a_in.size(); ++k) a_in[k] = (T)r_a[k];
    for (size_t k = 0; k < jac_in.size(); ++k) jac_in[k] = (T)r_jac[k];
    emulate_launch(grid, block, [&] {
        if constexpr (sizeof(T) == 4) elstm_backward_f32(a_in.data(), jac_in.data(), grad_c.data(), grad_u.data(), grad_c0.data(), steps, B, N);
        else elstm_backward_f64(a_in.data(), jac_in.data(), grad_c.data(), grad_u.data(), grad_c0.data(), steps, B, N);
    });
    const double errs[] = {rel_err(c_all, r_c),  rel_err(c_tilde, r_ct), rel_err(a, r_a),         rel_err(jac, r_jac),
                           rel_err(c_all2, r_c), rel_err(c_tilde2, r_ct), rel_err(grad_u, r_gu), rel_err(grad_c0, r_g0)};
    bool ok = true;
    for (double e : errs) ok &= e <= tol;
    std::printf("%s %s T=%d B=%d N=%d grid=%u x %u  c %.2e c~ %.2e a %.2e jac %.2e (no terms: c %.2e c~ %.2e)  grad_u %.2e grad_c0 %.2e\n",
                ok ? "ok  " : "FAIL", sizeof(T) == 4 ? "f32" : "f64", steps, B, N, blocks, threads, errs[0], errs[1], errs[2],
                errs[3], errs[4], errs[5], errs[6], errs[7]);
    return ok;
}

int main() {
    std::mt19937 rng(0);
    bool ok = true;
    // (T, B, N, blocks, threads): one step, fewer units than threads, a partial last block, a grid-stride loop.
    const int sizes[][5] = {{1, 1, 1, 1, 32}, {7, 3, 5, 1, 32}, {40, 3, 37, 2, 32}, {25, 4, 50, 3, 16}};
    for (auto &s : sizes) {
        ok &= run_case<double>(s[0], s[1], s[2], s[3], s[4], 1e-12, rng);
        ok &= run_case<float>(s[0], s[1], s[2], s[3], s[4], 1e-5, rng);
    }
    return ok ? 0 : 1;
}
